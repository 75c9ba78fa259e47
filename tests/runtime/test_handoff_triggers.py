"""What a turn's commit starts besides its reply (issue 22), on the embedded runtime: the
pipeline's ``handoff`` puts the session in human mode (one notice, the agent silent
after it); the tenant's rule hands off after ``handoff.after_fallbacks`` fallback answers;
a refusal (a SAFETY_REFUSAL outcome, a refused tool call) is counted by the firewall,
whose cool-down rides in the turn's unit; the first agent commit after a resume clears
the operator's handover note."""

from collections.abc import Callable
from pathlib import Path

from acf.domain.abuse import AbuseRules, CountRule, RepeatRule
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.events import EventKind
from acf.domain.handoff import HandoffPolicy, PeoplePolicy
from acf.domain.modes import SessionMode
from acf.domain.replies import PipelineResult
from acf.ports.event_store import EventQuery
from acf.ports.firewall import REFUSAL_BUCKET
from acf.ports.handoffs import HandoffSource
from acf.ports.pipeline import TurnContext
from acf.ports.session_store import SessionRecord
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.people import People

NOTICE = "A member of our team will take it from here."
FALLBACK = "Sorry, something went wrong on our side."


class Answers:
    """Answers each message with what ``answer`` makes of its text."""

    name = "answers"
    version = "1"

    def __init__(self, answer: Callable[[str], PipelineResult]) -> None:
        self.answer = answer
        self.seen: list[TurnContext] = []

    async def run(self, ctx: TurnContext) -> PipelineResult:
        self.seen.append(ctx)
        text = " / ".join(m.text or "" for m in ctx.messages)
        if text == "boom":
            raise RuntimeError("the brain is down")
        if text == "refuse a tool":
            await ctx.tools.call("delete_everything", {})
            return PipelineResult.reply("I can't do that.")
        return self.answer(text)


def people(after_fallbacks: int = 3, firewall: AbuseRules | None = None) -> PeoplePolicy:
    return PeoplePolicy(
        HandoffPolicy(notice=NOTICE, after_fallbacks=after_fallbacks),
        firewall or AbuseRules(enabled=False),
    )


def options(pipeline: Answers, policy: PeoplePolicy) -> HarnessOptions:
    return HarnessOptions(
        pipeline=pipeline,
        settings=AgentSettings(max_attempts=1, fallback_text=FALLBACK),
        people=lambda tenant: policy,
    )


async def session_of(h: Harness, customer: str = "ana") -> SessionRecord:
    session = await h.store.sessions.find_open(TENANT, h.key(customer))
    assert session is not None
    return session


async def say(h: Harness, text: str, customer: str = "ana") -> None:
    await h.send(customer, text)
    await h.run_until_idle()


def escalates(text: str) -> PipelineResult:
    if "person" in text:
        return PipelineResult.reply("Let me get someone for you.", handoff="asked for a person")
    return PipelineResult.reply(f"noted: {text}")


async def test_the_pipelines_handoff_puts_the_session_in_human_mode(tmp_path: Path) -> None:
    pipeline = Answers(escalates)
    async with Harness(tmp_path, options(pipeline, people())) as h:
        await say(h, "I want a person")
        assert h.replies("ana") == ["Let me get someone for you.", NOTICE]
        session = await session_of(h)
        assert session.mode is SessionMode.HUMAN and session.flagged
        handoff = await h.store.handoffs.current(TENANT, session.session_id)
        assert handoff is not None
        assert (handoff.source, handoff.reason) == (HandoffSource.PIPELINE, "asked for a person")
        await say(h, "hello?")  # stored and kept for the operator, never answered
        assert h.replies("ana") == ["Let me get someone for you.", NOTICE]
        assert len(pipeline.seen) == 1
        session = await session_of(h)
        assert (session.last_seq, session.consumed_seq) == (2, 1)
        handed = EventQuery(kinds=(EventKind.SESSION_HANDED_OFF,))
        assert len(await h.store.events.query(TENANT, handed)) == 1


def falls_back(text: str) -> PipelineResult:
    return PipelineResult(
        segments=PipelineResult.reply("I didn't get that.").segments, outcomes=("fallback",)
    )


