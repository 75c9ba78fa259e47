"""The abuse firewall in the service as ``open_service`` wires it (SQLite file, virtual
clock; the runtime is not started, so no turn consumes what the tests count): the real
ingress counts every accepted message and inspects it.

- a flood puts the session in a cool-down: the one notice is queued once, every message is
  stored (as many stored as sent), and the one that tripped it and those after it are
  accepted ``held`` (the later ones' ``message.received`` says so too);
- cool-down after cool-down in one UTC day, the next finding blocks the customer
  (``created_by="firewall"``, audited by ``abuse.suspected`` action ``block``) for a day;
- refusals counted by ``refusal_ops``'s op in the turn's unit (a unit never committed
  counts nothing) start a cool-down in the turn's unit at the rule's count;
- a counter that fails, or a firewall that raises, never refuses or loses a message, and the
  session is still woken;
- re-deliveries are not counted; a tenant whose firewall is off is not counted at all.
"""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from acf.adapters.memory.wakeup import InProcessWakeUps
from acf.bootstrap import Service, open_service, read_settings
from acf.config.load import load_config
from acf.domain.abuse import DAY_MS, MINUTE_MS
from acf.domain.channels import Channel
from acf.domain.events import EventKind, FabricEvent
from acf.domain.ids import SessionId, new_id
from acf.domain.messages import NewMessage
from acf.domain.modes import SessionMode
from acf.domain.session_key import SessionKey
from acf.ports.event_store import EventQuery
from acf.ports.firewall import CountCustomer, RateCounts
from acf.ports.session_modes import EndCooldown, StartCooldown
from acf.service.firewall import Firewall
from acf.service.ingress import Accepted, Ingress
from acf.testing import VirtualClock

AGENT = "support"
START_MS = 19_999 * DAY_MS + 60 * MINUTE_MS + 5_000
"""5 s into the second hour of a UTC day."""


def document() -> dict[str, Any]:
    """acme: three messages a minute per customer, a block after two cool-downs a day;
    globex: the firewall off."""
    rules = {
        "fallback": "ok",
        "rules": [{"name": "hi", "lane": "info", "match": {"keywords": ["hi"]}, "reply": "hi"}],
    }
    agents = {AGENT: {"pipeline": {"kind": "rules", "rules": rules}}}
    channels = {"web": {"mode": "off"}}
    return {
        "version": 1,
        "tenants": {
            "acme": {
                "channels": channels,
                "agents": agents,
                "firewall": {
                    "limits": {"per_minute": 3, "per_day": 1000},
                    "cooldown_s": 600,
                    "auto_block_after": 2,
                    "notice": "Paused for a bit.",
                },
            },
            "globex": {"channels": channels, "agents": agents, "firewall": {"enabled": False}},
        },
    }


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    path = tmp_path / "acf.yaml"
    path.write_text(yaml.safe_dump(document()), encoding="utf-8")
    settings = read_settings({"data_dir": tmp_path / "data"}, environ={})
    opened = await open_service(load_config(path), settings, clock=VirtualClock(START_MS))
    try:
        yield opened
    finally:
        await opened.close()


def key(tenant: str = "acme", customer: str = "ann") -> SessionKey:
    return SessionKey(tenant, AGENT, customer, Channel.WEB)


async def send(
    ingress: Ingress, texts: list[str], k: SessionKey | None = None, pid: str | None = None
) -> list[Accepted]:
    return [await ingress.accept(NewMessage(k or key(), pid or new_id(), text)) for text in texts]


async def events(service: Service, session_id: SessionId, kind: EventKind) -> list[FabricEvent]:
    return await service.store.events.query("acme", EventQuery(session_id=session_id, kinds=[kind]))


async def notices(service: Service, session_id: SessionId) -> list[str]:
    rows = await service.store.outbox.for_session("acme", session_id)
    return [r.payload["text"] for r in rows if r.payload.get("author") == "system"]


async def test_a_flood_holds_the_session_and_loses_nothing(service: Service) -> None:
    texts = [f"flood text {i}" for i in range(10)]
    accepted = await send(service.ingress, texts)

    sid = accepted[0].session_id
    assert {a.session_id for a in accepted} == {sid}
    # the fourth message in the minute is over three a minute: it starts the cool-down
    assert [a.held for a in accepted] == [None] * 3 + ["cooldown"] * 7
    session = await service.store.sessions.get("acme", sid)
    assert session is not None
    assert session.mode is SessionMode.COOLDOWN
    assert session.mode_until_ms == START_MS + 600_000
    assert session.last_seq == len(texts)  # every message stored
    stored = await service.store.messages.read_range("acme", sid, 0, session.last_seq)
    assert [m.text for m in stored] == texts

    assert await notices(service, sid) == ["Paused for a bit."]  # once
    (started,) = await events(service, sid, EventKind.ABUSE_COOLDOWN_STARTED)
    assert started.data["detector"] == "flood"
    (suspected,) = await events(service, sid, EventKind.ABUSE_SUSPECTED)
    assert "text" not in suspected.data["detail"]  # counts, never what was written
    received = await events(service, sid, EventKind.MESSAGE_RECEIVED)
    assert [e.data.get("held") for e in received] == [None] * 4 + ["cooldown"] * 6
    # every accepted message counted, the held ones too
    counts = await service.store.customer_rates.peek("acme", Channel.WEB, "ann", START_MS)
    assert counts.minute == 10


