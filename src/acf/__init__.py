"""acf: Agent Conversation Fabric."""

__version__ = "0.1.0"
