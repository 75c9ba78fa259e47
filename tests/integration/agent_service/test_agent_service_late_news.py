"""A message that lands after the service's final event but before the turn's commit (DESIGN
§6 and §16), on the real runtime over real HTTP: the commit is refused, the turn is
superseded, and nothing of the execution's end was written, because the agent session
row's end goes with the commit. So the restart finds the row as it was while the
execution ran (ACTIVE, the execution open under its key): it names that key in
``supersedes``, and after a question the customer never saw it sends a plain message,
not an ``answer``."""

from pathlib import Path

import pytest

from acf.domain.agent_sessions import AgentSessionStatus
from acf.domain.events import EventKind
from acf.pipelines.agent_service.protocol import AskUserData, CompleteData
from acf.ports.checkpoints import Phase
from acf.testing.fake_agent_steps import Ask, Chunks, Complete
from acf.testing.harness import TENANT
from tests.integration.agent_service.rig import Rig, open_rig

S = AgentSessionStatus
FIRST, LATE = "Where is order 7?", "Sorry, I meant order 8."


async def late_message(rig: Rig) -> None:
    """The customer writes again once the pipeline returned, before the commit."""

    async def send() -> None:
        await rig.h.send("alice", LATE, settle=False)

    rig.h.inject_at(Phase.PIPELINE_FINISHED, send)


async def test_a_message_after_the_answer_restarts_superseding_the_completed_execution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch) as rig:
        h, svc = rig.h, rig.svc
        svc.enqueue([Chunks("Order 7 ships today."), Complete()])
        await late_message(rig)
        session_id = await rig.send(FIRST)

        assert h.replies("alice") == [f"You said: {FIRST}\n{LATE}"]  # only the restart's
        first, second = svc.requests
        assert isinstance(svc.executions[str(first.key)].final, CompleteData)
        assert second.key != first.key and second.body.supersedes == first.key
        assert second.body.agent_session_id == "as-1"  # learnt from the first event
        assert second.body.message.text == f"{FIRST}\n{LATE}"
        assert len(await rig.events(EventKind.TURN_SUPERSEDED)) == 1
        outcomes = [e["outcome"] for e in await rig.progress("agent_service.execution")]
        assert outcomes == ["complete", "complete"]  # each execution did complete
        (row,) = await rig.rows(session_id)
        assert row.status is S.COMPLETED and row.execution_key == second.key
        assert not row.execution_open


async def test_a_question_nobody_saw_is_not_answered_by_the_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch) as rig:
        h, svc = rig.h, rig.svc
        svc.enqueue([Ask("Which order number?", ["7", "8"], ask_id="ask-1")])
        await late_message(rig)
        session_id = await rig.send(FIRST)

        assert h.replies("alice") == [f"You said: {FIRST}\n{LATE}"]  # no question went out
        first, second = svc.requests
        assert isinstance(svc.executions[str(first.key)].final, AskUserData)
        assert second.body.answer is None and second.body.supersedes == first.key
        assert second.body.agent_session_id == "as-1"
        assert second.body.message.text == f"{FIRST}\n{LATE}"
        (row,) = await rig.rows(session_id)
        assert row.status is S.COMPLETED and row.pending_ask_id is None
        session = await h.store.sessions.get(TENANT, session_id)
        assert session is not None and not session.state.get("meta", {}).get("awaiting_answer")
        (record,) = [r for r in await rig.records(session_id) if r.replies]
        assert record.details["outcomes"] == ["ANSWERED"]


async def test_a_corrected_answer_restarts_with_the_same_question_and_supersedes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch) as rig:
        h, svc = rig.h, rig.svc
        svc.enqueue([Ask("Which order number?", ["7", "8"], ask_id="ask-1")])
        session_id = await rig.send(FIRST)
        assert h.replies("alice")[-1].startswith("Which order number?")
        svc.enqueue([Chunks("Order 7 ships today."), Complete()])
        await late_message(rig)
        await rig.send("7")

        _asked, answered, corrected = svc.requests
        assert answered.body.answer is not None and answered.body.answer.ask_id == "ask-1"
        assert corrected.body.answer is not None and corrected.body.answer.ask_id == "ask-1"
        assert corrected.body.supersedes == answered.key
        assert corrected.body.answer.text == f"7\n{LATE}"
        assert h.replies("alice")[-1] == f"You said: 7\n{LATE}"  # accepted, not a 409
        (row,) = await rig.rows(session_id)
        assert row.status is S.COMPLETED
