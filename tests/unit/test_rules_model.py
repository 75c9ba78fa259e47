"""The rules document: validation errors name the file, the field path (and rule) and what
was expected; templates render predictably; the bundled demo rules load."""

from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from acf.demo import DEMO_RULES_PATH, demo_rules
from acf.demo.commerce import COMMERCE_SPECS
from acf.domain.errors import InvalidValue
from acf.domain.tools import SideEffectPolicy, ToolSpec
from acf.pipelines import templates
from acf.pipelines.rules_load import check_tools, load_rules, parse_rules


def _rule(**fields: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "name": "order_status",
        "lane": "commerce",
        "match": {"regex": r"order (?P<order_id>\d+)"},
        "reply": "Order {order_id}.",
    }
    rule.update(fields)
    return rule


def _doc(*rules: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"rules": list(rules) or [_rule()], **top}


def _error(body: Any) -> str:
    with pytest.raises(InvalidValue) as caught:
        parse_rules(body, "support_rules.yaml")
    return str(caught.value)


def test_a_valid_document_parses_with_defaults() -> None:
    config = parse_rules(_doc(), "x.yaml")
    (rule,) = config.rules
    assert rule.intent_name == "order_status"
    assert rule.score == 1.0
    assert config.sticky_seconds == 300
    assert rule.reply == ("Order {order_id}.",)
    assert rule.match.capture_names() == {"order_id"}


def test_keyword_rules_score_lower_and_match_whole_words_in_any_case() -> None:
    config = parse_rules(
        _doc(_rule(match={"keywords": ["money back", "refund"]}, reply="OK")), "x.yaml"
    )
    (rule,) = config.rules
    assert rule.score == 0.8
    patterns = rule.match.patterns()
    assert any(p.search("I want my MONEY   back") for p in patterns)
    assert not any(p.search("refunded") for p in patterns)


ARABIC_INDIC_1001 = "\u0661\u0660\u0660\u0661"


