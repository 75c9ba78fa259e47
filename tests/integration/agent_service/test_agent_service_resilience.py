"""The ``agent_service`` pipeline when things go wrong, on the real runtime over real HTTP
(seed 004 Stories 5 and 7, DESIGN §6 and §16): a correction before a side-effecting tool
(the stream is closed, the restart supersedes the old execution) and after one (QUEUE),
503s retried on the turn's clock, a 400 answered with the tenant's text and a dead
letter, a cut stream resumed without a duplicate, a crash that re-sends the same execution key,
and a dead letter replayed with the failed execution's key."""

from pathlib import Path

import pytest

from acf.domain.agent_sessions import AgentSessionStatus
from acf.domain.events import EventKind
from acf.pipelines.agent_service.protocol import ExecuteRequest
from acf.ports.checkpoints import Phase
from acf.service.dead_letters import request_replay
from acf.testing.fake_agent_steps import (
    Chunks,
    Complete,
    Cut,
    Error,
    Reject,
    Sleep,
    Step,
    Think,
    Tool,
)
from acf.testing.harness import TENANT
from tests.integration.agent_service.rig import Rig, open_rig

S = AgentSessionStatus
NOT_UNDERSTOOD = "Sorry, I could not process that request. Could you rephrase it?"
UNAVAILABLE = "Our assistant is unavailable right now. Please try again in a few minutes."


def slow_unless_corrected(request: ExecuteRequest, _profile: str) -> list[Step]:
    """A first question takes long (until cancelled); the corrected one is answered."""
    if "\n" in request.message.text:
        return [Chunks(f"Answering: {request.message.text.splitlines()[-1]}"), Complete()]
    return [Think("Looking it up"), Sleep(30.0), Chunks("Too late."), Complete()]


async def first_events(rig: Rig, count: int) -> None:
    """Run until the first execution sent ``count`` events and the turn recorded them."""

    async def seen() -> bool:
        if not rig.svc.executions:
            return False
        first = next(iter(rig.svc.executions.values()))
        return len(first.events) >= count and bool(await rig.progress("agent_service.thought"))

    await rig.until(seen)


async def test_a_correction_before_a_side_effect_supersedes_the_execution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch) as rig:
        h, svc = rig.h, rig.svc
        svc.script(slow_unless_corrected)
        accepted = await h.send("alice", "Where is order 7?")
        await first_events(rig, 1)
        await h.send("alice", "Sorry, order 8.", settle=False)
        await rig.idle()

        assert h.replies("alice") == ["Answering: Sorry, order 8."]
        assert len(h.channel.sends) == 1
        first, second = svc.requests
        old = svc.executions[str(first.key)]
        assert old.cancelled and old.final is None  # the service saw the stream closed
        assert second.key != first.key and second.body.supersedes == first.key
        assert second.body.message.text == "Where is order 7?\nSorry, order 8."
        assert second.body.agent_session_id == "as-1"  # the row learnt it mid-stream
        assert len(await rig.events(EventKind.TURN_SUPERSEDED)) == 1
        outcomes = [e["outcome"] for e in await rig.progress("agent_service.execution")]
        assert outcomes == ["superseded", "complete"]
        (row,) = await rig.rows(accepted.session_id)
        assert row.status is S.COMPLETED and row.execution_key == second.key


async def test_a_correction_after_a_side_effect_is_queued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch) as rig:
        h, svc = rig.h, rig.svc
        svc.enqueue(
            [
                Think("Refunding"),
                Tool("refund", {"order": "7"}, side_effect="irreversible", seconds=0.3),
                Chunks("Order 7 is refunded."),
                Complete(),
            ]
        )
        svc.enqueue([Chunks("Gift wrapping noted."), Complete()])
        accepted = await h.send("alice", "Refund order 7 please.")

        async def tool_started() -> bool:
            return bool(await rig.progress("tool.started"))

        await rig.until(tool_started)
        await h.send("alice", "And gift wrap the next one.", settle=False)
        await rig.idle()

        assert h.replies("alice") == ["Order 7 is refunded.", "Gift wrapping noted."]
        assert [(run.tool, run.args) for run in svc.tool_runs] == [("refund", {"order": "7"})]
        first, second = svc.requests
        assert second.body.supersedes is None and second.key != first.key
        assert second.body.message.text == "And gift wrap the next one."
        assert second.body.agent_session_id == "as-1"
        assert not await rig.events(EventKind.TURN_SUPERSEDED)
        records = await rig.records(accepted.session_id)
        queued = records[0]
        assert queued.details["mode"] == "queue" and queued.details["queued_unseen"]
        assert queued.details["outcomes"] == ["TOOL_DONE"]
        assert records[1].details["outcomes"] == ["ANSWERED"]


