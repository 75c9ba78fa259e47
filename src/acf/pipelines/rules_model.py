r"""The rules document of the scripted rules pipeline: its pydantic models and their checks
(loading: ``acf.pipelines.rules_load``).

```yaml
sticky_seconds: 300            # how long a lane stays sticky after one of its rules answered
fallback: "Sorry, I didn't get that. I can look up an order or refund one."   # or a list
fallback_buttons: [{id: person, title: Talk to a person}]                     # optional
confirmation_replies:          # after a pending confirmation was settled (rules may override)
  yes: "Done."                 # (``yes`` / ``no`` may be written bare: YAML's booleans are
  no: "OK, I won't do it."     #  read back as the words)
  expired: "That request expired; ask again if you still want it."
  already_done: "That was already done earlier."
  failed: "Sorry, that didn't work."
  in_doubt: "I'm not sure it went through; a colleague will check."
tool_replies:                  # when a rule's call did not succeed (rules may override)
  failed: "Sorry, that didn't work."
  in_doubt: "I'm not sure it went through; a colleague will check."
  # already_done: unset -> the rule's own reply, with the recorded result
rules:                         # tried in file order; see ``acf.pipelines.router``
  - name: order_status
    lane: commerce
    intent: order_status       # default: the rule's name
    match: {regex: '\border\b\D{0,40}(?P<order_id>\d{3,8})\b'}   # str or list of str
    # match: {keywords: [refund, money back]}   # any of them, whole words, any case
    # match: {..., case_sensitive: true}
    # match: {regex: ..., unicode: true}       # \d, \w, \b, \s beyond ASCII (see below)
    when: {sticky: true}       # only while this rule's lane is sticky
    overrides_sticky: false    # true: counts as a rule of whichever lane is sticky
    # when: {after_intent: [refund_which_order]}  # only right after one of these intents
    confidence: 0.9            # default 1.0 for regex, 0.8 for keywords
    sticky_seconds: 600        # default: the document's; 0: the lane does not stick
    latency_ms: 1500           # simulated work before acting (a correction can supersede it)
    call: {tool: lookup_order, args: {order_id: "{order_id}"},
           failed: "No order {order_id}.", in_doubt: "...", already_done: "..."}
    confirm: {tool: refund_order, args: {order_id: "{order_id}"}, prompt: "Refund {order_id}?",
              ttl_seconds: 600, yes: "...", no: "...", expired: "...", already_done: "...",
              failed: "...", in_doubt: "..."}
    reply: "Order {order_id} is {result.status}."    # or a list: one message each
    buttons: [{id: refund, title: Refund it}]        # on the last reply message
    state: {slots: {order_id: "{order_id}"}}         # merge patch of ``slots`` / ``data``
    handoff: "the customer asked for a person"       # flags the session for a person
```

Templates (``acf.pipelines.templates``): ``{name}`` (a named group of the rule's regex),
``{state.<path>}``, ``{text}`` (the turn's text), ``{lane}``, ``{intent}``; ``{result.<path>}``
(the tool result) in a rule with a ``call`` and in outcome replies, which also have
``{error}`` and ``{done_at}``; ``{slot|default}``. A rule does not apply while a capture or
state slot it needs (without a default) is missing: the next rule is tried. A missing
result slot renders its default, or nothing. Slots are checked when the document loads:
a name that cannot exist there is an error. Errors name the source (the file), the dotted
path of the field (and the rule) and what was expected.

A rule runs: ``latency_ms``, then ``call`` (a failed call answers with its outcome reply and
stops), then ``confirm`` (its question may use the call's result), then the reply, the
question last. The text matched is the turn's messages joined by spaces (a button reply
counts by its title and id), its last ``router.MATCH_CHARS`` (2,000) characters only; a
superseded turn's restart reads all of its messages, so a rule that takes the last number
after its keyword answers a correction ("order 1001, sorry, 1002").

Regexes are searched (not anchored), ignoring case unless ``case_sensitive``, and compiled
with ``re.ASCII`` unless ``unicode: true``: ``\d`` is ``[0-9]`` (not Arabic-Indic or other
Unicode digits), ``\w``, ``\b``, ``\s`` and case folding are ASCII. Keywords are always
Unicode-aware. A customer writes anything, so a regex must not backtrack catastrophically:
no unbounded ``.*`` before a capture where the pattern can retry at many positions
(``\bkw\b(?:.*\D)?(?P<n>\d+)`` rescans the rest of the text at every ``kw``); bound the gap
(``\D{0,40}``), or commit to the first keyword with an anchored atomic group, then take the
last number in one pass: ``(?s)\A(?>.*?\bkw\b)(?:.*\D)?(?P<n>\d{3,8})\b`` (as the demo's
rules do). The 2,000-character cap bounds the cost of a pattern that is merely polynomial
(quadratic, cubic); it does not save an exponential one such as ``(a+)+$``: never nest
quantifiers over the same characters.
"""

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from acf.pipelines import templates

