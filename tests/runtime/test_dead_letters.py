"""Dead letters and their replay on the embedded runtime (DESIGN §16, seed 004 Story 7).

A real SQLite file, the real ingress and runtime, a virtual clock. A turn whose pipeline
reports a call that failed for good, or that ends FAILED, leaves a dead letter (redacted)
in the same commit; a requested replay runs once as a REPLAY turn with an empty range,
also after a crash before its commit.
"""

from pathlib import Path

import pytest

from acf.domain.agent_settings import AgentSettings
from acf.domain.events import EventKind, FabricEvent
from acf.domain.replies import FailedCall, PipelineResult
from acf.domain.turns import Turn, TurnPhase
from acf.observability.redaction import MASK
from acf.ports.checkpoints import Phase
from acf.ports.dead_letters import AlreadyReplayed, DeadLetter, NoSuchDeadLetter
from acf.ports.event_store import EventQuery
from acf.ports.pipeline import TurnContext
from acf.service.dead_letters import request_replay
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.invariants import check_all
from acf.testing.pipeline import Script

FAILING = Script(steps=({"raise": "model down: Authorization: Bearer sk-abcdef1234567890"},))
TWO_ATTEMPTS = AgentSettings(max_attempts=2, retry_backoff_ms=10)


class GivesUp:
    """Answers with a fallback and reports the call that failed for good (as an agent
    service pipeline does once its retries are spent)."""

    name = "agent_service"
    version = "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        asked = {
            "message": " ".join(m.text or "" for m in ctx.messages),
            "api_key": "sk-live-0123456789",
            "headers": {"authorization": "Bearer sk-live-0123456789"},
        }
        error = "503 from https://bot:hunter2secret@agents.example/v1 after 3 tries"
        return PipelineResult.reply(
            "The assistant is unavailable; a person will follow up.",
            failed_call=FailedCall(asked, error, 3),
        )


async def events(h: Harness, *kinds: EventKind) -> list[FabricEvent]:
    return await h.store.events.query(TENANT, EventQuery(kinds=kinds, limit=10_000))


async def only_letter(h: Harness) -> DeadLetter:
    (letter,) = await h.store.dead_letters.list(TENANT)
    return letter


async def turns(h: Harness, session_id: str) -> list[Turn]:
    return await h.store.turns.list_turns(TENANT, session_id)


async def test_a_failed_call_is_a_dead_letter_of_the_committed_turn(tmp_path: Path) -> None:
    async with Harness(tmp_path, HarnessOptions(pipeline=GivesUp())) as h:
        accepted = await h.send("ana", "Where is my parcel?")
        await h.run_until_idle()
        assert h.replies("ana") == ["The assistant is unavailable; a person will follow up."]
        (turn,) = await turns(h, accepted.session_id)
        letter = await only_letter(h)
        assert turn.phase is TurnPhase.COMMITTED
        assert (letter.session_id, letter.turn_id, letter.group_id, letter.trace_id) == (
            accepted.session_id,
            turn.turn_id,
            turn.group_id,
            turn.trace_id,
        )
        assert (letter.agent, letter.pipeline, letter.attempts) == ("a1", "agent_service", 3)
        # No secret is kept: neither a credential field nor one inside a text.
        assert letter.request["message"] == "Where is my parcel?"
        assert letter.request["api_key"] == MASK
        assert letter.request["headers"] == {"authorization": MASK}
        assert "hunter2secret" not in letter.error and "503 from" in letter.error
        (recorded,) = await events(h, EventKind.DEAD_LETTER_RECORDED)
        (committed,) = await events(h, EventKind.TURN_COMMITTED)
        assert recorded.data["dead_letter_id"] == letter.dead_letter_id
        assert recorded.correlation == committed.correlation
        assert recorded.at_ms == committed.at_ms == letter.created_at_ms
        assert letter.replay_requested_at_ms is None
        assert await check_all(h.store, [TENANT], h.channel, h.tally) == []


