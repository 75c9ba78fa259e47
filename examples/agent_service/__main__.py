"""``python -m examples.agent_service --model M [--llm-base-url URL] [--port N]``."""

from .app import main

main()
