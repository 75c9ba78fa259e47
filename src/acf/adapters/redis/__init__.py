"""Redis adapters for distributed mode (DESIGN §10), all optional: wake-ups over pub/sub
with a fallback, and the rate-limit storage. Losing Redis costs latency, never
correctness: every use falls back to PostgreSQL or process memory while it is away."""
