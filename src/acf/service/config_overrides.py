"""Runtime overrides of a session's configuration (DESIGN §17, the last layer): keys the
agent marks ``overridable``, set per session from the API and stored in the session's state
as ``config_overrides`` (acf's part of the state contract), where the runtime reads them at
the session's next turn (``acf.service.pinning.overrides_of``).

Checked against the version the session is pinned to (else the live one, else the file
acf serves): a key that is not overridable, or a value its field refuses, is an
``InvalidValue`` naming the key, and nothing is written. A write replaces the session's
overrides as a whole (an empty mapping clears them); it is versioned like every state
write, so it never overwrites a turn's concurrent change unseen.
"""

import asyncio
from collections.abc import Mapping
from typing import Any

from acf.domain.config_versions import ConfigVersion
from acf.domain.errors import VersionConflict
from acf.domain.state import replacement_patch
from acf.ports.session_store import PatchState, SessionRecord
from acf.service.config_lifecycle import ConfigLifecycle

OVERRIDES_KEY = "config_overrides"
"""The session state's key holding the overrides (dotted key → value)."""
WRITE_ATTEMPTS = 3


async def session_version(
    lifecycle: ConfigLifecycle, session: SessionRecord
) -> ConfigVersion | None:
    """The version the session runs on: its pinned version, else the live one; None for a
    tenant that never had a version (the file acf serves applies)."""
    if session.config_version is not None:
        return await lifecycle.get(session.tenant, session.config_version)
    return await lifecycle.live(session.tenant)


def stored_overrides(state: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The overrides the session's state holds (None: none)."""
    found = state.get(OVERRIDES_KEY)
    return found if isinstance(found, Mapping) else None


def overrides_patch(old: Any, new: Mapping[str, Any]) -> dict[str, Any]:
    """The state merge patch that makes the session's overrides exactly ``new``. Pure."""
    if not new:
        return {OVERRIDES_KEY: None}
    return {OVERRIDES_KEY: replacement_patch(old, dict(new))}


async def set_overrides(
    lifecycle: ConfigLifecycle, session: SessionRecord, overrides: Mapping[str, Any], at_ms: int
) -> SessionRecord:
    """Check ``overrides`` for the session's agent and store them (replacing the previous
    ones). Returns the session as written; ``VersionConflict`` if turns kept changing its
    state (after a few attempts)."""
    version = await session_version(lifecycle, session)
    await asyncio.to_thread(
        lifecycle.files.check_overrides, version, session.tenant, session.key.agent, overrides
    )
    sessions, tenant = lifecycle.store.sessions, session.tenant
    current = session
    for _ in range(WRITE_ATTEMPTS):
        old = stored_overrides(current.state)
        if old is None and not overrides:
            return current
        op = PatchState(
            current.session_id, current.state_version, overrides_patch(old, overrides), at_ms
        )
        try:
            await lifecycle.store.uow.commit(tenant, [op])
        except VersionConflict:
            again = await sessions.get(tenant, current.session_id)
            if again is None:
                raise
            current = again
            continue
        written = await sessions.get(tenant, current.session_id)
        assert written is not None, "a session is never deleted"
        return written
    raise VersionConflict(f"session {session.session_id}'s state kept changing; try again")
