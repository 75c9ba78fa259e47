"""One agent as the runtime serves it: its pipeline, its settings and the tools it may call.

Built by the composition root (or a test), read by the service; a port so both, and
pipeline authors, may import it.
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from types import MappingProxyType
from typing import Any

from acf.domain.agent_settings import AgentSettings
from acf.ports.pipeline import Pipeline
from acf.ports.tool_registry import ToolRegistry
from acf.version import __version__


@dataclass(frozen=True)
class AgentBinding:
    pipeline: Pipeline
    settings: AgentSettings
    tools: ToolRegistry = field(default_factory=ToolRegistry)
    """The tools this agent may call (the allowlist)."""

    @cached_property
    def agent_version(self) -> str:
        """acf's version plus the pipeline's declared version."""
        return f"acf/{__version__} {self.pipeline.name}/{self.pipeline.version}"

    @cached_property
    def resolved(self) -> Mapping[str, Any]:
        """``describe()`` computed once and frozen all the way down (what ``ctx.config``
        shows): a pipeline cannot change the configuration of later turns."""
        frozen: Mapping[str, Any] = _freeze(self.describe())
        return frozen

    def describe(self) -> dict[str, Any]:
        """The resolved configuration as plain JSON."""
        return {
            "pipeline": {"name": self.pipeline.name, "version": self.pipeline.version},
            "tools": [
                _plain(dataclasses.asdict(tool.spec))
                for tool in (self.tools.get(n) for n in self.tools.names())
                if tool is not None
            ],
            "settings": _plain(dataclasses.asdict(self.settings)),
        }


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