NAME = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
TOOL_NAME = r"^[a-z][a-z0-9_.-]{0,63}$"
PRIVATE_KEY = "rules"
"""``state.data.rules`` is the pipeline's own context (last intent, a pending confirm)."""
BASE_SLOTS = frozenset({"state", "text", "lane", "intent"})
LATE_SLOTS = frozenset({"result", "error", "done_at"})
"""Known only once a tool ran; never a reason for a rule not to apply."""
OUTCOMES = ("yes", "no", "expired", "already_done", "failed", "in_doubt")


class RulesModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _words(value: Any) -> Any:
    """YAML 1.1 reads a bare ``yes`` / ``no`` key as a boolean: read it back as the word."""
    if isinstance(value, Mapping):
        return {
            ({True: "yes", False: "no"}.get(k, k) if isinstance(k, bool) else k): v
            for k, v in value.items()
        }
    return value


@functools.lru_cache(maxsize=2048)
def _compile(pattern: str, case_sensitive: bool, unicode: bool) -> re.Pattern[str]:
    flags = re.NOFLAG if case_sensitive else re.IGNORECASE
    return re.compile(pattern, flags if unicode else flags | re.ASCII)


def _keyword_pattern(keyword: str) -> str:
    return r"(?<!\w)" + r"\s+".join(re.escape(w) for w in keyword.split()) + r"(?!\w)"


class ButtonFields(RulesModel):
    id: str = Field(min_length=1, max_length=256)
    title: str = Field(min_length=1, max_length=64)


class MatchFields(RulesModel):
    # the flags first: the regex validator reads them
    case_sensitive: bool = False
    unicode: bool = False
    """Regexes only: Unicode ``\\d``, ``\\w``, ``\\b``, ``\\s`` and case folding (default ASCII)."""
    regex: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()

    _listify = field_validator("regex", "keywords", mode="before")(_listed)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, patterns: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        unicode = bool(info.data.get("unicode", False))
        for pattern in patterns:
            try:
                _compile(pattern, bool(info.data.get("case_sensitive", False)), unicode)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
            except ValueError as exc:  # "(?u)" under re.ASCII: incompatible flags
                hint = "" if unicode else " (set unicode: true for Unicode matching)"
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}{hint}") from None
        return patterns

    @field_validator("keywords")
    @classmethod
    def _not_blank(cls, keywords: tuple[str, ...]) -> tuple[str, ...]:
        if any(not k.strip() for k in keywords):
            raise ValueError("a keyword must not be empty")
        return keywords

    @model_validator(mode="after")
    def _one_kind(self) -> "MatchFields":
        if bool(self.regex) == bool(self.keywords):
            raise ValueError("expected exactly one of regex (a pattern or a list) and keywords")
        if self.unicode and self.keywords:
            raise ValueError("unicode applies to regex only (keywords are always Unicode)")
        return self

    def patterns(self) -> tuple[re.Pattern[str], ...]:
        """What is searched for, in order (keywords: one pattern each, whole words)."""
        if self.regex:
            return tuple(_compile(s, self.case_sensitive, self.unicode) for s in self.regex)
        keywords = (_keyword_pattern(k) for k in self.keywords)
        return tuple(_compile(s, self.case_sensitive, True) for s in keywords)

    def capture_names(self) -> frozenset[str]:
        return frozenset(n for p in self.patterns() for n in p.groupindex)