async def test_503s_are_retried_with_the_same_key_then_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch) as rig:
        h, svc = rig.h, rig.svc
        svc.enqueue([Reject(503, times=2), Chunks("Fine now."), Complete()])
        started = h.clock.now_ms()
        await rig.send("Are you there?")

        assert h.replies("alice") == ["Fine now."]
        assert [r.status for r in svc.requests] == [503, 503, 200]
        assert len({r.key for r in svc.requests}) == 1
        assert h.clock.now_ms() - started >= 3_000  # backoff 1 s, 2 s on the turn's clock
        (execution,) = await rig.progress("agent_service.execution")
        assert execution["outcome"] == "complete" and execution["attempts"] == 3


async def test_a_bad_request_is_not_retried_and_becomes_a_dead_letter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch) as rig:
        h, svc = rig.h, rig.svc
        svc.enqueue([Reject(400, times=5, message="message.text is too long")])
        session_id = await rig.send("Do the thing")

        assert h.replies("alice") == [NOT_UNDERSTOOD]
        assert [r.status for r in svc.requests] == [400]
        (row,) = await rig.rows(session_id)
        assert row.status is S.FAILED and not row.execution_open
        assert row.last_error is not None and "400" in row.last_error
        (execution,) = await rig.progress("agent_service.execution")
        assert execution["outcome"] == "failed" and execution["error_kind"] == "bad_request"
        (record,) = await rig.records(session_id)
        assert record.details["outcomes"] == ["FAILED"]
        (letter,) = await h.store.dead_letters.list(TENANT)
        assert letter.session_id == session_id and letter.attempts == 1
        assert letter.request["message"]["text"] == "Do the thing"
        assert "400" in letter.error and "headers" not in letter.request


async def test_a_cut_stream_is_resumed_without_a_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch) as rig:
        h, svc = rig.h, rig.svc
        svc.enqueue(
            [Chunks("Part one. ", parts=1), Cut(), Chunks("Part two.", parts=2), Complete()]
        )
        await rig.send("Tell me")

        assert h.replies("alice") == ["Part one. Part two."]
        assert len(h.channel.sends) == 1
        first, second = svc.requests
        assert first.key == second.key
        assert (first.last_event_id, second.last_event_id) == (None, "1")
        (execution,) = await rig.progress("agent_service.execution")
        assert execution["resumes"] == 1 and execution["attempts"] == 2
        chunks = [k for k, _ in execution["event_offsets_ms"] if k == "ANSWER_CHUNK"]
        assert len(chunks) == 3  # each chunk once


async def test_a_crash_before_the_commit_re_sends_the_same_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch) as rig:
        h, svc = rig.h, rig.svc
        svc.enqueue([Chunks("Your parcel arrives on Friday."), Complete()])
        h.crash_at(Phase.PIPELINE_FINISHED)  # the execution ended, the turn did not commit
        session_id = await rig.send("When does my parcel arrive?")

        assert h.crashes == 1
        assert h.replies("alice") == ["Your parcel arrives on Friday."]
        assert len(h.channel.sends) == 1
        first, second = svc.requests
        assert first.key == second.key and len(svc.executions) == 1
        assert second.body == first.body  # the same request: the prepared one
        (row,) = await rig.rows(session_id)
        assert row.status is S.COMPLETED and row.execution_key == first.key


