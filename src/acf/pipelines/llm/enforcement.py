"""Deterministic checks of a generated reply (DESIGN §16; seed 001 P10, seed 002 R4). Pure,
table-tested; the pipeline acts on what they find:

- **claimed action**: the reply matches a tool's claim patterns while no execution of that
  tool succeeded in this turn group (or is recorded as done within the tool's dedupe TTL):
  the model is asked once more with the reason; a second claim withholds the reply (the
  agent's fallback goes out and the session is flagged);
- **banned phrase**: the same (once more, then the fallback);
- **max length**: once more; a second reply too long is cut at the last sentence end that
  fits (the customer still gets an answer);
- **required disclosure**: appended, never regenerated (a model cannot be trusted to keep
  a sentence word for word): to the session's first reply, or to every reply.
"""

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from acf.config.pipelines import EnforcementFields
from acf.domain.formatting import split_text
from acf.pipelines.llm.shaping import strip_markdown

CLAIMED_ACTION = "claimed_action"
BANNED_PHRASE = "banned_phrase"
MAX_LENGTH = "max_length"
REQUIRED_DISCLOSURE = "required_disclosure"
CUT_AFTER_RETRY = frozenset({MAX_LENGTH})
"""Rules whose second hit cuts the reply instead of withholding it."""


@dataclass(frozen=True, slots=True)
class Rules:
    max_chars: int | None = None
    banned: tuple[str, ...] = ()
    disclosure: str | None = None
    disclosure_every_reply: bool = False
    claims: Mapping[str, tuple[re.Pattern[str], ...]] = field(default_factory=dict)

    @classmethod
    def from_fields(cls, fields: EnforcementFields) -> "Rules":
        return cls(
            max_chars=fields.max_chars,
            banned=tuple(fields.banned_phrases),
            disclosure=fields.required_disclosure,
            disclosure_every_reply=fields.disclosure_every_reply,
            claims={
                tool: tuple(re.compile(p, re.IGNORECASE) for p in patterns)
                for tool, patterns in fields.claims.items()
            },
        )


@dataclass(frozen=True, slots=True)
class Hit:
    rule: str
    detail: str
    """The tool, the phrase, or the length."""
    reason: str
    """What the model is told when it is asked again."""


def _phrase(phrase: str) -> re.Pattern[str]:
    body = re.escape(phrase.strip())
    start = r"\b" if phrase.strip()[:1].isalnum() else ""
    end = r"\b" if phrase.strip()[-1:].isalnum() else ""
    return re.compile(f"{start}{body}{end}", re.IGNORECASE)


def check(rules: Rules, texts: Sequence[str], done_tools: Collection[str]) -> list[Hit]:
    """What is wrong with the reply ``texts`` (its messages), given the tools whose action
    is on record as done (``done_tools``). Patterns and phrases see the messages as one
    text with its whitespace collapsed (a claim may span two messages or lines), both as
    written and as the words the customer reads (markdown marks stripped: "I have
    **refunded**" is a claim on any channel). The disclosure is not checked here."""
    written = " ".join(" ".join(texts).split())
    words = " ".join(strip_markdown(" ".join(texts)).split())
    views = (written,) if words == written else (written, words)
    hits: list[Hit] = []
    for tool, patterns in sorted(rules.claims.items()):
        if tool in done_tools:
            continue
        if any(p.search(text) for p in patterns for text in views):
            hits.append(
                Hit(
                    CLAIMED_ACTION,
                    tool,
                    f"The reply says {tool} was done, but it did not run successfully in "
                    "this conversation. Do not claim it; say what actually happened.",
                )
            )
    for phrase in rules.banned:
        if any(_phrase(phrase).search(text) for text in views):
            hits.append(
                Hit(BANNED_PHRASE, phrase, f'The reply uses the phrase "{phrase}"; never use it.')
            )
    length = sum(len(t) for t in texts)
    if rules.max_chars is not None and length > rules.max_chars:
        hits.append(
            Hit(
                MAX_LENGTH,
                str(length),
                f"The reply has {length} characters; keep it under {rules.max_chars}.",
            )
        )
    return hits


def retry_note(hits: Sequence[Hit]) -> str:
    """The system note of the second request: why the first reply was not sent."""
    reasons = " ".join(h.reason for h in hits)
    return f"Your previous reply was not sent. {reasons} Write the reply to the customer again."


def withholds(hits: Sequence[Hit]) -> bool:
    """Whether hits of a second reply withhold it (else it is cut to length)."""
    return any(h.rule not in CUT_AFTER_RETRY for h in hits)


def cut(texts: Sequence[str], max_chars: int) -> list[str]:
    """The messages within ``max_chars`` in all: whole messages while they fit, the next
    one cut after its last sentence end that fits (``split_text``), the rest dropped."""
    kept: list[str] = []
    room = max_chars
    for text in texts:
        if len(text) <= room:
            kept.append(text)
            room -= len(text)
            continue
        if room > 0:
            head = split_text(text, room)[0]
            if head:
                kept.append(head)
        break
    return kept


def needs_disclosure(rules: Rules, texts: Sequence[str], earlier: Sequence[str]) -> bool:
    """Whether the disclosure must be appended: it is required, the reply lacks it, and
    (unless it goes with every reply) no earlier reply of the session carried it."""
    disclosure = rules.disclosure
    if disclosure is None:
        return False
    wanted = disclosure.strip().casefold()
    if any(wanted in t.casefold() for t in texts):
        return False
    return rules.disclosure_every_reply or not any(wanted in t.casefold() for t in earlier)
