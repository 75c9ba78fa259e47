"""Redis adapters for distributed mode (DESIGN §10), all optional: wake-ups over pub/sub
with a fallback, and the rate-limit storage. Losing Redis costs latency, never
correctness: every use falls back to PostgreSQL or process memory while it is away.
The client library is the ``redis`` extra (``pip install 'acf[redis]'``)."""

from acf.extras import missing_extra

try:
    import redis  # noqa: F401
except ImportError as exc:
    raise missing_extra("redis", "Wake-ups and rate limits over Redis") from exc
