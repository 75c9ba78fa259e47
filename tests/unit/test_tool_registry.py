"""The registry is the agent's allowlist; a bad schema or a duplicate is refused at once."""

from typing import Any

import jsonschema
import pytest

from acf.domain.tools import SideEffectPolicy, ToolSpec
from acf.ports.tool_backend import Tool
from acf.ports.tool_registry import ToolRegistry


async def _noop(args: Any) -> None:
    return None


def test_the_registry_is_the_allowlist() -> None:
    tools = ToolRegistry()

    @tools.tool(ToolSpec("lookup", SideEffectPolicy.PURE))
    async def lookup(call: Any) -> None:
        return None

    assert tools.names() == ["lookup"] and tools.get("delete") is None


def test_duplicates_and_broken_schemas_are_refused() -> None:
    tools = ToolRegistry([Tool(ToolSpec("a", SideEffectPolicy.PURE), _noop)])
    with pytest.raises(ValueError, match="registered twice"):
        tools.add(Tool(ToolSpec("a", SideEffectPolicy.PURE), _noop))
    broken = ToolSpec("b", SideEffectPolicy.PURE, args_schema={"type": "no-such-type"})
    with pytest.raises(jsonschema.SchemaError):
        tools.add(Tool(broken, _noop))
