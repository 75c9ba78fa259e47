"""What the model reads: the system message, this turn's messages, tool results."""

import json

import pytest

from acf.domain.capabilities import DEFAULT_CAPABILITIES
from acf.domain.channels import Channel
from acf.domain.messages import ButtonReply, InboundMessage, MediaRef
from acf.domain.session_key import SessionKey
from acf.domain.tools import Outcome, SideEffectPolicy, ToolResult, ToolSpec
from acf.pipelines.llm.calls import MAX_ARGS_DEPTH, default_prompt, parse_args
from acf.pipelines.llm.messages import result_content, user_messages
from acf.pipelines.llm.prompt import DEFAULT_PROMPT, PromptSource, Site, render, system_message

SITE = Site("acme", "support", "cust-1", "sms", "de-CH")
NESTED = f"the arguments are nested deeper than {MAX_ARGS_DEPTH} levels"


def nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


NESTED_30 = nested(30)


def test_known_placeholders_are_filled_and_other_braces_stay() -> None:
    values = {"tenant_display_name": "Acme", "locale": "de-CH"}
    template = 'You serve {tenant_display_name} in {locale}; JSON: {"a": 1} {unknown}'
    assert render(template, values) == 'You serve Acme in de-CH; JSON: {"a": 1} {unknown}'


def test_the_system_message() -> None:
    source = PromptSource("Agent {agent} of {tenant_display_name} on {channel}.", "Acme Ltd")
    sms = DEFAULT_CAPABILITIES[Channel.SMS]
    content = system_message(source, SITE, ["tenant", "channel"], sms, "They want a refund.")[
        "content"
    ]
    assert content.startswith("Agent support of Acme Ltd on sms.")
    assert "- Business: Acme Ltd\n- Channel: sms" in content
    assert "cust-1" not in content  # the customer id was not chosen
    assert "it authorises nothing" in content
    assert "plain text only, no markdown, at most 1600 characters" in content
    assert content.endswith("They want a refund.")


def test_the_default_prompt_names_the_tenant() -> None:
    web = DEFAULT_CAPABILITIES[Channel.WEB]
    message = system_message(PromptSource(), SITE, ["customer_id", "locale"], web, None)
    assert message["role"] == "system"
    assert render(DEFAULT_PROMPT, {"tenant_display_name": "acme"}) in message["content"]
    assert "- Customer id: cust-1\n- Locale: de-CH" in message["content"]
    assert "markdown is shown" in message["content"]
    assert "Summary" not in message["content"]


def _message(seq: int, **fields: object) -> InboundMessage:
    key = SessionKey("acme", "support", "cust-1", Channel.WEB)
    return InboundMessage(f"m{seq}", "s1", key, seq, f"p{seq}", 0, **fields)  # type: ignore[arg-type]


def test_each_customer_message_is_one_user_message() -> None:
    messages = [
        _message(1, text=" Refund order 7 "),
        _message(2, text="actually 8"),
        _message(3, button=ButtonReply("confirm:x:yes", "Yes")),
        _message(4, button=ButtonReply("opt-2")),
        _message(5, media=(MediaRef("r", "image/png", "the receipt"),)),
    ]
    assert user_messages(messages) == [
        {"role": "user", "content": "Refund order 7"},
        {"role": "user", "content": "actually 8"},
        {"role": "user", "content": "Yes"},
        {"role": "user", "content": "opt-2"},
        {"role": "user", "content": "[the customer sent image/png: the receipt]"},
    ]


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            ToolResult(Outcome.OK, {"status": "shipped"}),
            {"outcome": "ok", "value": {"status": "shipped"}},
        ),
        (
            ToolResult(Outcome.ALREADY_DONE, {"refund": "R-1"}, done_at_ms=60_000),
            {
                "outcome": "already_done",
                "value": {"refund": "R-1"},
                "done_at": "1970-01-01T00:01Z",
                "done_at_ms": 60_000,
            },
        ),
        (
            ToolResult(Outcome.REFUSED, error="tool 'x' is not allowed here"),
            {"outcome": "refused", "error": "tool 'x' is not allowed here"},
        ),
        (
            ToolResult(Outcome.IN_DOUBT, error="unknown"),
            {"outcome": "in_doubt", "error": "unknown"},
        ),
    ],
)
def test_tool_results_as_the_model_reads_them(
    result: ToolResult, expected: dict[str, object]
) -> None:
    content = result_content(result)
    note = content.pop("note")
    assert content == expected
    assert note
    json.dumps(content)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"order_id": "7"}', {"order_id": "7"}),
        ("", {}),
        (
            "{bad",
            "the arguments are not valid JSON "
            "(Expecting property name enclosed in double quotes at character 1)",
        ),
        ("[1]", "the arguments must be a JSON object, not list"),
        # Deeper than the parser's stack: answered, never a crash of the attempt.
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", NESTED),
        ('{"a": ' + "[" * 40 + "]" * 40 + "}", NESTED),  # parsed, still too deep
        ('{"a": ' + "[" * 30 + "]" * 30 + "}", {"a": NESTED_30}),
        ('{"n": ' + "1" * 5000 + "}", "the arguments are not valid JSON (Exceeds the limit"),
    ],
)
def test_parse_args(arguments: str, expected: object) -> None:
    parsed = parse_args(arguments)
    if isinstance(expected, str) and expected.endswith("limit"):
        assert isinstance(parsed, str) and parsed.startswith(expected)
    else:
        assert parsed == expected


def test_the_default_question() -> None:
    spec = ToolSpec("refund_order", SideEffectPolicy.IRREVERSIBLE)
    assert default_prompt(spec, {"order_id": "7", "amount": 5}) == (
        "Shall I refund order (amount 5, order_id 7)?"
    )
    assert default_prompt(spec, {}) == "Shall I refund order?"
