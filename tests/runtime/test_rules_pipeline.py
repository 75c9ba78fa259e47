"""The rules pipeline with the demo's rules and commerce backend, on the real embedded
runtime (the harness): bursts, corrections, confirmations, sticky lanes and the fallback."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from acf.demo import DEMO_RULES_PATH
from acf.demo.commerce import CommerceBackend, commerce_tools
from acf.domain.agent_settings import AgentSettings
from acf.domain.handoff import HandoffPolicy
from acf.domain.modes import SessionMode
from acf.domain.tools import LedgerStatus
from acf.domain.turns import TurnPhase
from acf.pipelines.rules import RulesPipeline
from acf.pipelines.rules_load import load_rules, parse_rules
from acf.pipelines.rules_model import RulesConfig
from acf.ports.agent_binding import AgentBinding
from acf.ports.checkpoints import Phase
from acf.ports.ledger import LedgerQuery
from acf.ports.tool_registry import ToolRegistry
from acf.service.agents import Agents
from acf.testing.harness import AGENT, TENANT, Harness, HarnessOptions

STATUS_1001 = "Order 1001 is shipped: it is on its way with DHL (tracking 00340434161094)."
STATUS_1002 = "Order 1002 is processing: it is being packed and should ship within 24 hours."


@asynccontextmanager
async def demo(
    tmp_path: Path, config: RulesConfig | None = None
) -> AsyncIterator[tuple[Harness, CommerceBackend]]:
    """The harness serving the rules pipeline, with the commerce tools over ``backend``."""
    backend = CommerceBackend()
    pipeline = RulesPipeline(config or load_rules(DEMO_RULES_PATH))
    harness = Harness(tmp_path, HarnessOptions(pipeline=pipeline))
    binding = AgentBinding(pipeline, AgentSettings(), ToolRegistry(commerce_tools(backend)))
    harness.agents = Agents({TENANT: {AGENT: binding}})  # real tools, not scripted ones
    async with harness:
        yield harness, backend


async def _state(h: Harness, customer: str) -> dict[str, Any]:
    session = await h.store.sessions.find_open(TENANT, h.key(customer))
    assert session is not None
    return dict(session.state)


async def _phases(h: Harness, customer: str) -> list[TurnPhase]:
    session = await h.store.sessions.find_open(TENANT, h.key(customer))
    assert session is not None
    return [t.phase for t in await h.store.turns.list_turns(TENANT, session.session_id)]


async def test_a_burst_of_fragments_gets_one_reply(tmp_path: Path) -> None:
    async with demo(tmp_path) as (h, backend):
        for text in ["hi", "I'd like to know", "where order 1001 is"]:
            await h.send("alice", text)
            await h.advance(300)
        await h.run_until_idle()
        assert h.replies("alice") == [STATUS_1001]
        assert backend.calls["lookup_order"] == 1


async def test_a_correction_during_the_slow_lookup_delivers_only_the_corrected_answer(
    tmp_path: Path,
) -> None:
    async with demo(tmp_path) as (h, backend):
        await h.send("alice", "where is order 1001")
        await h.advance(1_500)  # the window closed; the lookup "works" for 2 s
        assert TurnPhase.RUNNING in await _phases(h, "alice")
        await h.send("alice", "sorry, I meant 1002")
        await h.run_until_idle()
        assert h.replies("alice") == [STATUS_1002]
        assert TurnPhase.SUPERSEDED in await _phases(h, "alice")
        # The superseded turn was cut during its simulated work: 1001 was never looked up.
        assert backend.calls["lookup_order"] == 1
        (entry,) = await h.store.ledger.query(TENANT, LedgerQuery(tool="lookup_order"))
        assert entry.args == {"order_id": "1002"}


async def test_a_correction_after_the_answer_uses_the_sticky_commerce_lane(
    tmp_path: Path,
) -> None:
    async with demo(tmp_path) as (h, _):
        await h.send("alice", "where is order 1001")
        await h.run_until_idle()
        state = await _state(h, "alice")
        assert state["meta"]["lane"] == "commerce"
        now = h.clock.now_ms()
        assert now < state["meta"]["sticky_until_ms"] <= now + 300_000
        assert state["slots"] == {"order_id": "1001"}
        await h.send("alice", "sorry, I meant 1002")
        await h.run_until_idle()
        assert h.replies("alice") == [STATUS_1001, STATUS_1002]
        # A bare number in a fresh conversation is not an order question.
        await h.send("bob", "1002")
        await h.run_until_idle()
        assert h.replies("bob")[0].startswith("Sorry, I didn't get that.")


async def test_the_sticky_lane_expires(tmp_path: Path) -> None:
    async with demo(tmp_path) as (h, _):
        await h.send("alice", "where is order 1001")
        await h.run_until_idle()
        await h.advance(301_000)
        await h.send("alice", "1002")
        await h.run_until_idle()
        assert h.replies("alice")[-1].startswith("Sorry, I didn't get that.")


STICKY_RULES = {
    "sticky_seconds": 60,
    "rules": [
        {
            "name": "support_problem",
            "lane": "support",
            "match": {"keywords": ["problem"]},
            "reply": "support: a colleague will help",
        },
        {
            "name": "order",
            "lane": "commerce",
            "match": {"regex": r"order (?P<order_id>\d+)"},
            "reply": "commerce: order {order_id}",
        },
        {
            "name": "commerce_problem",
            "lane": "commerce",
            "match": {"keywords": ["problem"]},
            "reply": "commerce: which order has a problem?",
        },
    ],
}


async def test_a_sticky_lane_keeps_the_conversation_from_ping_ponging(tmp_path: Path) -> None:
    config = parse_rules(STICKY_RULES, "sticky")
    async with demo(tmp_path, config) as (h, _):
        await h.send("alice", "about order 7")
        await h.run_until_idle()
        await h.send("alice", "there is a problem")
        await h.run_until_idle()
        await h.send("bob", "there is a problem")  # no sticky lane: file order
        await h.run_until_idle()
        await h.advance(61_000)
        await h.send("alice", "another problem")  # the lane expired
        await h.run_until_idle()
        assert h.replies("alice") == [
            "commerce: order 7",
            "commerce: which order has a problem?",
            "support: a colleague will help",
        ]
        assert h.replies("bob") == ["support: a colleague will help"]
        assert (await _state(h, "alice"))["meta"]["lane"] == "support"


async def _ask_refund(h: Harness) -> dict[str, Any]:
    await h.send("alice", "refund order 1003")
    await h.run_until_idle()
    assert h.replies("alice")[-1] == (
        "Refund €25.00 for order 1003 (water bottle) to the original payment method?"
    )
    pending: dict[str, Any] = (await _state(h, "alice"))["meta"]["confirmation"]
    assert pending["tool"] == "refund_order"
    assert pending["args"] == {"order_id": "1003"}
    return pending


async def test_refund_confirmed_with_the_yes_button_runs_exactly_once(tmp_path: Path) -> None:
    async with demo(tmp_path) as (h, backend):
        pending = await _ask_refund(h)
        assert backend.refunds == []  # nothing runs before the yes
        await h.send("alice", button=pending["yes_id"])
        await h.run_until_idle()
        assert h.replies("alice")[-1] == (
            "Done: €25.00 for order 1003 will be back on your card in 3-5 days (refund R-0001)."
        )
        assert len(backend.refunds_of("1003")) == 1
        assert backend.calls["refund_order"] == 1
        (entry,) = await h.store.ledger.query(TENANT, LedgerQuery(tool="refund_order"))
        assert entry.status is LedgerStatus.SUCCEEDED
        assert entry.idempotency_key == pending["idempotency_key"]
        state = await _state(h, "alice")
        assert "confirmation" not in state["meta"]
        assert "confirm" not in state["data"]["rules"]  # the pipeline's own note is cleared

        # Asked again and confirmed again: the ledger answers, the backend is not called.
        pending = await _ask_refund(h)
        await h.send("alice", "yes")
        await h.run_until_idle()
        assert h.replies("alice")[-1] == "Order 1003 was already refunded; nothing more to do."
        assert backend.calls["refund_order"] == 1
        assert len(await h.store.ledger.query(TENANT, LedgerQuery(tool="refund_order"))) == 1


async def test_refund_declined_runs_nothing(tmp_path: Path) -> None:
    async with demo(tmp_path) as (h, backend):
        pending = await _ask_refund(h)
        await h.send("alice", button=pending["no_id"])
        await h.run_until_idle()
        assert h.replies("alice")[-1] == "OK, I won't refund order 1003."
        assert backend.refunds == []
        assert backend.calls["refund_order"] == 0
        assert await h.store.ledger.query(TENANT, LedgerQuery(tool="refund_order")) == []


async def test_an_expired_confirmation_is_reported_before_the_new_answer(tmp_path: Path) -> None:
    async with demo(tmp_path) as (h, backend):
        await _ask_refund(h)
        await h.advance(11 * 60_000)  # past the 10 minute confirmation
        await h.send("alice", "where is order 1001")
        await h.run_until_idle()
        assert h.replies("alice")[-2:] == [
            "The refund of order 1003 was not confirmed in time, so I did nothing. Ask again "
            "if you still want it.",
            STATUS_1001,
        ]
        assert backend.refunds == []


async def test_a_refused_refund_gets_a_sensible_reply(tmp_path: Path) -> None:
    async with demo(tmp_path) as (h, backend):
        await h.send("alice", "I want a refund")
        await h.run_until_idle()
        assert h.replies("alice")[-1] == (
            "Sure. Which order should I refund? Tell me its number, e.g. 1003."
        )
        await h.send("alice", "1005")  # right after the question: the refund flow goes on
        await h.run_until_idle()
        pending = (await _state(h, "alice"))["meta"]["confirmation"]
        assert pending["args"] == {"order_id": "1005"}
        await h.send("alice", "yes")
        await h.run_until_idle()
        assert h.replies("alice")[-1] == (
            "I couldn't refund order 1005: order 1005 was cancelled; nothing was charged."
        )
        assert backend.refunds == []
        (entry,) = await h.store.ledger.query(TENANT, LedgerQuery(tool="refund_order"))
        assert entry.status is LedgerStatus.FAILED


async def test_an_unknown_order_gets_the_rules_failure_reply(tmp_path: Path) -> None:
    async with demo(tmp_path) as (h, backend):
        await h.send("alice", "where is order 9999")
        await h.run_until_idle()
        assert h.replies("alice") == ["I couldn't find order 9999. Could you check the number?"]
        assert (await _state(h, "alice"))["slots"] == {}  # a failed lookup remembers nothing
        await h.send("alice", "refund order 9999")
        await h.run_until_idle()
        assert h.replies("alice")[-1] == "I couldn't find order 9999. Could you check the number?"
        assert "confirmation" not in (await _state(h, "alice"))["meta"]
        assert backend.calls["lookup_order"] == 2


async def test_cancel_subscription_after_asking_which(tmp_path: Path) -> None:
    async with demo(tmp_path) as (h, backend):
        await h.send("alice", "please cancel my subscription")
        await h.run_until_idle()
        await h.send("alice", "2001")
        await h.run_until_idle()
        assert h.replies("alice")[-1] == "Cancel subscription 2001? This can't be undone."
        await h.send("alice", "yes")
        await h.run_until_idle()
        assert h.replies("alice")[-1] == (
            "Done: subscription 2001 is cancelled; your Premium monthly plan ends at the close "
            "of this billing period."
        )
        assert backend.subscriptions["2001"].status == "cancelled"
        assert backend.calls["cancel_subscription"] == 1


async def test_talk_to_a_person_opens_one_ticket_and_hands_the_session_off(
    tmp_path: Path,
) -> None:
    async with demo(tmp_path) as (h, backend):
        await h.send("alice", "where is order 1001")
        await h.run_until_idle()
        await h.send("alice", "I want to talk to a person")  # overrides the sticky lane
        await h.run_until_idle()
        await h.send("alice", "hello? a real person please")
        await h.run_until_idle()
        # The handoff's notice follows the ticket's reply; the agent then stays silent.
        assert h.replies("alice")[1:] == [
            "I've opened ticket T-0001; a colleague will reply here soon.",
            HandoffPolicy().notice,
        ]
        assert len(backend.tickets) == 1
        assert (await _state(h, "alice"))["meta"]["lane"] == "support"
        session = await h.store.sessions.find_open(TENANT, h.key("alice"))
        assert session is not None
        assert session.flagged
        assert session.flag_reason == "the customer asked for a person (ticket T-0001)"
        assert session.mode is SessionMode.HUMAN
        assert (session.last_seq, session.consumed_seq) == (3, 2)  # kept for the operator


async def test_the_fallback_answers_what_no_rule_matches(tmp_path: Path) -> None:
    async with demo(tmp_path) as (h, backend):
        await h.send("alice", "the weather is nice today")
        await h.run_until_idle()
        (reply,) = h.replies("alice")
        assert reply.startswith("Sorry, I didn't get that. I can check an order")
        assert (await _state(h, "alice"))["meta"]["lane"] is None
        assert sum(backend.calls.values()) == 0
        await h.send("alice", button="talk_to_person")  # the fallback's button
        await h.run_until_idle()
        assert h.replies("alice")[-2:] == [
            "I've opened ticket T-0001; a colleague will reply here soon.",
            HandoffPolicy().notice,  # handed off
        ]


async def test_the_answer_that_settled_a_confirmation_is_not_routed_again(tmp_path: Path) -> None:
    config = parse_rules(
        {
            "rules": [
                {
                    "name": "refund",
                    "lane": "commerce",
                    "match": {"regex": r"refund (?P<order_id>\d+)"},
                    "confirm": {
                        "tool": "refund_order",
                        "args": {"order_id": "{order_id}"},
                        "prompt": "Refund {order_id}?",
                    },
                },
                {"name": "agree", "lane": "info", "match": {"keywords": ["yes"]}, "reply": "?"},
            ]
        },
        "settled",
    )
    async with demo(tmp_path, config) as (h, backend):
        await h.send("alice", "refund 1004")
        await h.run_until_idle()
        await h.send("alice", "yes")
        await h.run_until_idle()
        assert h.replies("alice") == ["Refund 1004?", "Done."]
        assert len(backend.refunds_of("1004")) == 1
        await h.send("alice", "yes")  # nothing pending now: an ordinary message
        await h.run_until_idle()
        assert h.replies("alice")[-1] == "?"


async def test_a_replacing_question_keeps_nothing_of_the_earlier_ones_arguments(
    tmp_path: Path,
) -> None:
    async with demo(tmp_path) as (h, backend):
        await _ask_refund(h)
        await h.send("alice", "cancel subscription 2001")
        await h.run_until_idle()
        state = await _state(h, "alice")
        pending = state["meta"]["confirmation"]
        assert pending["tool"] == "cancel_subscription"
        assert pending["args"] == {"subscription_id": "2001"}  # no stale order_id
        assert "order_id" not in state["data"]["rules"]["confirm"]["captures"]
        await h.send("alice", button=pending["yes_id"])
        await h.run_until_idle()
        (entry,) = await h.store.ledger.query(TENANT, LedgerQuery(tool="cancel_subscription"))
        assert entry.args == {"subscription_id": "2001"}
        assert backend.refunds == []


async def test_a_long_complaint_still_reaches_a_person(tmp_path: Path) -> None:
    async with demo(tmp_path) as (h, backend):
        await h.send("alice", "the product is bad. " * 110 + "I want to talk to a person")
        await h.run_until_idle()
        assert "ticket T-0001" in h.replies("alice")[-2]  # then the handoff's notice
        (ticket,) = backend.tickets.values()
        assert len(ticket.summary) == 2000
        sessions = await h.store.sessions.list_sessions(TENANT)
        assert sessions[0].flagged


@pytest.mark.parametrize("phase", [Phase.PIPELINE_FINISHED, Phase.TOOL_RETURNED])
async def test_a_crash_after_the_yes_still_tells_the_customer_it_is_done(
    tmp_path: Path, phase: Phase
) -> None:
    async with demo(tmp_path) as (h, backend):
        pending = await _ask_refund(h)
        h.crash_at(phase)
        await h.send("alice", button=pending["yes_id"])
        await h.run_until_idle()
        assert h.crashes == 1
        assert h.replies("alice")[-1] == (
            "Done: €25.00 for order 1003 will be back on your card in 3-5 days (refund R-0001)."
        )
        assert backend.calls["refund_order"] == 1