async def test_a_failed_turn_is_a_dead_letter_with_its_messages(tmp_path: Path) -> None:
    options = HarnessOptions(script=FAILING, settings=TWO_ATTEMPTS)
    async with Harness(tmp_path, options) as h:
        accepted = await h.send("ana", "Refund order 7, please.")
        await h.run_until_idle()
        (turn,) = await turns(h, accepted.session_id)
        letter = await only_letter(h)
        assert turn.phase is TurnPhase.FAILED and letter.turn_id == turn.turn_id
        assert letter.request == {"messages": ["Refund order 7, please."]}
        assert (letter.pipeline, letter.attempts) == ("scripted", 2)
        assert letter.error.startswith("RuntimeError: model down")
        assert "sk-abcdef1234567890" not in letter.error
        (recorded,) = await events(h, EventKind.DEAD_LETTER_RECORDED)
        (failed,) = await events(h, EventKind.TURN_FAILED)
        assert recorded.correlation == failed.correlation and recorded.at_ms == failed.at_ms


async def test_a_replay_runs_once_as_a_turn_with_an_empty_range(tmp_path: Path) -> None:
    options = HarnessOptions(script=FAILING, settings=TWO_ATTEMPTS)
    async with Harness(tmp_path, options) as h:
        accepted = await h.send("ana", "Refund order 7, please.")
        await h.run_until_idle()
        letter = await only_letter(h)
        h.pipeline.script = Script()  # the brain is back: it echoes what it is asked
        await request_replay(h.store, h.runtime.notify, h.clock, TENANT, letter.dead_letter_id)
        with pytest.raises(AlreadyReplayed):
            await request_replay(h.store, h.runtime.notify, h.clock, TENANT, letter.dead_letter_id)
        await h.run_until_idle()

        fallback = "Sorry, something went wrong; a person will follow up."
        assert h.replies("ana") == [fallback, "echo: Refund order 7, please."]
        failed, replay = await turns(h, accepted.session_id)
        session = await h.store.sessions.get(TENANT, accepted.session_id)
        assert session is not None
        assert replay.phase is TurnPhase.COMMITTED
        assert replay.from_seq == replay.to_seq == session.consumed_seq == failed.to_seq
        assert replay.trace_id == letter.trace_id and replay.group_id != failed.group_id
        record = await h.store.turns.get_record(TENANT, replay.turn_id)
        assert record is not None and record.details["replay_of"] == letter.dead_letter_id
        done = await h.store.dead_letters.get(TENANT, letter.dead_letter_id)
        assert done is not None and done.replay_turn_id == replay.turn_id
        assert done.replayed_at_ms is not None
        (requested,) = await events(h, EventKind.DEAD_LETTER_REPLAY_REQUESTED)
        (replayed,) = await events(h, EventKind.DEAD_LETTER_REPLAYED)
        assert requested.data["dead_letter_id"] == replayed.data["dead_letter_id"]
        assert replayed.correlation.turn_id == replay.turn_id
        # Nothing runs it again: more wake-ups find nothing to do.
        await h.runtime.notify(TENANT, accepted.session_id)
        await h.run_until_idle()
        assert len(await turns(h, accepted.session_id)) == 2
        assert await check_all(h.store, [TENANT], h.channel, h.tally) == []


async def test_a_replay_cut_off_before_its_commit_runs_again_once(tmp_path: Path) -> None:
    options = HarnessOptions(script=FAILING, settings=TWO_ATTEMPTS)
    async with Harness(tmp_path, options) as h:
        accepted = await h.send("ana", "Refund order 7, please.")
        await h.run_until_idle()
        letter = await only_letter(h)
        h.pipeline.script = Script()
        h.crash_at(Phase.PIPELINE_FINISHED)
        await request_replay(h.store, h.runtime.notify, h.clock, TENANT, letter.dead_letter_id)
        await h.run_until_idle()
        assert h.crashes == 1
        assert h.replies("ana")[1:] == ["echo: Refund order 7, please."]
        replays = [t for t in await turns(h, accepted.session_id) if t.from_seq == t.to_seq]
        assert [(t.phase, t.attempt) for t in replays] == [(TurnPhase.COMMITTED, 2)]
        assert len(await events(h, EventKind.DEAD_LETTER_REPLAYED)) == 1
        assert await check_all(h.store, [TENANT], h.channel, h.tally) == []


