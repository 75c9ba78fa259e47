"""What a running turn does next: the turn engine's state machine as pure functions.

The runner (``service/turn_runner.py``) only carries steps out; every choice is made here,
from values that say what happened (DESIGN §4, §6, §15):

- ``on_adoption``: a RUNNING turn taken over from a holder that died is run again, or
  failed when it used its attempts (a message that crashes the process, each time).
- ``on_new_messages``: messages arrived while the pipeline runs: ``Supersede``,
  ``Absorb``, ``Queue`` or ``ForceComplete`` (the supersede rule ``choose`` plus the two
  rules of the runner: accumulation OFF queues, a forced completion stays forced).
- ``after_attempt``: the attempt ended (a result, an exception, a gate refusal, the
  supersede signal, the deadline, lease loss): ``Commit``, ``Supersede``, ``Retry``,
  ``Fail``, ``InDoubt`` or ``Abandon``.
- ``after_commit_refused``: the commit found messages the turn never saw: commit over
  them (``Commit``) or ``Supersede``; ``after_failure`` when it was refused otherwise.
- ``after_mode_refused``: the session left agent mode under the turn (a handoff, a
  cool-down, a block): a turn past the irreversible gate commits silently (its effects
  kept, its replies withheld), any other stands down (``StandDown``).
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from acf.domain.agent_settings import AgentSettings
from acf.domain.modes import SessionMode
from acf.domain.supersede import SupersedeDecision, choose, may_commit_with_unseen


class AttemptEnding(StrEnum):
    """How one run of the pipeline ended."""

    FINISHED = "finished"
    """It returned a result."""
    RAISED = "raised"
    """It raised an exception (a bug, a tool error, an invalid state patch)."""
    PENDING_INPUT = "pending_input"
    """It raised ``PendingInput``: the irreversible gate refused and it did not handle it."""
    IN_DOUBT = "in_doubt"
    """It raised ``InDoubt``: an irreversible action may or may not have happened."""
    CANCELLED = "cancelled"
    """It was cancelled from inside (not by the runner)."""
    NEW_MESSAGES = "new_messages"
    """The runner stopped it: new messages arrived and the decision was to supersede."""
    DEADLINE = "deadline"
    """The runner stopped it: the agent's deadline passed."""
    LEASE_LOST = "lease_lost"
    """The session's lease is no longer held: another holder may run the turn now."""
    MODE_CHANGED = "mode_changed"
    """The session left agent mode (a handoff, a cool-down, a block) before the turn passed
    the irreversible gate: the runner stopped it, or the gate refused."""


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What happened in one attempt, as far as the next step depends on it."""

    ending: AttemptEnding
    attempt: int
    """The attempt's number (1-based): attempts count real failures only."""
    error: str = ""
    """The exception as text: ``Type: message`` for RAISED, the message for the others."""
    gate_refused: bool = False
    """The irreversible gate refused (newer messages) while the turn had never passed it."""
    irreversible_started: bool = False
    """The turn passed the irreversible gate (in this attempt or an earlier one)."""
    mode: SessionMode | None = None
    """The mode the session was found in (``MODE_CHANGED``), when it was read."""


@dataclass(frozen=True, slots=True)
class Commit:
    """Commit the turn's result: replies, state patch, range consumed (one unit)."""

    over_unseen: bool = False
    """Commit although the session holds messages the turn never saw (they form the next
    turn); otherwise the commit is guarded by ``last_seq = to_seq``."""
    silent: bool = False
    """The session left agent mode after the turn passed the irreversible gate: commit its
    effects in any mode, queue no reply (the record keeps the withheld texts)."""


@dataclass(frozen=True, slots=True)
class Supersede:
    """Stop the pipeline, commit nothing, restart the group over the extended range."""

    reason: str
    decision: ClassVar[SupersedeDecision] = SupersedeDecision.SUPERSEDE


@dataclass(frozen=True, slots=True)
class Absorb:
    """Let the pipeline take the new messages at its next ``ctx.absorb()``."""

    decision: ClassVar[SupersedeDecision] = SupersedeDecision.ABSORB


@dataclass(frozen=True, slots=True)
class Queue:
    """Finish and deliver; the new messages form the next turn."""

    decision: ClassVar[SupersedeDecision] = SupersedeDecision.QUEUE


@dataclass(frozen=True, slots=True)
class ForceComplete:
    """Pass the irreversible gate despite newer messages (audited), then behave as QUEUE."""

    decision: ClassVar[SupersedeDecision] = SupersedeDecision.FORCE_COMPLETE


@dataclass(frozen=True, slots=True)
class Retry:
    """Record the failed attempt, pause ``after_ms``, then run the next attempt."""

    after_ms: int
    error: str


@dataclass(frozen=True, slots=True)
class Fail:
    """Give the turn up: fallback reply, session flagged for a person (DESIGN §15)."""

    reason: str


@dataclass(frozen=True, slots=True)
class InDoubt:
    """Give the turn up at once: an irreversible action may have run, so a retry could run
    it twice; a person checks (DESIGN §8)."""

    reason: str


