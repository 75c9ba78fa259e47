"""The HTTP API (FastAPI), its pages and its server-sent event streams."""