async def test_a_replay_that_fails_again_is_a_new_letter_and_not_run_again(
    tmp_path: Path,
) -> None:
    options = HarnessOptions(script=FAILING, settings=TWO_ATTEMPTS)
    async with Harness(tmp_path, options) as h:
        accepted = await h.send("ana", "Refund order 7, please.")
        await h.run_until_idle()
        first = await only_letter(h)
        await request_replay(h.store, h.runtime.notify, h.clock, TENANT, first.dead_letter_id)
        await h.run_until_idle()
        second, older = await h.store.dead_letters.list(TENANT)
        assert older.dead_letter_id == first.dead_letter_id
        assert older.replay_turn_id == second.turn_id  # the failed REPLAY turn ran it
        assert second.request == {
            "messages": ["Refund order 7, please."],
            "replay_of": first.dead_letter_id,
        }
        assert second.replay_requested_at_ms is None
        assert [t.phase for t in await turns(h, accepted.session_id)] == [TurnPhase.FAILED] * 2


async def test_a_replay_waits_for_the_messages_in_hand(tmp_path: Path) -> None:
    options = HarnessOptions(script=FAILING, settings=TWO_ATTEMPTS)
    async with Harness(tmp_path, options) as h:
        accepted = await h.send("ana", "Refund order 7, please.")
        await h.run_until_idle()
        letter = await only_letter(h)
        h.pipeline.script = Script()
        await h.send("ana", "Hello?")  # its window is open
        await request_replay(h.store, h.runtime.notify, h.clock, TENANT, letter.dead_letter_id)
        await h.run_until_idle()
        assert h.replies("ana")[1:] == ["echo: Hello?", "echo: Refund order 7, please."]
        assert [t.to_seq - t.from_seq for t in await turns(h, accepted.session_id)] == [1, 1, 0]


async def test_a_replay_superseded_by_a_new_message_runs_after_it(tmp_path: Path) -> None:
    options = HarnessOptions(script=FAILING, settings=TWO_ATTEMPTS)
    async with Harness(tmp_path, options) as h:
        accepted = await h.send("ana", "Refund order 7, please.")
        await h.run_until_idle()
        letter = await only_letter(h)
        h.pipeline.script = Script(steps=({"sleep": 1000},))
        await request_replay(h.store, h.runtime.notify, h.clock, TENANT, letter.dead_letter_id)
        await h.advance(500)  # the replay runs
        await h.send("ana", "Hello?")  # it supersedes the replay, which waits for its turn
        await h.run_until_idle()
        assert h.replies("ana")[1:] == ["echo: Hello?", "echo: Refund order 7, please."]
        phases = [(t.phase, t.to_seq - t.from_seq) for t in await turns(h, accepted.session_id)]
        assert phases == [
            (TurnPhase.FAILED, 1),
            (TurnPhase.SUPERSEDED, 0),
            (TurnPhase.COMMITTED, 1),
            (TurnPhase.COMMITTED, 0),
        ]
        assert len(await events(h, EventKind.DEAD_LETTER_REPLAYED)) == 1
        assert await check_all(h.store, [TENANT], h.channel, h.tally) == []


async def test_another_tenants_letter_cannot_be_replayed(tmp_path: Path) -> None:
    options = HarnessOptions(script=FAILING, settings=TWO_ATTEMPTS, tenants=(TENANT, "t2"))
    async with Harness(tmp_path, options) as h:
        await h.send("ana", "Refund order 7, please.")
        await h.run_until_idle()
        letter = await only_letter(h)
        with pytest.raises(NoSuchDeadLetter):
            await request_replay(h.store, h.runtime.notify, h.clock, "t2", letter.dead_letter_id)
        assert await h.store.dead_letters.list("t2") == []
        unchanged = await h.store.dead_letters.get(TENANT, letter.dead_letter_id)
        assert unchanged is not None and unchanged.replay_requested_at_ms is None