async def test_a_crash_mid_stream_re_sends_the_same_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch) as rig:
        h, svc = rig.h, rig.svc
        svc.enqueue([Think("Working on it"), Sleep(1.0), Chunks("Done at last."), Complete()])
        accepted = await h.send("alice", "Do the long thing")
        await first_events(rig, 1)
        await h.crash()  # the process dies while the stream runs
        await rig.idle()

        assert h.crashes == 1
        assert h.replies("alice") == ["Done at last."]
        assert len(h.channel.sends) == 1
        first, second = svc.requests
        assert first.key == second.key and second.body == first.body
        # One execution: the recovery's request joined (or re-ran) the one the dead
        # process started, never a second one.
        assert list(svc.executions) == [first.key]
        assert svc.executions[str(first.key)].requests == 2
        (row,) = await rig.rows(accepted.session_id)
        assert row.status is S.COMPLETED and row.execution_key == first.key


async def test_a_service_that_stays_down_opens_the_circuit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch, breaker={"failures": 2, "open_s": 60}) as rig:
        h, svc = rig.h, rig.svc
        svc.set_down(True)
        first = await rig.send("Anyone there?")
        await h.advance(5_000)
        await rig.send("Hello?")

        assert h.replies("alice") == [UNAVAILABLE, UNAVAILABLE]
        assert [r.status for r in svc.requests] == [503, 503]  # the second turn sent none
        assert [e["state"] for e in await rig.progress("agent_service.circuit")] == ["open"]
        executions = await rig.progress("agent_service.execution")
        assert [(e["outcome"], e["attempts"]) for e in executions] == [("failed", 2), ("failed", 0)]
        letters = await h.store.dead_letters.list(TENANT)
        assert sorted(letter.attempts for letter in letters) == [0, 2]
        assert [r.status for r in await rig.rows(first)] == [S.FAILED, S.FAILED]


async def test_a_final_error_event_is_not_understood(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch) as rig:
        h, svc = rig.h, rig.svc
        svc.enqueue([Think("Hmm"), Error("unsupported", "I cannot book flights.")])
        session_id = await rig.send("Book me a flight")

        assert h.replies("alice") == [NOT_UNDERSTOOD]
        assert len(svc.requests) == 1  # not retryable: not retried
        (row,) = await rig.rows(session_id)
        assert row.status is S.FAILED and row.agent_session_id == "as-1"
        assert row.last_error == "ERROR unsupported: I cannot book flights."
        (execution,) = await rig.progress("agent_service.execution")
        assert (execution["outcome"], execution["error_kind"]) == ("error", "agent_error")
        (letter,) = await h.store.dead_letters.list(TENANT)
        assert letter.error == row.last_error and letter.attempts == 1
        # The execution ended: its key would only replay the ERROR; a replay is a new one.
        assert letter.request["execution_key"] is None


async def test_a_replayed_dead_letter_sends_the_failed_execution_key_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_rig(tmp_path, monkeypatch) as rig:
        h, svc = rig.h, rig.svc
        svc.enqueue([Reject(503, times=4), Chunks("Order 7 is cancelled."), Complete()])
        session_id = await rig.send("Cancel order 7")

        assert h.replies("alice") == [UNAVAILABLE]
        assert [r.status for r in svc.requests] == [503] * 4  # 3 retries, one key
        key = svc.requests[0].key
        (letter,) = await h.store.dead_letters.list(TENANT)
        assert letter.request["execution_key"] == key
        assert letter.request["agent_session_id"] is None  # the service named none
        (failed,) = await rig.rows(session_id)
        assert failed.status is S.FAILED and failed.execution_key == key

        # The service is back: the replay asks the same execution, which it now runs.
        await request_replay(h.store, h.runtime.notify, h.clock, TENANT, letter.dead_letter_id)
        await rig.idle()

        assert h.replies("alice") == [UNAVAILABLE, "Order 7 is cancelled."]
        replayed = svc.requests[-1]
        assert len(svc.requests) == 5 and replayed.status == 200
        assert replayed.key == key and list(svc.executions) == [key]
        assert replayed.body.message.text == "Cancel order 7"
        assert replayed.body.supersedes is None
        (row,) = await rig.rows(session_id)  # the row that failed, completed by the replay
        assert row.row_id == failed.row_id and row.status is S.COMPLETED
        assert row.execution_key == key and row.agent_session_id == "as-1"
        done = await h.store.dead_letters.get(TENANT, letter.dead_letter_id)
        assert done is not None and done.replayed_at_ms is not None
