"""How the firewall judges an accepted message in the service as ``open_service`` wires it
(SQLite file, virtual clock, the runtime not started):

- a message detector fires on the newest message only, counting what the customer sent
  since the session last entered agent mode: after a cool-down for banned terms, an
  innocent message does not start another, and neither does one more term until the
  rule's count is reached again;
- with only the flood detector on, the recent messages are never read; the cool-downs of
  the day are read without a write (only the message and the cool-down are committed);
- an automatic block wakes every open session of the customer on the channel, not only
  the one whose message tripped it.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from acf.bootstrap import Service, open_service, read_settings
from acf.config.load import load_config
from acf.domain.abuse import MINUTE_MS
from acf.domain.channels import Channel
from acf.domain.ids import SessionId, TenantId
from acf.domain.modes import SessionMode
from acf.domain.session_key import SessionKey
from acf.ports.session_modes import EndCooldown
from acf.service.firewall import Firewall
from acf.service.ingress import Ingress
from acf.testing import VirtualClock
from tests.runtime.test_firewall import AGENT, START_MS, document, send

Opened = Callable[[dict[str, Any]], Awaitable[Service]]


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[Opened]:
    """Open the service on acme's ``firewall:`` (over ``document()``'s agents)."""
    services: list[Service] = []

    async def open_(firewall: dict[str, Any]) -> Service:
        doc = document()
        doc["tenants"]["acme"]["firewall"] = firewall
        doc["tenants"]["acme"]["agents"]["sales"] = doc["tenants"]["acme"]["agents"][AGENT]
        path = tmp_path / f"acf{len(services)}.yaml"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        settings = read_settings({"data_dir": tmp_path / f"data{len(services)}"}, environ={})
        service = await open_service(load_config(path), settings, clock=VirtualClock(START_MS))
        services.append(service)
        return service

    yield open_
    for service in services:
        await service.close()


def clock_of(service: Service) -> VirtualClock:
    assert isinstance(service.clock, VirtualClock)
    return service.clock


async def mode(service: Service, session_id: SessionId) -> SessionMode:
    record = await service.store.sessions.get("acme", session_id)
    assert record is not None
    return record.mode


TERMS = {
    "banned_terms": {"terms": ["idiot"], "count": 2, "within_s": 3600},
    "cooldown_s": 600,
    "auto_block_after": 0,
}


async def test_messages_a_cooldown_answered_for_count_no_more(opened: Opened) -> None:
    service = await opened(TERMS)
    clock = clock_of(service)
    first = await send(service.ingress, ["you idiot"])
    clock.advance(60_000)
    second = await send(service.ingress, ["idiot bot"])
    sid = first[0].session_id
    assert second[0].held == "cooldown"
    clock.advance(11 * MINUTE_MS)  # within the rule's hour, past the cool-down
    await service.store.uow.commit("acme", [EndCooldown("acme", sid, clock.now_ms())])

    innocent = await send(service.ingress, ["sorry, my bad. can you help with my order?"])
    assert innocent[0].held is None
    one_more = await send(service.ingress, ["idiot"])  # one since agent mode began
    assert one_more[0].held is None
    assert await mode(service, sid) is SessionMode.AGENT
    again = await send(service.ingress, ["still an idiot"])  # two: the rule's count
    assert again[0].held == "cooldown"


@pytest.mark.parametrize(
    ("firewall", "reads"),
    [
        ({"repeated": {"enabled": False}, "injection": {"enabled": False}}, False),
        ({}, True),  # repeated and the default injection patterns
    ],
)
async def test_recent_messages_are_read_only_for_a_message_detector(
    opened: Opened, monkeypatch: pytest.MonkeyPatch, firewall: dict[str, Any], reads: bool
) -> None:
    service = await opened({"limits": {"per_minute": 3, "per_day": 1000}, **firewall})
    messages = service.store.messages
    read: list[SessionId] = []
    recent = messages.recent

    async def spy(tenant: TenantId, session_id: SessionId, upto: int, limit: int) -> Any:
        read.append(session_id)
        return await recent(tenant, session_id, upto, limit)

    monkeypatch.setattr(messages, "recent", spy)
    accepted = await send(service.ingress, [f"message {i}" for i in range(4)])
    assert accepted[-1].held == "cooldown"  # the flood detector still works
    assert bool(read) is reads


async def test_judging_commits_the_message_and_the_cooldown_only(
    opened: Opened, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The day's cool-downs are read in a read transaction, and the cool-down counts itself
    (``StartCooldown``): no unit of the firewall's own reads or counts."""
    service = await opened({"limits": {"per_minute": 3, "per_day": 1000}})
    uow = service.store.uow
    committed: list[list[str]] = []
    commit = uow.commit

    async def spy(tenant: TenantId, ops: Any) -> Any:
        committed.append([type(op).__name__ for op in ops])
        return await commit(tenant, ops)

    monkeypatch.setattr(uow, "commit", spy)
    await send(service.ingress, [f"message {i}" for i in range(4)])
    assert committed == [["AppendMessage"]] * 4 + [["StartCooldown"]]


async def test_an_automatic_block_wakes_every_session_of_the_customer_on_the_channel(
    opened: Opened,
) -> None:
    service = await opened(
        {"limits": {"per_minute": 3, "per_day": 1000}, "auto_block_after": 1, "cooldown_s": 60}
    )
    clock = clock_of(service)
    woken: list[SessionId] = []

    async def wake(tenant: TenantId, session_id: SessionId) -> None:
        woken.append(session_id)

    firewall = Firewall(
        service.store, clock, service.people, service.store.customer_rates, wake=wake
    )
    ingress = Ingress(service.agents, service.store.uow, service.wakeups, clock, firewall)
    sales = SessionKey("acme", "sales", "ann", Channel.WEB)
    (other,) = await send(ingress, ["hello sales"], sales)
    (elsewhere,) = await send(ingress, ["hello"], SessionKey("acme", AGENT, "ann", Channel.SMS))
    first = await send(ingress, [f"a{i}" for i in range(4)])
    sid = first[0].session_id
    assert first[-1].held == "cooldown"
    clock.advance(2 * MINUTE_MS)
    await service.store.uow.commit("acme", [EndCooldown("acme", sid, clock.now_ms())])
    assert woken == []

    blocked = await send(ingress, [f"b{i}" for i in range(4)])
    assert blocked[-1].held == "blocked"
    assert sorted(woken) == sorted([sid, other.session_id])  # not the SMS session
    assert await mode(service, other.session_id) is SessionMode.BLOCKED
    assert await mode(service, elsewhere.session_id) is SessionMode.AGENT