def test_regexes_are_ascii_unless_the_rule_asks_for_unicode() -> None:
    ascii_rule, unicode_rule = parse_rules(
        _doc(
            _rule(match={"regex": r"order\W+(?P<order_id>\d+)"}),
            _rule(name="wide", match={"regex": r"order\W+(?P<order_id>\d+)", "unicode": True}),
        ),
        "x.yaml",
    ).rules
    (narrow,) = ascii_rule.match.patterns()
    (wide,) = unicode_rule.match.patterns()
    assert narrow.search("ORDER 1001") and wide.search("ORDER 1001")  # case still ignored
    assert narrow.search(f"order {ARABIC_INDIC_1001}") is None
    found = wide.search(f"order {ARABIC_INDIC_1001}")
    assert found is not None and found["order_id"] == ARABIC_INDIC_1001
    assert narrow.search("order \u00e91001")  # \W: \u00e9 is not an ASCII word character
    assert wide.search("order \u00e91001") is None
    keywords = parse_rules(_doc(_rule(match={"keywords": ["\u00fcber"]}, reply="x")), "x")
    (umlaut,) = keywords.rules[0].match.patterns()
    assert umlaut.search("\u00dcBER alles") and not umlaut.search("x\u00fcber")  # Unicode


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"rule": []}, "rule: Extra inputs are not permitted"),
        ({"rules": []}, "support_rules.yaml: rules: expected at least one rule"),
        (_doc(_rule(replyy="x")), "rules.0.replyy (rule 'order_status'): Extra inputs"),
        (
            _doc(_rule(match={"regex": "order (?P<order_id>\\d+"})),
            "rules.0.match.regex (rule 'order_status'): invalid regular expression",
        ),
        (
            _doc(_rule(match={"regex": "x", "keywords": ["y"]})),
            "rules.0.match (rule 'order_status'): expected exactly one of regex",
        ),
        (
            _doc(_rule(match={"regex": r"(?u)order (?P<order_id>\d+)"})),
            "rules.0.match.regex (rule 'order_status'): invalid regular expression "
            "'(?u)order (?P<order_id>\\\\d+)': ASCII and UNICODE flags are incompatible (set "
            "unicode: true",
        ),
        (
            _doc(_rule(match={"keywords": ["order"], "unicode": True}, reply="x")),
            "rules.0.match (rule 'order_status'): unicode applies to regex only",
        ),
        (
            _doc(_rule(reply="Order {order_no}.")),
            "rules.0.reply.0 (rule 'order_status'): unknown slot {order_no}; expected one of "
            "intent, lane, order_id, text or state.*",
        ),
        (
            _doc(_rule(reply="It is {result.status}.")),
            "rules.0.reply.0 (rule 'order_status'): unknown slot {result.status}",
        ),
        (
            _doc(_rule(match={"keywords": ["order"]})),
            "rules.0.reply.0 (rule 'order_status'): unknown slot {order_id}",
        ),
        (
            _doc(_rule(match={"regex": r"(?P<text>\w+)"}, reply="x")),
            "rules.0.match.regex (rule 'order_status'): named groups ['text'] clash",
        ),
        (_doc(_rule(reply="Order {order_id")), "rules.0.reply.0 (rule 'order_status'): unmatched"),
        (
            _doc(_rule(call={"tool": "", "args": {}})),
            "rules.0.call.tool (rule 'order_status'): String should match pattern",
        ),
        (
            _doc(_rule(call={"tool": "lookup_order", "args": {"id": "{result.x}"}})),
            "rules.0.call.args (rule 'order_status'): unknown slot {result.x}",
        ),
        (
            _doc(_rule(state={"meta": {"lane": "x"}})),
            "rules.0 (rule 'order_status'): state may patch only slots and data",
        ),
        (
            _doc(_rule(state={"data": {"rules": {}}})),
            "state.data.rules is the pipeline's own",
        ),
        (_doc(_rule(reply=[])), "a rule needs a reply, a confirm, or both"),
        (_doc(_rule(), _rule()), "rules.1.name: rule 'order_status' is defined twice"),
        (
            _doc(_rule(when={"after_intent": "nothing"})),
            "rules.0.when.after_intent (rule 'order_status'): no rule has intent 'nothing'",
        ),
        (_doc(fallback="Hm, {order_id}?"), "fallback.0: unknown slot {order_id}"),
        (_doc(sticky_seconds=-1), "sticky_seconds: Input should be greater than or equal to 0"),
        (["not", "a", "mapping"], "support_rules.yaml: expected a mapping with rules, got list"),
    ],
)
def test_errors_name_the_source_the_field_and_what_was_expected(body: Any, expected: str) -> None:
    message = _error(body)
    assert message.startswith("support_rules.yaml: ")
    assert expected in message


def test_slots_allowed_where_they_can_exist() -> None:
    confirm = {
        "tool": "refund_order",
        "args": {"order_id": "{order_id}"},
        "prompt": "Refund {result.amount} for {order_id}?",
        "yes": "Done: {result.refund_id} at {done_at}.",
        "failed": "No: {error}",
    }
    call = {"tool": "lookup_order", "args": {"order_id": "{order_id}"}, "failed": "{error}"}
    config = parse_rules(
        _doc(_rule(call=call, confirm=confirm, reply="{result.status} {state.slots.x|?}")), "x"
    )
    assert config.rules[0].confirm is not None


def test_bare_yes_and_no_keys_read_as_words() -> None:
    # YAML 1.1 reads a bare `yes:` / `no:` key as a boolean.
    body = _doc(
        _rule(confirm={"tool": "refund_order", "prompt": "Sure?", True: "Y", False: "N"}),
        confirmation_replies={True: "yes!", False: "no!"},
    )
    config = parse_rules(body, "x")
    assert config.confirmation_replies.yes == "yes!"
    assert config.confirmation_replies.no == "no!"
    confirm = config.rules[0].confirm
    assert confirm is not None
    assert (confirm.yes, confirm.no) == ("Y", "N")