class CallFields(RulesModel):
    tool: str = Field(pattern=TOOL_NAME)
    args: dict[str, Any] = Field(default_factory=dict)
    already_done: str | None = None
    failed: str | None = None
    in_doubt: str | None = None


class ConfirmFields(RulesModel):
    tool: str = Field(pattern=TOOL_NAME)
    args: dict[str, Any] = Field(default_factory=dict)
    prompt: str = Field(min_length=1)
    ttl_seconds: int | None = Field(default=None, gt=0)
    yes: str | None = None
    no: str | None = None
    expired: str | None = None
    already_done: str | None = None
    failed: str | None = None
    in_doubt: str | None = None

    _bare_words = model_validator(mode="before")(_words)


class WhenFields(RulesModel):
    sticky: bool = False
    after_intent: tuple[str, ...] = ()

    _listify = field_validator("after_intent", mode="before")(_listed)


class RuleFields(RulesModel):
    name: str = Field(pattern=NAME)
    lane: str = Field(pattern=NAME)
    intent: str | None = Field(default=None, pattern=NAME)
    match: MatchFields
    when: WhenFields = WhenFields()
    overrides_sticky: bool = False
    confidence: float | None = Field(default=None, ge=0, le=1)
    sticky_seconds: int | None = Field(default=None, ge=0)
    latency_ms: int = Field(default=0, ge=0, le=60_000)
    call: CallFields | None = None
    confirm: ConfirmFields | None = None
    reply: tuple[str, ...] = ()
    buttons: tuple[ButtonFields, ...] = ()
    state: dict[str, Any] = Field(default_factory=dict)
    handoff: str | None = None

    _listify = field_validator("reply", mode="before")(_listed)

    @model_validator(mode="after")
    def _coherent(self) -> "RuleFields":
        if not self.reply and self.confirm is None:
            raise ValueError("a rule needs a reply, a confirm, or both")
        if self.buttons and not self.reply:
            raise ValueError("buttons need a reply to go with")
        unknown = sorted(set(self.state) - {"slots", "data"})
        if unknown:
            raise ValueError(f"state may patch only slots and data, not {unknown}")
        data = self.state.get("data")
        if isinstance(data, Mapping) and PRIVATE_KEY in data:
            raise ValueError(f"state.data.{PRIVATE_KEY} is the pipeline's own; use another key")
        for part in ("slots", "data"):
            if part in self.state and not isinstance(self.state[part], Mapping):
                raise ValueError(f"state.{part} must be a mapping")
        return self

    @property
    def intent_name(self) -> str:
        return self.intent or self.name

    @property
    def score(self) -> float:
        if self.confidence is not None:
            return self.confidence
        return 1.0 if self.match.regex else 0.8


class ConfirmationReplies(RulesModel):
    yes: str = "Done."
    no: str = "OK, I won't do it."
    expired: str = "That request expired, so I did nothing; ask again if you still want it."
    already_done: str = "That was already done earlier."
    failed: str = "Sorry, that didn't work."
    in_doubt: str = "I'm not sure that went through; a colleague will check and get back to you."

    _bare_words = model_validator(mode="before")(_words)


class ToolReplies(RulesModel):
    already_done: str | None = None
    failed: str = "Sorry, that didn't work."
    in_doubt: str = "I'm not sure that went through; a colleague will check and get back to you."


