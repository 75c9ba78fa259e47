"""After an operator hands a session back (issue #22), the agent answers only what the
customer wrote after the operator's last reply, and its request carries what it must know:
the operator's reply in the history, marked as a person's, and the handover note as a
system message right before the new messages, until the agent's first commit clears it.

The agent is the production LLM pipeline (``LlmPipeline`` through the ``openai`` SDK)
against ``FakeOpenAI`` on loopback, on the harness's runtime (real SQLite file, virtual
clock); the operator acts through the real desk (``acf.testing.people``).
"""

from pathlib import Path
from typing import Any

from acf.domain.modes import SessionMode, TurnKind
from acf.domain.turns import TurnPhase
from acf.pipelines.llm.people import PEOPLE_GUIDE
from acf.ports.checkpoints import Phase
from acf.testing.fake_openai import FakeRequest
from acf.testing.fake_openai_script import Answer
from acf.testing.harness import TENANT
from acf.testing.invariants import check_all
from acf.testing.people import People
from tests.integration.test_llm_runtime_http import Rig, open_rig

NOTICE = "Thanks for your patience: a member of our team will take it from here."
NOTE = "Refund R-7 issued; please help with the address change."
HANDED_BACK = f"A human operator (Alice) handled this conversation and handed it back: {NOTE}"


def system_notes(request: FakeRequest) -> list[str]:
    """The system messages after the first (the prompt)."""
    return [str(m["content"]) for m in request.messages[1:] if m["role"] == "system"]


async def later(rig: Rig) -> None:
    """A second later, with nothing in flight: the conversation's entries at their own times."""
    await rig.idle()
    await rig.h.advance(1_000)


async def handed_off_and_answered(rig: Rig) -> People:
    """Alice asks for a refund (the agent answers), the session is handed off, her next
    message waits for a person, who claims it and answers."""
    h, fake = rig.h, rig.fake
    people = People(h)
    fake.script(Answer("Let me look into your refund."))
    await h.send("alice", "I need a refund for order 7.")
    await later(rig)
    await people.hand_off("alice", "refund over the limit")
    await later(rig)
    await h.send("alice", "hello?")
    await later(rig)
    assert fake.completions_requested == 1  # human mode: no agent turn for "hello?"
    await people.claim("alice")
    await people.reply("alice", "Refund R-7 is done.")
    await later(rig)
    return people


async def session_of(rig: Rig) -> Any:
    session = await rig.h.store.sessions.find_open(TENANT, rig.h.key("alice"))
    assert session is not None
    return session


async def test_the_agent_answers_what_came_after_with_the_note_in_its_request(
    tmp_path: Path,
) -> None:
    async with open_rig(tmp_path) as rig:
        h, fake = rig.h, rig.fake
        people = await handed_off_and_answered(rig)
        await h.send("alice", "Great. My new address is 5 Main St.")
        await rig.idle()
        assert fake.completions_requested == 1  # still with a person
        fake.script(Answer("Your new address is noted."), Answer("You're welcome!"))
        await people.resume("alice", NOTE)
        await rig.idle()

        assert h.replies("alice") == [
            "Let me look into your refund.",
            NOTICE,
            "Refund R-7 is done.",
            "Your new address is noted.",
        ]
        resumed = fake.completions[1]
        # Only the message after the operator's reply is the turn's; what the operator
        # answered is history, their reply marked as a person's.
        assert resumed.messages[-1] == {
            "role": "user",
            "content": "Great. My new address is 5 Main St.",
        }
        assert resumed.messages[-2] == {"role": "system", "content": HANDED_BACK}
        assert resumed.messages[1:-2] == [
            {"role": "user", "content": "I need a refund for order 7."},
            {
                "role": "assistant",
                "content": f"Let me look into your refund.\n\n[notice] {NOTICE}",
            },
            {"role": "user", "content": "hello?"},
            {"role": "assistant", "content": "[operator Alice] Refund R-7 is done."},
        ]
        assert PEOPLE_GUIDE in resumed.messages[0]["content"]
        assert "key_alice" not in str(resumed.messages)
        session = await session_of(rig)
        turns = await h.store.turns.list_turns(TENANT, session.session_id)
        ranges = [(t.kind, t.from_seq, t.to_seq) for t in turns if t.phase is TurnPhase.COMMITTED]
        assert ranges == [
            (TurnKind.AGENT, 0, 1),
            (TurnKind.HUMAN, 1, 2),
            (TurnKind.AGENT, 2, 3),
        ]
        # The first agent commit cleared the note: the next turn no longer carries it.
        assert session.mode is SessionMode.AGENT
        assert session.state["meta"].get("handover") is None
        await h.send("alice", "thanks")
        await rig.idle()
        assert h.replies("alice")[-1] == "You're welcome!"
        assert system_notes(fake.completions[2]) == []
        assert "[operator Alice] Refund R-7 is done." in str(fake.completions[2].messages)
        assert await check_all(h.store, [TENANT], h.channel, h.tally) == []


async def test_a_crash_before_the_commit_keeps_the_note_for_the_recovery(tmp_path: Path) -> None:
    """The note is cleared by the commit, not by reading it: a turn that dies before its
    commit leaves it for the recovery, whose request (the same) carries it again."""
    async with open_rig(tmp_path) as rig:
        h, fake = rig.h, rig.fake
        people = await handed_off_and_answered(rig)
        await h.send("alice", "Great. My new address is 5 Main St.")
        await rig.idle()
        fake.script(Answer("Your new address is noted."))
        h.crash_at(Phase.RUN_STARTED)
        await people.resume("alice", NOTE)
        await rig.idle()
        assert h.crashes == 1
        assert h.replies("alice")[-1] == "Your new address is noted."
        assert fake.completions_requested == 2  # the crash came before the request
        assert system_notes(fake.completions[1]) == [HANDED_BACK]
        session = await session_of(rig)
        assert session.state["meta"].get("handover") is None


async def test_a_resume_without_a_note_still_tells_the_agent(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        h, fake = rig.h, rig.fake
        people = await handed_off_and_answered(rig)
        await h.send("alice", "One more question.")
        await rig.idle()
        fake.script(Answer("Sure, go ahead."))
        await people.resume("alice")
        await rig.idle()
        assert h.replies("alice")[-1] == "Sure, go ahead."
        assert system_notes(fake.completions[1]) == [
            "A human operator (Alice) handled this conversation and handed it back to you."
        ]


async def test_no_agent_turn_answers_what_the_operator_answered(tmp_path: Path) -> None:
    """Resumed with nothing new to answer: the agent stays silent until the customer
    writes (the operator's reply consumed every message)."""
    async with open_rig(tmp_path) as rig:
        h, fake = rig.h, rig.fake
        people = await handed_off_and_answered(rig)
        await people.resume("alice", NOTE)
        await rig.idle()
        assert fake.completions_requested == 1
        assert h.replies("alice") == [
            "Let me look into your refund.",
            NOTICE,
            "Refund R-7 is done.",
        ]
        fake.script(Answer("Happy to help."))
        await h.send("alice", "Thanks!")
        await rig.idle()
        assert system_notes(fake.completions[1]) == [HANDED_BACK]
        assert fake.completions[1].messages[-1] == {"role": "user", "content": "Thanks!"}
