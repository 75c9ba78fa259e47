"""The functions a model is offered: the agent's tools from their ToolSpecs, and the two
reserved functions that are never tools."""

import pytest

from acf.domain.errors import InvalidValue
from acf.domain.tools import SideEffectPolicy, ToolSpec
from acf.pipelines.llm.tool_schemas import (
    CONFIRMATION_NOTE,
    REPORT_OUTCOME,
    SEND_MESSAGES,
    describe,
    tool_schemas,
)

ARGS = {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}


def test_each_tool_becomes_a_function_in_name_order_then_the_reserved_ones() -> None:
    specs = [
        ToolSpec("refund_order", SideEffectPolicy.IRREVERSIBLE, ARGS, requires_confirmation=True),
        ToolSpec("lookup_order", SideEffectPolicy.PURE, ARGS, description="Look up an order"),
    ]
    schemas = tool_schemas(specs)
    names = [f["function"]["name"] for f in schemas.functions]
    assert names == ["lookup_order", "refund_order", REPORT_OUTCOME, SEND_MESSAGES]
    lookup = schemas.functions[0]
    assert lookup["type"] == "function"
    assert lookup["function"]["parameters"] == ARGS
    assert (
        lookup["function"]["description"] == "Look up an order. It only reads; it changes nothing."
    )
    refund = schemas.functions[1]["function"]["description"]
    assert refund.startswith("The tool refund_order.") and refund.endswith(CONFIRMATION_NOTE)
    assert schemas.spec("refund_order") is specs[0]
    assert schemas.spec("report_outcome") is None


def test_descriptions_fall_back_to_the_status_text() -> None:
    spec = ToolSpec("track", SideEffectPolicy.PURE, status_text="Tracking your parcel...")
    assert describe(spec).startswith("Tracking your parcel...")


def test_dotted_names_are_spelled_for_the_model_and_mapped_back() -> None:
    spec = ToolSpec("crm.lookup", SideEffectPolicy.PURE)
    schemas = tool_schemas([spec])
    function = schemas.functions[0]["function"]
    assert function["name"] == "crm__lookup"
    assert function["parameters"] == {"type": "object", "properties": {}}
    assert schemas.spec("crm__lookup") is spec
    assert schemas.spec_of_tool("crm.lookup") is spec
    assert schemas.spec("delete_everything") is None  # sent as it is: the gateway refuses


def test_a_call_may_name_the_function_or_the_tool_itself() -> None:
    """The model reads tool names (``billing.refund``) in the history's notes: calling
    one by that name must find its spec, so a confirmation is never skipped."""
    spec = ToolSpec("billing.refund", SideEffectPolicy.IRREVERSIBLE, requires_confirmation=True)
    schemas = tool_schemas([spec, ToolSpec("lookup", SideEffectPolicy.PURE)])
    assert schemas.spec("billing__refund") is spec
    assert schemas.spec("billing.refund") is spec
    assert schemas.spec("billing") is None and schemas.spec("billing.refund.x") is None


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["report_outcome"], "reserved"),
        (["send_messages"], "reserved"),
        (["a.b", "a__b"], "both"),
    ],
)
def test_names_the_model_could_not_tell_apart_are_refused(names: list[str], problem: str) -> None:
    with pytest.raises(InvalidValue, match=problem):
        tool_schemas([ToolSpec(n, SideEffectPolicy.PURE) for n in names])


def test_the_reserved_functions_take_the_documented_arguments() -> None:
    functions = {f["function"]["name"]: f["function"] for f in tool_schemas([]).functions}
    report = functions[REPORT_OUTCOME]["parameters"]
    assert report["required"] == ["category"]
    assert "TOOL_DONE" not in report["properties"]["category"]["enum"]
    assert "HANDOFF" in report["properties"]["category"]["enum"]
    assert functions[SEND_MESSAGES]["parameters"]["properties"]["messages"]["type"] == "array"
