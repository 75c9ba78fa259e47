"""A window reads the customer's typing as the typing hold does: from this process or from
the store, whichever is newer (``RuntimeParts.latest_typing``). In distributed mode the
signal reaches an API process, which stores it and wakes the session; the worker running
the session's window has nothing in memory. Simulated as ``test_typing_hold`` does: the
events stored directly, the session notified, ``Runtime.typing`` (which would also set the
in-memory signal) never called.
"""

from dataclasses import replace
from pathlib import Path

import pytest

from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import new_trace_id
from acf.domain.policy import AccumulationMode
from acf.ports.event_store import AppendEvent
from acf.testing.harness import TENANT, Harness
from tests.runtime.test_typing_hold import POLICY, QUESTION, RUN_MS, Lookup, events, options, until

NO_HOLD = replace(POLICY, typing_hold_ms=0)  # windows only


async def stored_typing(h: Harness, session_id: str, active: bool) -> None:
    """What an API process does with a typing signal for a session another process runs."""
    correlation = Correlation(TENANT, new_trace_id(), session_id)
    kind = EventKind.TYPING_STARTED if active else EventKind.TYPING_STOPPED
    signal = FabricEvent(kind, h.clock.now_ms(), correlation)
    await h.store.uow.commit(TENANT, [AppendEvent(signal)])
    await h.runtime.notify(TENANT, session_id)


async def test_a_stored_typing_signal_holds_the_window(tmp_path: Path) -> None:
    async with Harness(tmp_path, options(Lookup(), NO_HOLD)) as h:
        start = h.clock.now_ms()
        accepted = await h.send("alice", QUESTION)  # complete: the window would close at 250
        await until(h, start + 100)
        await stored_typing(h, accepted.session_id, True)
        assert h.runtime.parts.typing == {}  # nothing in memory: the store alone says it
        await until(h, start + 1500)
        assert not await events(h, EventKind.WINDOW_CLOSED)
        await stored_typing(h, accepted.session_id, False)
        await h.run_until_idle()
        (closed,) = await events(h, EventKind.WINDOW_CLOSED)
        assert closed.data["reason"] == "typing_stopped"
        assert closed.at_ms == start + 1500 + NO_HOLD.min_window_ms
        assert h.channel.sends[0].at_ms == closed.at_ms + RUN_MS


@pytest.mark.parametrize("mode", [AccumulationMode.FIXED, AccumulationMode.OFF])
async def test_a_rule_that_ignores_typing_is_not_held_by_it(
    tmp_path: Path, mode: AccumulationMode
) -> None:
    policy = replace(NO_HOLD, mode=mode)
    async with Harness(tmp_path, options(Lookup(), policy)) as h:
        start = h.clock.now_ms()
        accepted = await h.send("alice", QUESTION)
        await until(h, start + 100)
        await stored_typing(h, accepted.session_id, True)
        await h.run_until_idle()
        closes = {AccumulationMode.FIXED: policy.window_ms, AccumulationMode.OFF: 0}
        assert h.channel.sends[0].at_ms == start + closes[mode] + RUN_MS