class RulesConfig(RulesModel):
    sticky_seconds: int = Field(default=300, ge=0)
    fallback: tuple[str, ...] = Field(default=("Sorry, I didn't get that.",), min_length=1)
    fallback_buttons: tuple[ButtonFields, ...] = ()
    confirmation_replies: ConfirmationReplies = ConfirmationReplies()
    tool_replies: ToolReplies = ToolReplies()
    rules: tuple[RuleFields, ...]

    _listify = field_validator("fallback", mode="before")(_listed)

    @model_validator(mode="after")
    def _consistent(self) -> "RulesConfig":
        problems = _document_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def rule(self, name: str) -> RuleFields | None:
        return next((r for r in self.rules if r.name == name), None)


def _slot_problems(where: str, texts: Iterable[str], known: frozenset[str]) -> list[str]:
    problems = []
    for text in texts:
        try:
            found = templates.slots(text)
        except templates.TemplateError as exc:
            problems.append(f"{where}: {exc}")
            continue
        for slot in found:
            if slot.root not in known:
                expected = ", ".join(sorted(known - {"state", "result"}))
                extra = " or state.*" + (", result.*" if "result" in known else "")
                problems.append(
                    f"{where}: unknown slot {{{slot.dotted}}}; expected one of {expected}{extra}"
                )
    return problems


def _rule_problems(index: int, rule: RuleFields) -> list[str]:
    def at(field: str) -> str:
        return f"rules.{index}.{field} (rule {rule.name!r})"

    reserved = sorted(rule.match.capture_names() & (BASE_SLOTS | LATE_SLOTS))
    if reserved:
        return [f"{at('match.regex')}: named groups {reserved} clash with built-in slots"]
    early = BASE_SLOTS | rule.match.capture_names()
    with_result = early | ({"result"} if rule.call else frozenset())
    outcome = early | LATE_SLOTS
    problems: list[str] = []
    for j, text in enumerate(rule.reply):
        problems += _slot_problems(at(f"reply.{j}"), [text], with_result)
    problems += _slot_problems(at("state"), templates.strings(rule.state), with_result)
    if rule.handoff is not None:
        problems += _slot_problems(at("handoff"), [rule.handoff], with_result)
    if rule.call is not None:
        problems += _slot_problems(at("call.args"), templates.strings(rule.call.args), early)
        for name in ("already_done", "failed", "in_doubt"):
            text = getattr(rule.call, name)
            if text is not None:
                problems += _slot_problems(at(f"call.{name}"), [text], outcome)
    if rule.confirm is not None:
        c = rule.confirm
        problems += _slot_problems(at("confirm.args"), templates.strings(c.args), with_result)
        problems += _slot_problems(at("confirm.prompt"), [c.prompt], with_result)
        for name in OUTCOMES:
            text = getattr(c, name)
            if text is not None:
                problems += _slot_problems(at(f"confirm.{name}"), [text], outcome)
    return problems


def _document_problems(config: RulesConfig) -> list[str]:
    problems: list[str] = [] if config.rules else ["rules: expected at least one rule"]
    seen: set[str] = set()
    intents = {r.intent_name for r in config.rules}
    for index, rule in enumerate(config.rules):
        if rule.name in seen:
            problems.append(f"rules.{index}.name: rule {rule.name!r} is defined twice")
        seen.add(rule.name)
        for intent in rule.when.after_intent:
            if intent not in intents:
                problems.append(
                    f"rules.{index}.when.after_intent (rule {rule.name!r}): no rule has "
                    f"intent {intent!r}"
                )
        problems += _rule_problems(index, rule)
    for j, text in enumerate(config.fallback):
        problems += _slot_problems(f"fallback.{j}", [text], frozenset({"state", "text"}))
    for group in ("confirmation_replies", "tool_replies"):
        for name, text in getattr(config, group).model_dump().items():
            if text is not None:
                problems += _slot_problems(f"{group}.{name}", [text], BASE_SLOTS | LATE_SLOTS)
    return problems