def test_load_rules_names_the_file_on_bad_yaml_and_missing_files(tmp_path: Path) -> None:
    broken = tmp_path / "rules.yaml"
    broken.write_text("rules:\n  - name: [unclosed\n", encoding="utf-8")
    with pytest.raises(InvalidValue, match=r"rules\.yaml \(line \d+, column \d+\): invalid YAML"):
        load_rules(broken)
    with pytest.raises(InvalidValue, match=r"nowhere\.yaml: cannot read"):
        load_rules(tmp_path / "nowhere.yaml")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("rules:\n  - {name: a, lane: x, match: {keywords: [a]}}\n", encoding="utf-8")
    with pytest.raises(InvalidValue, match=r"wrong\.yaml: rules\.0 \(rule 'a'\): a rule needs"):
        load_rules(wrong)


def test_the_bundled_demo_rules_load_as_package_data() -> None:
    resource = files("acf.demo") / "support_rules.yaml"
    assert resource.is_file()
    assert Path(str(resource)) == DEMO_RULES_PATH
    config = demo_rules()
    names = {r.name for r in config.rules}
    assert {"refund", "order_status", "order_number_only", "talk_to_person"} <= names
    check_tools(config, COMMERCE_SPECS, str(DEMO_RULES_PATH))  # every tool exists, used right


def test_check_tools_names_unknown_tools_and_unconfirmed_irreversible_calls() -> None:
    refund = ToolSpec("refund_order", SideEffectPolicy.IRREVERSIBLE, requires_confirmation=True)
    config = parse_rules(
        _doc(
            _rule(call={"tool": "refund_order", "args": {"order_id": "{order_id}"}}),
            _rule(name="other", call={"tool": "lookup_order"}),
        ),
        "x",
    )
    with pytest.raises(InvalidValue) as caught:
        check_tools(config, [refund], "rules.yaml")
    message = str(caught.value)
    assert "rules.0.call.tool (rule 'order_status'): refund_order requires confirmation" in message
    assert "rules.1.call.tool (rule 'other'): the agent has no tool 'lookup_order'" in message


# -- templates ------------------------------------------------------------------------


VALUES = {
    "order_id": "1001",
    "state": {"slots": {"order_id": "1002", "count": 3}},
    "result": {"status": "shipped", "items": ["shoes", "socks"], "paid": True},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Order {order_id}", "Order 1001"),
        ("{state.slots.order_id}", "1002"),
        ("{result.status}/{result.items}/{result.items.1}", "shipped/shoes, socks/socks"),
        ("paid: {result.paid}", "paid: yes"),
        ("[{result.nothing}]", "[]"),
        ("[{result.nothing|unknown}]", "[unknown]"),
        ("[{missing.deep.path|}]", "[]"),
        ("{{literal}} {order_id}", "{literal} 1001"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert templates.render(template, VALUES) == expected


def test_render_value_keeps_the_type_of_a_lone_slot() -> None:
    rendered = templates.render_value(
        {"n": "{state.slots.count}", "s": "#{order_id}", "k": 5, "l": ["{order_id}"]}, VALUES
    )
    assert rendered == {"n": 3, "s": "#1001", "k": 5, "l": ["1001"]}


@pytest.mark.parametrize("template", ["{", "a}b", "{bad name}", "{9lives}"])
def test_malformed_templates_are_refused(template: str) -> None:
    with pytest.raises(templates.TemplateError):
        templates.slots(template)


def test_missing_lists_needed_slots_only() -> None:
    needed = ["{order_id} {state.slots.gone} {state.slots.gone|x} {result.status}"]
    assert templates.missing(needed, VALUES, frozenset({"result"})) == ["state.slots.gone"]
    assert templates.missing(needed, {}, frozenset()) == [
        "order_id",
        "state.slots.gone",
        "result.status",
    ]