@dataclass(frozen=True, slots=True)
class StandDown:
    """The session left agent mode: end the turn SUPERSEDED (reason ``mode``) and its group
    HANDED_OFF, with no reply, no restart and no compensation; the messages stay for whoever
    answers now."""

    mode: SessionMode | None = None
    """The mode the session was found in; None when not read yet."""


@dataclass(frozen=True, slots=True)
class Abandon:
    """The lease is lost: write nothing more; the holder that takes the session over runs
    the turn again (its writes are fenced from now on)."""


NewsStep = Supersede | Absorb | Queue | ForceComplete
AttemptStep = Commit | Supersede | Retry | Fail | InDoubt | StandDown | Abandon


def _step_for(decision: SupersedeDecision, reason: str) -> NewsStep:
    if decision is SupersedeDecision.SUPERSEDE:
        return Supersede(reason)
    if decision is SupersedeDecision.ABSORB:
        return Absorb()
    if decision is SupersedeDecision.FORCE_COMPLETE:
        return ForceComplete()
    return Queue()


def on_adoption(attempt: int, settings: AgentSettings) -> Retry | Fail:
    """A RUNNING turn adopted from a holder that died (another fence): run it again at once
    as the next attempt, unless it used its attempts (a poison message)."""
    if attempt >= settings.max_attempts:
        return Fail(f"the process stopped during each of {attempt} attempt(s)")
    return Retry(after_ms=0, error="")


def default_decision(off: bool, settings: AgentSettings) -> SupersedeDecision:
    """The agent's answer to new messages before anybody asked the hook."""
    if off:
        return SupersedeDecision.QUEUE  # every message is its own turn (email, voice)
    return settings.supersede


def on_new_messages(
    *,
    off: bool,
    taken: SupersedeDecision | None,
    hook: SupersedeDecision | None,
    irreversible_started: bool,
    restarts: int,
    settings: AgentSettings,
) -> NewsStep:
    """What the running turn does about messages it has not seen.

    ``taken`` is what an earlier look decided in this run (a forced completion stays
    forced); ``hook`` is the pipeline's answer, None when it has no hook or it failed.
    """
    if off:
        return Queue()  # no hook can merge or restart OFF turns
    if taken is SupersedeDecision.FORCE_COMPLETE:
        return ForceComplete()
    decision = choose(
        default_decision(off, settings),
        irreversible_started,
        restarts,
        settings.restart_bound,
        hook,
    )
    return _step_for(decision, "new_messages")


def after_attempt(outcome: AttemptOutcome, settings: AgentSettings) -> AttemptStep:
    """The next step once an attempt ended."""
    ending = outcome.ending
    if ending is AttemptEnding.LEASE_LOST:
        return Abandon()
    if ending is AttemptEnding.NEW_MESSAGES:
        return Supersede("new_messages")
    if ending is AttemptEnding.MODE_CHANGED:
        return StandDown(outcome.mode)
    if ending is AttemptEnding.FINISHED:
        return Commit()
    if ending is AttemptEnding.PENDING_INPUT:
        if outcome.gate_refused and not outcome.irreversible_started:
            # The gate refused before the turn ever passed it: restart with the new
            # messages (the pipeline then sees what the customer added).
            return Supersede("irreversible_gate")
        # Refused after the gate and not handled: a retry would be refused the same.
        return Fail(f"PendingInput not handled by the pipeline: {outcome.error}")
    if ending is AttemptEnding.IN_DOUBT:
        return InDoubt(f"irreversible action in doubt: {outcome.error}")
    if ending is AttemptEnding.DEADLINE:
        error = f"deadline of {settings.deadline_ms} ms exceeded"
    elif ending is AttemptEnding.CANCELLED:
        error = "the pipeline was cancelled"
    else:
        error = outcome.error
    return after_failure(outcome.attempt, error, settings)


def after_failure(attempt: int, error: str, settings: AgentSettings) -> Retry | Fail:
    """Attempt number ``attempt`` failed in a way a retry may cure (an exception, the
    deadline, a refused commit): run the next one after the backoff, or fail the turn when
    it used its attempts."""
    if attempt >= settings.max_attempts:
        return Fail(error)
    return Retry(after_ms=settings.backoff_ms(attempt), error=error)


def after_commit_refused(
    decision: SupersedeDecision,
    irreversible_started: bool,
    restarts: int,
    settings: AgentSettings,
) -> Commit | Supersede:
    """The commit was refused because the session holds messages the turn never saw:
    commit over them when the decision allows it (QUEUE, FORCE_COMPLETE, past the gate or
    the restart bound), else supersede."""
    if may_commit_with_unseen(decision, irreversible_started, restarts, settings.restart_bound):
        return Commit(over_unseen=True)
    return Supersede("new_messages")


def after_mode_refused(irreversible_started: bool) -> Commit | StandDown:
    """The commit (or the failure's unit) was refused because the session left agent mode:
    a turn past the irreversible gate is never cancelled, so it commits silently over
    whatever arrived (``Commit(over_unseen=True, silent=True)``: its effects kept, no reply);
    any other stands down."""
    if irreversible_started:
        return Commit(over_unseen=True, silent=True)
    return StandDown()