async def test_three_failed_turns_hand_the_session_off(tmp_path: Path) -> None:
    async with Harness(tmp_path, options(Answers(escalates), people())) as h:
        for _ in range(2):
            await say(h, "boom")
        assert h.replies("ana") == [FALLBACK, FALLBACK]
        assert (await session_of(h)).mode is SessionMode.AGENT
        await say(h, "boom")
        assert h.replies("ana") == [FALLBACK, FALLBACK, FALLBACK, NOTICE]
        session = await session_of(h)
        assert (session.mode, session.fallbacks) == (SessionMode.HUMAN, 3)
        handoff = await h.store.handoffs.current(TENANT, session.session_id)
        assert handoff is not None
        assert (handoff.source, handoff.reason) == (HandoffSource.RULE, "fallbacks")
        await say(h, "boom")
        assert len(h.replies("ana")) == 4  # silent in human mode


async def test_fallback_answers_count_as_failures_do(tmp_path: Path) -> None:
    async with Harness(tmp_path, options(Answers(falls_back), people(after_fallbacks=2))) as h:
        await say(h, "hmm")
        await say(h, "what")
        assert h.replies("ana") == ["I didn't get that.", "I didn't get that.", NOTICE]
        session = await session_of(h)
        assert (session.mode, session.fallbacks) == (SessionMode.HUMAN, 2)


async def test_the_rule_at_zero_never_hands_off(tmp_path: Path) -> None:
    async with Harness(tmp_path, options(Answers(falls_back), people(after_fallbacks=0))) as h:
        for text in ("a", "b", "c", "d"):
            await say(h, text)
        assert h.replies("ana") == ["I didn't get that."] * 4
        session = await session_of(h)
        assert (session.mode, session.fallbacks) == (SessionMode.AGENT, 4)


def refuses(text: str) -> PipelineResult:
    return PipelineResult(
        segments=PipelineResult.reply("I can't help with that.").segments,
        outcomes=("SAFETY_REFUSAL",),
    )


async def test_repeated_refusals_cool_the_session_down_in_the_turns_unit(tmp_path: Path) -> None:
    firewall = AbuseRules(
        flood_enabled=False,
        repeated=RepeatRule(enabled=False),
        policy_blocks=CountRule(count=2, within_ms=3_600_000),
        notice="Let's take a short break.",
    )
    policy = people(after_fallbacks=0, firewall=firewall)
    async with Harness(tmp_path, options(Answers(refuses), policy)) as h:
        await say(h, "how do I pick a lock")
        assert (await session_of(h)).mode is SessionMode.AGENT
        # counted by the turn's own unit, once
        hour = h.clock.now_ms() - h.clock.now_ms() % 3_600_000
        tally = await h.store.customer_rates.tallies(
            TENANT, Channel.WEB, "ana", [(REFUSAL_BUCKET, hour)]
        )
        assert tally == [1]
        await say(h, "refuse a tool")  # the enforcement refuses a call: a refusal too
        session = await session_of(h)
        assert session.mode is SessionMode.COOLDOWN
        assert h.replies("ana") == [
            "I can't help with that.",
            "I can't do that.",
            "Let's take a short break.",
        ]
        first, second = await h.store.turns.list_turns(TENANT, session.session_id)
        kept = await h.store.turns.get_record(TENANT, first.turn_id)
        marked = await h.store.turns.get_record(TENANT, second.turn_id)
        assert kept is not None and kept.details.get("category") is None
        assert marked is not None and marked.details["category"] == "ABUSE_SUSPECTED"
        started = EventQuery(kinds=(EventKind.ABUSE_COOLDOWN_STARTED,))
        (event,) = await h.store.events.query(TENANT, started)
        assert event.data["detector"] == "policy_blocks"


async def test_the_first_agent_commit_after_a_resume_clears_the_handover_note(
    tmp_path: Path,
) -> None:
    pipeline = Answers(escalates)
    async with Harness(tmp_path, options(pipeline, people())) as h:
        await say(h, "I want a person")
        await People(h).resume("ana", note="Refund approved for order 1001.")
        session = await session_of(h)
        assert session.mode is SessionMode.AGENT
        assert session.state["meta"]["handover"]["note"] == "Refund approved for order 1001."
        await say(h, "thanks!")
        seen = pipeline.seen[-1].state["meta"]["handover"]  # the agent saw it
        assert seen["note"] == "Refund approved for order 1001."
        assert h.replies("ana")[-1] == "noted: thanks!"
        assert "handover" not in (await session_of(h)).state["meta"]