async def test_cool_down_after_cool_down_blocks_the_customer(service: Service) -> None:
    clock = service.clock
    assert isinstance(clock, VirtualClock)
    sid: SessionId | None = None
    for round_ in range(2):
        accepted = await send(service.ingress, [f"r{round_} m{i}" for i in range(4)])
        sid = accepted[0].session_id
        assert [a.held for a in accepted] == [None, None, None, "cooldown"]
        record = await service.store.sessions.get("acme", sid)
        assert record is not None and record.mode is SessionMode.COOLDOWN
        clock.advance(11 * MINUTE_MS)
        await service.store.uow.commit("acme", [EndCooldown("acme", sid, clock.now_ms())])
    assert sid is not None

    accepted = await send(service.ingress, [f"r2 m{i}" for i in range(4)])
    assert accepted[-1].session_id == sid
    assert [a.held for a in accepted] == [None, None, None, "blocked"]
    block = await service.store.blocks.active("acme", Channel.WEB, "ann")
    assert block is not None and block.created_by == "firewall"
    assert "2 cool-downs" in block.reason
    assert block.expires_at_ms == clock.now_ms() + DAY_MS  # auto_block_s: a day
    record = await service.store.sessions.get("acme", sid)
    assert record is not None
    assert (record.mode, record.mode_reason) == (SessionMode.BLOCKED, f"block:{block.block_id}")
    assert len(await notices(service, sid)) == 2  # the cool-downs' only
    suspected = await events(service, sid, EventKind.ABUSE_SUSPECTED)
    assert [e.data.get("action") for e in suspected] == [None, None, "block"]
    blocked = await service.store.events.query(
        "acme", EventQuery(kinds=[EventKind.CUSTOMER_BLOCKED])
    )
    assert [e.data["by"] for e in blocked] == ["firewall"]

    later = await send(service.ingress, ["still here"])
    assert later[0].held == "blocked"  # stored, held, not judged again
    assert len(await events(service, sid, EventKind.ABUSE_SUSPECTED)) == 3


async def test_refusals_start_a_cool_down_in_the_turns_unit(service: Service) -> None:
    firewall = service.firewall
    assert firewall is not None
    (first,) = await send(service.ingress, ["hello"])
    sid = first.session_id
    now = service.clock.now_ms()
    # the default rule: three refusals within an hour
    for n in range(2):
        ops = await firewall.refusal_ops(key(), sid, now + n * 1000, f"t-{n}")
        assert [type(op) for op in ops] == [CountCustomer]
        # a turn superseded before its commit (its unit never committed) counts nothing
        again = await firewall.refusal_ops(key(), sid, now + n * 1000 + 500, f"t-{n}b")
        assert [type(op) for op in again] == [CountCustomer]
        await service.store.uow.commit("acme", ops)
    ops = await firewall.refusal_ops(key(), sid, now + 2000, "t-3")
    count, cooldown = ops
    assert isinstance(count, CountCustomer) and count.by == 1
    assert isinstance(cooldown, StartCooldown)
    assert cooldown.detector == "policy_blocks" and cooldown.notice == "Paused for a bit."
    await service.store.uow.commit("acme", ops)
    record = await service.store.sessions.get("acme", sid)
    assert record is not None and record.mode is SessionMode.COOLDOWN
    (held,) = await send(service.ingress, ["and now?"])
    assert held.held == "cooldown"


async def test_a_refusal_that_cannot_be_counted_costs_the_turn_nothing(
    service: Service,
) -> None:
    def failing_policy(tenant: str) -> Any:
        raise RuntimeError("no policy")

    firewall = Firewall(service.store, service.clock, failing_policy, BrokenRates())
    (first,) = await send(service.ingress, ["hello"])
    assert await firewall.refusal_ops(key(), first.session_id, START_MS, "t-1") == ()


class BrokenRates:
    async def hit(self, *args: object) -> RateCounts:
        raise ConnectionError("the counters are away")

    async def peek(self, *args: object) -> RateCounts:
        raise ConnectionError("the counters are away")

    async def prune(self, *args: object) -> int:
        raise ConnectionError("the counters are away")

    async def tallies(self, *args: object) -> list[int]:
        raise ConnectionError("the counters are away")


def ingress_with(service: Service, firewall: Firewall, wakeups: InProcessWakeUps) -> Ingress:
    return Ingress(service.agents, service.store.uow, wakeups, service.clock, firewall)


@pytest.mark.parametrize("fault", ["counters", "policy"])
async def test_a_firewall_fault_never_refuses_a_message(service: Service, fault: str) -> None:
    def failing_policy(tenant: str) -> Any:
        raise RuntimeError("no policy")

    firewall = Firewall(
        service.store,
        service.clock,
        failing_policy if fault == "policy" else service.people,
        BrokenRates() if fault == "counters" else service.store.customer_rates,
    )
    wakeups = InProcessWakeUps()
    woken = wakeups.subscribe()
    ingress = ingress_with(service, firewall, wakeups)

    accepted = await send(ingress, [f"message {i}" for i in range(6)])

    record = await service.store.sessions.get("acme", accepted[0].session_id)
    assert record is not None and record.last_seq == 6
    assert all(a.held is None for a in accepted)  # uninspected, not held
    async with asyncio.timeout(5):
        wake = await anext(woken)
    assert wake.session_id == accepted[0].session_id


async def test_re_deliveries_are_not_counted(service: Service) -> None:
    for _ in range(5):
        await send(service.ingress, ["same delivery"], pid="provider-1")
    counts = await service.store.customer_rates.peek("acme", Channel.WEB, "ann", START_MS)
    assert (counts.minute, counts.day) == (1, 1)


async def test_a_tenant_with_the_firewall_off_is_not_counted(service: Service) -> None:
    accepted = await send(service.ingress, ["hi"] * 10, key("globex"))
    assert all(a.held is None for a in accepted)
    counts = await service.store.customer_rates.peek("globex", Channel.WEB, "ann", START_MS)
    assert counts.day == 0
