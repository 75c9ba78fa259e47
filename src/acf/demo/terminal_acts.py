"""The five acts of ``acf demo``: what the customer does, and what must come out.

Every act returns its facts (counts read from the store, the ledger, the commerce backend
and the recording channel) and a one-line summary made from them; an expectation that is
not met is a problem, and the act fails.
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from acf.demo.terminal_stage import Stage
from acf.domain.events import EventKind
from acf.domain.tools import LedgerStatus
from acf.ports.checkpoints import Phase

Facts = dict[str, Any]


@dataclass(slots=True)
class Checks:
    """Expectations of one act; each unmet one is a problem."""

    problems: list[str] = field(default_factory=list)

    def equal(self, what: str, actual: object, wanted: object) -> None:
        if actual != wanted:
            self.problems.append(f"{what}: expected {wanted!r}, got {actual!r}")

    def true(self, what: str, ok: bool, got: object) -> None:
        if not ok:
            self.problems.append(f"{what}: got {got!r}")


Play = Callable[[Stage, Checks], Awaitable[tuple[list[str], Facts, str]]]
"""An act: plays on the stage and returns its customers, facts and summary."""


@dataclass(frozen=True, slots=True)
class Act:
    name: str
    headline: str
    play: Play


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else (many or word + 's')}"


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


_ORDER = re.compile(r"\b\d{4}\b")


def orders_in(texts: list[str]) -> list[str]:
    """The order numbers the replies talk about, in order, once each."""
    return list(dict.fromkeys(n for t in texts for n in _ORDER.findall(t)))


# -- 1. a burst ----------------------------------------------------------------------------


async def burst(stage: Stage, check: Checks) -> tuple[list[str], Facts, str]:
    await stage.say(0, "ana", "hi")
    await stage.say(450, "ana", "I'd like to know,")
    await stage.typing(800, "ana")
    await stage.say(1_300, "ana", "where my order is")
    await stage.say(1_800, "ana", "it's 1001")
    await stage.idle()
    replies = stage.replies("ana")
    closed = [e for e in await stage.events("ana") if e.kind is EventKind.WINDOW_CLOSED]
    facts: Facts = {
        "fragments": await stage.count("ana", EventKind.MESSAGE_RECEIVED),
        "windows": len(closed),
        "turns": await stage.count("ana", EventKind.TURN_COMMITTED),
        "replies": len(replies),
        "lookups": stage.backend.calls["lookup_order"],
        "orders_answered": orders_in(replies),
        "window_ms": int(closed[0].data["waited_ms"]) if closed else None,
    }
    check.equal("fragments stored", facts["fragments"], 4)
    check.equal("turns", facts["turns"], 1)
    check.equal("replies", facts["replies"], 1)
    check.equal("orders answered", facts["orders_answered"], ["1001"])
    summary = (
        f"{plural(facts['fragments'], 'fragment')} → {plural(facts['turns'], 'turn')} → "
        f"{plural(facts['replies'], 'reply', 'replies')} "
        f"(one window of {facts['window_ms']} ms held them together; "
        f"{plural(facts['lookups'], 'lookup')})"
    )
    return ["ana"], facts, summary


# -- 2. a correction -----------------------------------------------------------------------


async def correction(stage: Stage, check: Checks) -> tuple[list[str], Facts, str]:
    await stage.say(0, "ana", "where is order 1001")
    await stage.say(1_500, "ana", "sorry, I meant 1002")  # the 2 s lookup is under way
    await stage.idle()
    replies = stage.replies("ana")
    lookups = await stage.ledger("ana", "lookup_order")
    facts: Facts = {
        "messages": await stage.count("ana", EventKind.MESSAGE_RECEIVED),
        "superseded": await stage.count("ana", EventKind.TURN_SUPERSEDED),
        "turns": await stage.count("ana", EventKind.TURN_COMMITTED),
        "replies": len(replies),
        "orders_answered": orders_in(replies),
        "orders_looked_up": [str(e.args.get("order_id")) for e in lookups],
    }
    check.true("superseded turns", facts["superseded"] >= 1, facts["superseded"])
    check.equal("replies", facts["replies"], 1)
    check.equal("orders answered", facts["orders_answered"], ["1002"])
    check.true("1001 never looked up", "1001" not in facts["orders_looked_up"], lookups)
    sent = "never sent" if facts["replies"] == 1 else "sent anyway"
    answered = ", ".join(facts["orders_answered"]) or "nothing"
    summary = (
        f"{plural(facts['superseded'], 'superseded turn')}, its reply {sent}; "
        f"{plural(facts['replies'], 'reply', 'replies')}, about {answered} only "
        f"(looked up: {', '.join(facts['orders_looked_up']) or 'nothing'})"
    )
    return ["ana"], facts, summary


# -- 3. a duplicate webhook ----------------------------------------------------------------


async def duplicate(stage: Stage, check: Checks) -> tuple[list[str], Facts, str]:
    pid = "web-msg-7f3a"
    await stage.say(0, "ben", "where is order 1004?", pid)
    await stage.say(150, "ben", "where is order 1004?", pid)  # the provider retries
    await stage.idle()
    await stage.say(stage.now() + 5_000, "ben", "where is order 1004?", pid)  # and again
    await stage.idle()
    replies = stage.replies("ben")
    facts: Facts = {
        "webhooks": len(stage.steps),
        "stored": await stage.count("ben", EventKind.MESSAGE_RECEIVED),
        "duplicates": await stage.count("ben", EventKind.MESSAGE_DUPLICATE),
        "turns": await stage.count("ben", EventKind.TURN_COMMITTED),
        "replies": len(replies),
        "lookups": stage.backend.calls["lookup_order"],
    }
    check.equal("messages stored", facts["stored"], 1)
    check.equal("message.duplicate events", facts["duplicates"], facts["webhooks"] - 1)
    check.equal("turns", facts["turns"], 1)
    check.equal("replies", facts["replies"], 1)
    summary = (
        f"the same webhook {facts['webhooks']}x → stored {_times(facts['stored'])} "
        f"({facts['duplicates']} x message.duplicate) → {plural(facts['turns'], 'turn')}, "
        f"{plural(facts['replies'], 'reply', 'replies')}"
    )
    return ["ben"], facts, summary


# -- 4. a refund with confirmation ---------------------------------------------------------


async def refund(stage: Stage, check: Checks) -> tuple[list[str], Facts, str]:
    await stage.say(0, "ben", "refund order 1003")
    await stage.idle()
    before = stage.backend.calls["refund_order"]
    await stage.tap(stage.now() + 3_000, "ben", "Yes")
    await stage.idle()
    entries = await stage.ledger("ben", "refund_order")
    facts: Facts = {
        "confirmations_requested": await stage.count("ben", EventKind.CONFIRMATION_REQUESTED),
        "confirmations_resolved": await stage.count("ben", EventKind.CONFIRMATION_RESOLVED),
        "refund_calls_before_yes": before,
        "ledger_entries": len(entries),
        "ledger_status": [e.status.value for e in entries],
        "backend_refund_calls": stage.backend.calls["refund_order"],
        "refunds": len(stage.backend.refunds_of("1003")),
        "replies": len(stage.replies("ben")),
    }
    check.equal("confirmations requested", facts["confirmations_requested"], 1)
    check.equal("confirmations resolved", facts["confirmations_resolved"], 1)
    check.equal("refund calls before the yes", before, 0)
    check.equal("ledger entries", facts["ledger_entries"], 1)
    check.equal("ledger status", facts["ledger_status"], [LedgerStatus.SUCCEEDED.value])
    check.equal("backend refund calls", facts["backend_refund_calls"], 1)
    check.equal("refunds of order 1003", facts["refunds"], 1)
    check.equal("replies (question, answer)", facts["replies"], 2)
    status = "/".join(facts["ledger_status"]) or "none"
    summary = (
        f"{plural(facts['refunds'], 'refund')} executed, only after yes "
        f"({before} before it; ledger: {plural(facts['ledger_entries'], 'entry', 'entries')} "
        f"{status}, backend count {facts['backend_refund_calls']})"
    )
    return ["ben"], facts, summary


# -- 5. a crash ----------------------------------------------------------------------------

CRASH_PHASE = Phase.TOOL_RETURNED
"""The order lookup has returned; nothing of it is recorded yet."""


async def crash(stage: Stage, check: Checks) -> tuple[list[str], Facts, str]:
    stage.harness.crash_at(CRASH_PHASE)
    await stage.say(0, "carla", "where is order 1005?")
    await stage.idle()
    session = await stage.session("carla")
    replies = stage.replies("carla")
    starts = [e for e in await stage.events("carla") if e.kind is EventKind.TURN_STARTED]
    crashes = stage.harness.crash_log
    facts: Facts = {
        "crashes": len(crashes),
        "crash_phase": crashes[0].phase.value if crashes and crashes[0].phase else None,
        "attempts": max((int(e.data.get("attempt", 0)) for e in starts), default=0),
        "turns": await stage.count("carla", EventKind.TURN_COMMITTED),
        "replies": len(replies),
        "resent": stage.harness.channel.repeats(),
        "lost": session.last_seq - session.consumed_seq + await stage.undelivered("carla"),
        "orders_answered": orders_in(replies),
        "lookups": stage.backend.calls["lookup_order"],
    }
    check.equal("crashes", facts["crashes"], 1)
    check.equal("attempts", facts["attempts"], 2)
    check.equal("replies", facts["replies"], 1)
    check.equal("orders answered", facts["orders_answered"], ["1005"])
    check.equal("messages or replies lost", facts["lost"], 0)
    lost = "nothing lost" if facts["lost"] == 0 else f"{facts['lost']} lost"
    summary = (
        f"after the crash at {facts['crash_phase']} the turn was recovered "
        f"(attempt {facts['attempts']}): {plural(facts['replies'], 'reply', 'replies')}, {lost}"
    )
    return ["carla"], facts, summary


ACTS = (
    Act("burst", "A burst: four fragments while typing, one answer", burst),
    Act("correction", "A correction while the answer is being worked out", correction),
    Act(
        "duplicate",
        "A duplicate webhook: the provider delivers the same message 3 times",
        duplicate,
    ),
    Act("refund", "A refund: asked first, run once after the Yes button", refund),
    Act("crash", "A crash in the middle of a turn, and the recovery", crash),
)
