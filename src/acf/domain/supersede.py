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
