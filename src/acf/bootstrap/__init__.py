"""The composition root: settings in, wired components out. No I/O at import."""

from acf.bootstrap.agents import ToolBackends, build_agents, channel_policy
from acf.bootstrap.embedded import Embedded, database_path, open_embedded
from acf.bootstrap.service import Service, open_service

__all__ = [
    "Embedded",
    "Service",
    "ToolBackends",
    "build_agents",
    "channel_policy",
    "database_path",
    "open_embedded",
    "open_service",
]
