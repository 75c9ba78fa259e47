"""The registry of built-in tools: in-process tool sets a configuration names with
``builtin: <name>`` (``{name: lookup_order, builtin: commerce}``).

The process that wires acf registers the sets it offers (the demo registers ``commerce``,
``acf.demo.register_tools``); the composition root looks names up here, so it never imports
whoever provides them.
"""

from collections.abc import Callable, Iterable

from acf.ports.tool_backend import Tool

ToolFactory = Callable[[], Iterable[Tool]]
"""Makes one tenant's tools of a set, over a backend of their own (never shared)."""


class BuiltinTools:
    """Named tool factories; each tenant that uses a set gets the tools of one call."""

    def __init__(self) -> None:
        self._factories: dict[str, ToolFactory] = {}

    def register(self, name: str, factory: ToolFactory) -> None:
        if name in self._factories:
            raise ValueError(f"builtin tools {name!r} are registered already")
        self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted(self._factories)

    def make(self, name: str) -> dict[str, Tool] | None:
        """A fresh set of the tools registered as ``name``, by tool name; ``None`` when no
        set has that name."""
        factory = self._factories.get(name)
        if factory is None:
            return None
        return {tool.spec.name: tool for tool in factory()}
