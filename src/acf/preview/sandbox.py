"""The sandbox: the embedded runtime on its own temporary SQLite file and a virtual clock,
delivering to a recording channel, with the agents the caller gives it.

It is the scenario harness (``acf.testing.Harness``) with three changes: the agents are
any tenant's (not the harness's one scripted agent), messages are accepted with their own
session key, and the clock also waits for model requests in flight (``InFlight``): a
lookup in the tenant's store or a live model takes real time that the virtual clock must
not skip.
"""

from collections.abc import Mapping
from pathlib import Path

from acf.domain.errors import Conflict
from acf.domain.messages import NewMessage
from acf.domain.session_key import SessionKey
from acf.ports.session_store import CloseSession
from acf.preview.recorded_model import InFlight
from acf.service.agents import Agents
from acf.service.ingress import Accepted
from acf.testing.channel import RecordingChannel
from acf.testing.clock import VirtualClock
from acf.testing.harness import Harness, HarnessOptions


class Sandbox(Harness):
    def __init__(self, data_dir: Path, agents: Agents, start_ms: int, inflight: InFlight) -> None:
        super().__init__(data_dir, HarnessOptions())
        self.clock = VirtualClock(start_ms)
        self.channel = RecordingChannel(self.clock)
        self.agents = agents
        self._inflight = inflight

    async def accept(self, message: NewMessage) -> Accepted:
        """Accept ``message`` once everything before it settled; the caller settles again
        (after noting which recorded session the accepted message replays)."""
        await self.settle()
        assert self._ingress is not None, "the sandbox is not started"
        return await self._ingress.accept(message)

    async def close_open(self, key: SessionKey, reason: str) -> bool:
        """Close the key's open session if it is idle (so the next message opens a new one,
        as it did when it was recorded); False when it is still busy or already closed."""
        session = await self.store.sessions.find_open(key.tenant, key)
        if session is None:
            return True
        op = CloseSession(
            key.tenant, session.session_id, self.clock.now_ms(), reason, session.updated_at_ms
        )
        try:
            await self.store.uow.commit(key.tenant, [op])
        except Conflict:
            return False
        return True

    async def confirmation_button(self, key: SessionKey, button_id: str) -> str:
        """A recorded press of a confirmation's Yes or No (``confirm:<id>:yes``, an id made
        when it was asked) as the same press of the question the sandbox asked instead;
        unchanged when the sandbox has no question pending (then it is not an answer)."""
        parts = button_id.split(":")
        if len(parts) != 3 or parts[0] != "confirm" or parts[2] not in ("yes", "no"):
            return button_id
        session = await self.store.sessions.find_open(key.tenant, key)
        meta = {} if session is None else session.state.get("meta") or {}
        pending = meta.get("confirmation") if isinstance(meta, Mapping) else None
        if not isinstance(pending, Mapping):
            return button_id
        return str(pending.get("yes_id" if parts[2] == "yes" else "no_id") or button_id)

    async def settle(self) -> None:
        while True:
            await super().settle()
            if self._inflight.idle:
                return
            await self._inflight.wait()
