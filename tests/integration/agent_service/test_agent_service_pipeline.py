"""The ``agent_service`` pipeline on the real runtime over real HTTP (seed 004 Stories 2,
3, 5, 6 and 8): the happy path with drafts and one reply, a 5-exchange conversation on one
agent session, ASK_USER answered and resumed (buttons, and numbered options on SMS), a
question gone stale on the virtual clock, and tenants that never see each other's agent
sessions."""

from pathlib import Path

import pytest

from acf.domain.agent_sessions import AgentSessionStatus
from acf.domain.channels import Channel
from acf.domain.events import EventKind
from acf.pipelines.agent_service.protocol import Answer, HistoryItem, Role
from acf.testing.fake_agent_steps import Ask, Chunks, Complete, Think, Tool
from acf.testing.harness import TENANT
from tests.integration.agent_service.rig import API_KEY, open_rig

S = AgentSessionStatus
EXPIRED = "My earlier question has expired, so let's start again."


async def test_a_delegated_turn_streams_drafts_and_commits_one_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch) as rig:
        h, svc = rig.h, rig.svc
        svc.enqueue(
            [
                Think("The customer wants order 7's status."),
                Tool("track", {"order": "7"}, status_text="Checking your order...", summary="ok"),
                Chunks("Order 7 is **on its way**.", parts=4),
                Complete(),
            ]
        )
        accepted = await h.send("alice", "Where is order 7?")
        drafts = h.drafts.subscribe(TENANT, accepted.session_id)
        await rig.idle()

        assert h.replies("alice") == ["Order 7 is **on its way**."]
        assert len(h.channel.sends) == 1
        shown = ""
        for draft in drafts.drain():
            shown = shown[: draft.offset] + draft.text
        assert shown and "Order 7 is **on its way**.".startswith(shown)

        (request,) = svc.requests
        assert request.profile == "support" and request.status == 200
        assert request.headers["x-api-key"] == API_KEY
        assert request.body.conversation_id == accepted.session_id
        assert request.body.agent_session_id is None and request.body.answer is None
        assert request.body.message.text == "Where is order 7?"
        assert request.body.chat_history == []
        context = request.body.user_context
        assert (context.tenant, context.customer_id, context.channel) == (TENANT, "alice", "web")
        (record,) = await rig.records(accepted.session_id)
        assert request.headers["traceparent"].split("-")[1] == record.correlation.trace_id

        (row,) = await rig.rows(accepted.session_id)
        assert row.status is S.COMPLETED and row.agent_session_id == "as-1"
        assert row.execution_key == request.key and not row.execution_open
        assert record.details["outcomes"] == ["ANSWERED"]
        assert record.details["agent_service"]["execution_key"] == request.key

        assert await rig.progress("agent_service.thought") == [
            {
                "name": "agent_service.thought",
                "agent": "a1",
                "text": "The customer wants order 7's status.",
            }
        ]
        (started,) = await rig.progress("tool.started")
        assert started["tool"] == "track" and started["side_effect"] == "none"
        assert started["status_text"] == "Checking your order..."
        assert started["source"] == "agent_service"
        (finished,) = await rig.progress("tool.finished")
        assert (finished["tool"], finished["ok"], finished["summary"]) == ("track", True, "ok")
        (execution,) = await rig.progress("agent_service.execution")
        assert execution["outcome"] == "complete" and execution["attempts"] == 1
        assert [kind for kind, _ in execution["event_offsets_ms"]] == [
            "THOUGHT",
            "TOOL_START",
            "TOOL_END",
            *["ANSWER_CHUNK"] * 4,
            "COMPLETE",
        ]
        session = await h.store.sessions.get(TENANT, accepted.session_id)
        assert session is not None
        assert session.state["data"]["agent_service"]["tool_log"][0]["tool"] == "track"


async def test_five_exchanges_continue_one_agent_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch) as rig:
        texts = [f"Question number {n}?" for n in range(5)]
        for text in texts:
            session_id = await rig.send(text)
            await rig.h.advance(30_000)

        assert rig.h.replies("alice") == [f"You said: {t}" for t in texts]
        requests = [r.body for r in rig.svc.requests]
        assert [r.message.text for r in requests] == texts
        assert [r.agent_session_id for r in requests] == [None, *["as-1"] * 4]
        assert len({r.key for r in rig.svc.requests}) == 5  # one execution per turn
        last = requests[-1].chat_history
        assert last == [
            HistoryItem(role=role, content=content)
            for t in texts[:4]
            for role, content in ((Role.USER, t), (Role.ASSISTANT, f"You said: {t}"))
        ]
        (row,) = await rig.rows(session_id)  # one row per conversation and agent session
        assert row.status is S.COMPLETED and row.agent_session_id == "as-1"


