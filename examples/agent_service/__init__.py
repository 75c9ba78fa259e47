"""A reference agent service: the server side of acf's agent service protocol (DESIGN §16).

An LLM agent (any OpenAI-compatible chat-completions endpoint) with two tools of its own,
behind ``POST /v1/agents/{profile}/execute`` (Server-Sent Events), with its state in one
SQLite file. Run it with ``python -m examples.agent_service`` (README.md).
"""
