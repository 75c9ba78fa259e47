"""Drafts: the reply a running turn is still writing, from the pipeline to whoever watches
the session (DESIGN §16). Ephemeral: never stored, sent or put in history.

A draft carries where its text goes in the reply so far: the watcher's text becomes
``text_so_far[:offset] + text`` (offsets count Unicode code points). The first draft of an
attempt has offset 0; a restart of the text (a shorter one) goes back to its common prefix.
"""

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from acf.domain.ids import SessionId, TenantId, TurnId


@dataclass(frozen=True, slots=True)
class Draft:
    """Part of the reply so far of one attempt of a running turn."""

    tenant: TenantId
    session_id: SessionId
    turn_id: TurnId
    attempt: int
    fence: int
    """The lease's fencing token of the attempt's holder (a higher one is newer)."""
    offset: int
    """Where ``text`` starts in the reply so far (code points)."""
    text: str
    at_ms: int

    @property
    def end(self) -> int:
        """The length of the reply so far once this draft is applied."""
        return self.offset + len(self.text)


@runtime_checkable
class DraftSubscription(Protocol):
    """The drafts of one session published after ``subscribe``, oldest first. A slow
    reader loses the oldest ones past a bound (a watcher skips drafts it cannot place)."""

    def drain(self) -> list[Draft]:
        """The drafts received since the last call (none: an empty list); never waits."""
        ...

    async def wait(self) -> None:
        """Return once ``drain`` has something (at once when it has already)."""
        ...

    def close(self) -> None:
        """Stop receiving."""
        ...


@runtime_checkable
class DraftBus(Protocol):
    """Best-effort delivery of drafts to the session's watchers, in this process and, in
    distributed mode, in the others.

    Guarantees: ``publish`` never waits on I/O and never raises (a pipeline streaming its
    answer pays a queue put, no more); a subscription sees the drafts of its tenant and
    session published after it subscribed, in publish order per publisher, possibly with
    gaps (a lost notification) and repeats. Nothing is stored: the turn's stored events
    (its commit, the drafts' withdrawal) stay the truth.
    """

    def publish(self, draft: Draft) -> None: ...

    def subscribe(self, tenant: TenantId, session_id: SessionId) -> DraftSubscription:
        """Start receiving the session's drafts; registered before this returns."""
        ...
