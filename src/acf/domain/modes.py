"""Who answers a session: the agent, a person, nobody for a while, or nobody at all.

A session's mode is stored with the session and is part of a turn's commit guard (DESIGN
§4): an agent turn commits a reply only while its session is in ``agent`` mode. A closed
session stays ``status = closed`` whatever its mode was.
"""

from enum import StrEnum


class SessionMode(StrEnum):
    AGENT = "agent"
    """The agent answers (the default)."""
    HUMAN = "human"
    """Handed off: a person answers from the inbox; messages are stored and shown, no turn
    runs."""
    COOLDOWN = "cooldown"
    """The abuse firewall holds the customer until ``mode_until_ms``: messages are stored and
    shown, no turn runs; the held messages are answered as one turn when it ends."""
    BLOCKED = "blocked"
    """The customer is on the tenant's block list: messages are stored, shown and dropped
    (a DROP turn consumes them, audited); nothing is answered."""

    @property
    def agent_answers(self) -> bool:
        return self is SessionMode.AGENT


BLOCK_REASON_PREFIX = "block:"
"""A blocked session's ``mode_reason``: the prefix, then the block's id."""
BLOCK_EXPIRY = "expiry"
"""``lifted_by`` of a block lifted because it expired (by the mode watch, or by a new block
or a DROP that found it expired)."""


def block_reason(block_id: str) -> str:
    """The ``mode_reason`` of a session blocked by ``block_id``."""
    return f"{BLOCK_REASON_PREFIX}{block_id}"


def blocked_by(mode_reason: str | None) -> str | None:
    """The block id a blocked session's ``mode_reason`` names (None for any other reason)."""
    reason = mode_reason or ""
    return reason[len(BLOCK_REASON_PREFIX) :] if reason.startswith(BLOCK_REASON_PREFIX) else None


class TurnKind(StrEnum):
    AGENT = "agent"
    """The pipeline's turn (the default)."""
    HUMAN = "human"
    """An operator's reply, committed under the session lease; consumes the messages it
    answers. No supersede, window or cut applies to it."""
    DROP = "drop"
    """Messages of a blocked customer consumed without an answer (audited)."""
