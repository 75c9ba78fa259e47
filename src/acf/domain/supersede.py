"""What happens to a running turn when new messages arrive (DESIGN §6)."""

from enum import StrEnum


class SupersedeDecision(StrEnum):
    SUPERSEDE = "supersede"
    """Cancel the pipeline, commit nothing, restart over the extended range."""
    ABSORB = "absorb"
    """The pipeline takes the new messages at its next ``ctx.absorb()``."""
    QUEUE = "queue"
    """Finish and deliver; the new messages form the next turn."""
    FORCE_COMPLETE = "force_complete"
    """Pass the irreversible gate despite newer messages (audited), then behave as QUEUE."""


DEFAULT_RESTART_BOUND = 3


def choose(
    agent_default: SupersedeDecision,
    irreversible_started: bool,
    restarts: int,
    restart_bound: int = DEFAULT_RESTART_BOUND,
    hook: SupersedeDecision | None = None,
) -> SupersedeDecision:
    """What a running turn does when new messages arrive (DESIGN §6).

    The pipeline's hook, when it answers, wins over the agent's default. Two rules hold
    whatever was asked: once an irreversible action started, the turn is never cancelled
    (SUPERSEDE becomes QUEUE), and after ``restart_bound`` restarts in the turn group it is
    not cancelled again either, so a chatty user cannot starve the agent.
    """
    wanted = hook if hook is not None else agent_default
    if wanted is SupersedeDecision.SUPERSEDE and (
        irreversible_started or restarts >= restart_bound
    ):
        return SupersedeDecision.QUEUE
    return wanted


def may_commit_with_unseen(
    decision: SupersedeDecision,
    irreversible_started: bool,
    restarts: int,
    restart_bound: int = DEFAULT_RESTART_BOUND,
) -> bool:
    """Whether a finished turn commits although the session holds messages it never saw.

    QUEUE and FORCE_COMPLETE commit (the new messages form the next turn). SUPERSEDE and
    ABSORB do not (the commit check of DESIGN §4 supersedes the turn), except once an
    irreversible action started or the restart bound is reached.
    """
    if decision in (SupersedeDecision.QUEUE, SupersedeDecision.FORCE_COMPLETE):
        return True
    return irreversible_started or restarts >= restart_bound
