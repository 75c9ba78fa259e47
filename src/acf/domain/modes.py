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


PRECEDENCE: tuple[SessionMode, ...] = (
    SessionMode.BLOCKED,
    SessionMode.HUMAN,
    SessionMode.COOLDOWN,
    SessionMode.AGENT,
)
"""Strongest first: a mode change never moves a session to a weaker mode except by the
operation that ends the stronger one (lift a block, resume, end a cooldown)."""


def stronger(a: SessionMode, b: SessionMode) -> SessionMode:
    """The stronger of two modes (``PRECEDENCE``)."""
    return a if PRECEDENCE.index(a) <= PRECEDENCE.index(b) else b


class TurnKind(StrEnum):
    AGENT = "agent"
    """The pipeline's turn (the default)."""
    HUMAN = "human"
    """An operator's reply, committed under the session lease; consumes the messages it
    answers. No supersede, window or cut applies to it."""
    DROP = "drop"
    """Messages of a blocked customer consumed without an answer (audited)."""
