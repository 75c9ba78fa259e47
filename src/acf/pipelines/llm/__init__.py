"""The ``llm`` pipeline kind: an agent on any OpenAI-compatible chat-completions endpoint,
its tools through acf's gateway (DESIGN §16)."""
