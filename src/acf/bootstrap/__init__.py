"""The composition root: settings in, wired components out. No I/O at import."""

from acf.bootstrap.agents import ToolBackends, build_agents, channel_policy
from acf.bootstrap.builtin_tools import BuiltinTools, ToolFactory
from acf.bootstrap.embedded import Embedded, database_path, open_embedded
from acf.bootstrap.service import Service, open_service
from acf.bootstrap.settings import AcfSettings, Role, SettingsError, read_settings

__all__ = [
    "AcfSettings",
    "BuiltinTools",
    "Embedded",
    "Role",
    "Service",
    "SettingsError",
    "ToolBackends",
    "ToolFactory",
    "build_agents",
    "channel_policy",
    "database_path",
    "open_embedded",
    "open_service",
    "read_settings",
]
