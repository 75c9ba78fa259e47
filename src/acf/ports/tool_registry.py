"""The tools one agent may call: its allowlist, as the gateway and the composition root see
it. Beside ``Tool`` (``tool_backend``) so pipeline authors, the service and the
composition root can all import it."""

from collections.abc import Callable, Iterable

import jsonschema

from acf.domain.tools import ToolSpec
from acf.ports.tool_backend import Handler, Tool


class ToolRegistry:
    """The tools one agent may use: the allowlist is exactly what is registered here."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if tool.spec.name in self._tools:
            raise ValueError(f"tool {tool.spec.name} is registered twice")
        jsonschema.Draft202012Validator.check_schema(dict(tool.spec.args_schema))
        self._tools[tool.spec.name] = tool

    def tool(self, spec: ToolSpec) -> Callable[[Handler], Handler]:
        """Decorator: ``@registry.tool(ToolSpec("refund", SideEffectPolicy.IRREVERSIBLE))``."""

        def register(handler: Handler) -> Handler:
            self.add(Tool(spec, handler))
            return handler

        return register

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)