@pytest.mark.parametrize("channel", [Channel.WEB, Channel.SMS])
async def test_a_question_is_answered_and_the_agent_session_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channel: Channel
) -> None:
    async with open_rig(tmp_path, monkeypatch) as rig:
        h, svc = rig.h, rig.svc
        svc.enqueue([Ask("Which size?", ["S", "M"], ask_id="ask-1")])
        svc.enqueue([Chunks("Size M is reserved for you."), Complete()])
        session_id = await rig.send("I want the blue jacket", channel=channel)

        assert h.replies("alice") == ["Which size?"]
        (asked,) = await rig.payloads(session_id)
        assert asked["buttons"] == [
            {"id": "option-1", "title": "S"},
            {"id": "option-2", "title": "M"},
        ]
        (row,) = await rig.rows(session_id)
        assert row.status is S.AWAITING_USER and row.pending_ask_id == "ask-1"
        assert row.pending_options == ("S", "M") and row.asked_at_ms is not None
        assert await rig.progress("agent_service.ask_user") == [
            {"name": "agent_service.ask_user", "agent": "a1", "ask_id": "ask-1"}
        ]
        session = await h.store.sessions.get(TENANT, session_id)
        assert session is not None and session.state["meta"].get("awaiting_answer") is True

        # SMS showed numbered options: "2" is the second button.
        await rig.send("M" if channel is Channel.WEB else "2", channel=channel)
        assert h.replies("alice") == ["Which size?", "Size M is reserved for you."]
        first, second = (r.body for r in svc.requests)
        assert second.answer == Answer(ask_id="ask-1", text="M")
        assert second.message.text == "M"
        assert (first.agent_session_id, second.agent_session_id) == (None, "as-1")
        (row,) = await rig.rows(session_id)
        assert row.status is S.COMPLETED and row.pending_ask_id is None
        records = await rig.records(session_id)
        assert [r.details["outcomes"] for r in records] == [["ASKED_USER"], ["ANSWERED"]]


async def test_a_stale_question_is_abandoned_and_the_next_message_starts_fresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch, ask_user_timeout_s=300) as rig:
        h, svc = rig.h, rig.svc
        svc.enqueue([Ask("Which size?", ["S", "M"], ask_id="ask-1")])
        session_id = await rig.send("I want the blue jacket")
        (asked,) = await rig.rows(session_id)
        await h.advance(300_000)  # five minutes on the virtual clock
        await rig.send("Hello again")

        assert h.replies("alice") == ["Which size?", f"{EXPIRED}\n\nYou said: Hello again"]
        _, fresh = (r.body for r in svc.requests)
        assert fresh.agent_session_id is None and fresh.answer is None
        assert fresh.message.text == "Hello again"
        old, new = sorted(await rig.rows(session_id), key=lambda r: r.created_at_ms)
        assert old.row_id == asked.row_id and old.status is S.ABANDONED
        assert not old.execution_open and old.pending_ask_id == "ask-1"
        assert new.status is S.COMPLETED and new.agent_session_id == "as-2"
        (expired,) = await rig.progress("agent_service.ask_expired")
        assert expired["ask_id"] == "ask-1" and expired["asked_at_ms"] == asked.asked_at_ms


async def test_a_question_answered_in_time_is_not_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch, ask_user_timeout_s=300) as rig:
        rig.svc.enqueue([Ask("Which size?", ask_id="ask-1")])
        session_id = await rig.send("I want the blue jacket")
        await rig.h.advance(299_000)
        await rig.send("M")
        assert rig.h.replies("alice")[-1] == "You said: M"
        assert rig.svc.requests[-1].body.answer == Answer(ask_id="ask-1", text="M")
        assert not await rig.progress("agent_service.ask_expired")
        assert [r.status for r in await rig.rows(session_id)] == [S.COMPLETED]


async def test_another_tenant_sees_no_agent_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch, tenants=(TENANT, "t2")) as rig:
        alice = await rig.send("Hello from t1")
        bob = await rig.send("Hello from t2", customer="bob", tenant="t2")

        first, second = (r.body for r in rig.svc.requests)
        assert first.user_context.tenant == TENANT and second.user_context.tenant == "t2"
        assert second.agent_session_id is None and second.chat_history == []
        store = rig.h.store.agent_sessions
        assert [r.agent_session_id for r in await rig.rows(alice)] == ["as-1"]
        assert [r.agent_session_id for r in await rig.rows(bob, tenant="t2")] == ["as-2"]
        assert await rig.rows(alice, tenant="t2") == []
        assert await store.open_for("t2", alice) is None
        assert await store.by_agent_session("t2", "as-1") is None
        theirs = await rig.events(EventKind.TURN_PROGRESS, tenant="t2")
        assert theirs and all(e.correlation.session_id == bob for e in theirs)
