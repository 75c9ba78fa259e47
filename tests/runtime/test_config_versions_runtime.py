"""Configuration versions in the running service (DESIGN §17), on a real SQLite file and on
the machine's PostgreSQL: the whole service (``open_service``, as `acf serve` opens it, its
start pushing and promoting the file), versions pushed and promoted through the store's
ops while it runs, messages through the real ingress.

- a session pinned to v1 keeps v1 while a new session gets v2, without a restart;
- a rolled-back version's session moves to the live one at its next turn
  (``session.repinned``), and so does a session of a version applied ``next_turn``, its
  state migrated by the declared upcaster;
- every event and the TurnRecord of a turn carry the version's label.
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from acf.adapters.postgres.store import libpq_url
from acf.adapters.sql import migrate, schema
from acf.bootstrap import Service, open_service, read_settings
from acf.bootstrap.settings import ConfigSource
from acf.config.load import load_config
from acf.config.versions_source import version_sources
from acf.domain.channels import Channel
from acf.domain.config_versions import ApplyMode
from acf.domain.events import EventKind
from acf.domain.ids import SessionId, new_id
from acf.domain.messages import NewMessage
from acf.domain.session_key import SessionKey
from acf.domain.turns import TurnPhase
from acf.ports.config_versions import (
    PromoteVersion,
    PushVersion,
    RollbackCanary,
    RollbackLive,
    StartCanary,
)
from acf.ports.event_store import EventQuery
from acf.ports.session_store import PatchState, SessionRecord, SessionStatus
from acf.service.idle_close import IdleCloser, IdleCloseSettings
from tests.integration.services import require_postgres, temporary_database

TENANT = "acme"
AGENT = "support"
WAIT_S = 15.0


def body(reply: str, **tenant_extra: Any) -> dict[str, Any]:
    """A tenant whose agent answers ``reply`` to everything, one message per turn."""
    rules = {
        "fallback": reply,
        "rules": [
            {"name": "hello", "lane": "info", "match": {"keywords": ["hello"]}, "reply": reply}
        ],
    }
    tenant = {
        "channels": {"web": {"mode": "off"}},
        "agents": {AGENT: {"pipeline": {"kind": "rules", "rules": rules}}},
        **tenant_extra,
    }
    return {"version": 1, "tenants": {TENANT: tenant}}


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    require_postgres()
    with temporary_database() as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Service]:
    options: dict[str, Any] = {"data_dir": tmp_path / "data"}
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(f"TRUNCATE {', '.join(t.name for t in schema.metadata.sorted_tables)}")
        options["database_url"] = url
    path = tmp_path / "acf.yaml"
    path.write_text(yaml.safe_dump(body("one")), encoding="utf-8")
    opened = await open_service(load_config(path), read_settings(options, environ={}))
    try:
        await opened.serve_file_versions(ConfigSource.FILE)  # as `acf serve` starts
        await opened.start()
        yield opened
    finally:
        await opened.close()


async def push(service: Service, tmp_path: Path, document: dict[str, Any]) -> int:
    """Push ``document``'s tenant as a version (a draft); returns its number."""
    path = tmp_path / f"acf-{new_id()[:8]}.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    source = version_sources(load_config(path))[TENANT]
    now = service.clock.now_ms()
    op = PushVersion(
        TENANT,
        source.content_hash,
        source.source,
        source.resolved,
        source.provenance,
        "test",
        "a change",
        None,
        ApplyMode(source.apply),
        now,
    )
    number: int = (await service.store.uow.commit(TENANT, [op])).get(op).version.number
    return number


async def push_and_promote(service: Service, tmp_path: Path, document: dict[str, Any]) -> int:
    """Push ``document``'s tenant as a version and promote it, as `acf config` does, then
    announce it; returns its number."""
    number = await push(service, tmp_path, document)
    now = service.clock.now_ms()
    await service.store.uow.commit(TENANT, [PromoteVersion(TENANT, number, now, "test")])
    await service.config_changes.announce(TENANT)
    return number


async def say(service: Service, customer: str, text: str = "hello") -> tuple[SessionId, str]:
    """Send ``text`` and wait for the turn it starts; its session and reply."""
    key = SessionKey(TENANT, AGENT, customer, Channel.WEB)
    accepted = await service.ingress.accept(NewMessage(key, new_id(), text))
    sid = accepted.session_id
    async with asyncio.timeout(WAIT_S):
        while True:
            turns = await service.store.turns.list_turns(TENANT, sid)
            done = [t for t in turns if t.phase is TurnPhase.COMMITTED and t.to_seq >= accepted.seq]
            if done:
                record = await service.store.turns.get_record(TENANT, done[-1].turn_id)
                assert record is not None
                return sid, record.replies[0]
            await asyncio.sleep(0.02)


async def session(service: Service, sid: SessionId) -> SessionRecord:
    found = await service.store.sessions.get(TENANT, sid)
    assert found is not None
    return found


async def labels_of_turns(service: Service, sid: SessionId) -> list[set[str | None]]:
    """Per turn of the session: the config_version labels of its events and record."""
    events = await service.store.events.query(
        TENANT, EventQuery(session_id=sid, limit=1000, in_commit_order=False)
    )
    out = []
    for turn in await service.store.turns.list_turns(TENANT, sid):
        labels = {
            e.correlation.config_version for e in events if e.correlation.turn_id == turn.turn_id
        }
        record = await service.store.turns.get_record(TENANT, turn.turn_id)
        if record is not None:
            labels.add(record.correlation.config_version)
        out.append(labels)
    return out


async def test_a_pinned_session_keeps_its_version_while_new_sessions_get_the_new_one(
    service: Service, tmp_path: Path
) -> None:
    first, reply = await say(service, "ann")
    assert reply == "one"
    assert (await session(service, first)).config_version == 1

    assert await push_and_promote(service, tmp_path, body("two")) == 2  # no restart

    again, reply = await say(service, "ann")
    assert (again, reply) == (first, "one")  # pinned to v1 until it closes
    second, reply = await say(service, "bob")
    assert reply == "two"
    assert (await session(service, second)).config_version == 2
    assert service.agents.label(TENANT) == "v2"

    assert await labels_of_turns(service, first) == [{"v1"}, {"v1"}]
    assert await labels_of_turns(service, second) == [{"v2"}]


async def test_a_rolled_back_version_repins_its_sessions_at_their_next_turn(
    service: Service, tmp_path: Path
) -> None:
    await push_and_promote(service, tmp_path, body("two"))
    sid, reply = await say(service, "cat")
    assert reply == "two"

    await service.store.uow.commit(
        TENANT, [RollbackLive(TENANT, service.clock.now_ms(), "test", "bad replies")]
    )
    await service.config_changes.announce(TENANT)

    again, reply = await say(service, "cat")
    assert (again, reply) == (sid, "one")  # v1 again, in the same session
    assert (await session(service, sid)).config_version == 1
    events = await service.store.events.query(
        TENANT,
        EventQuery(session_id=sid, kinds=[EventKind.SESSION_REPINNED], in_commit_order=False),
    )
    moves = [(e.data["from"], e.data["to"], e.data["reason"], e.data["migrated"]) for e in events]
    assert moves == [("v2", "v1", "rolled_back", False)]
    assert events[0].correlation.config_version == "v1"
    assert await labels_of_turns(service, sid) == [{"v2"}, {"v1"}]


async def test_next_turn_moves_running_sessions_and_upcasts_their_state(
    service: Service, tmp_path: Path
) -> None:
    sid, reply = await say(service, "dan")
    assert reply == "one"

    upcaster = {"set": {"slots": {"migrated": True}}}
    number = await push_and_promote(
        service, tmp_path, body("three", apply="next_turn", state_upcaster=upcaster)
    )

    again, reply = await say(service, "dan")
    assert (again, reply) == (sid, "three")
    moved = await session(service, sid)
    assert moved.config_version == number
    assert moved.state["slots"] == {"migrated": True}
    events = await service.store.events.query(
        TENANT,
        EventQuery(session_id=sid, kinds=[EventKind.SESSION_REPINNED], in_commit_order=False),
    )
    assert len(events) == 1
    assert events[0].data["reason"] == "next_turn"
    assert events[0].data["migrated"] is True
    assert await labels_of_turns(service, sid) == [{"v1"}, {f"v{number}"}]


async def test_a_canary_rolled_back_repins_its_sessions_at_their_next_turn(
    service: Service, tmp_path: Path
) -> None:
    number = await push(service, tmp_path, body("canary"))
    now = service.clock.now_ms()
    await service.store.uow.commit(TENANT, [StartCanary(TENANT, number, 100, now, "test")])
    await service.config_changes.announce(TENANT)
    sid, reply = await say(service, "eve")  # opened while the canary takes every session
    assert reply == "canary"
    assert (await session(service, sid)).canary

    rollback = RollbackCanary(TENANT, number, "failures", service.clock.now_ms(), "test")
    await service.store.uow.commit(TENANT, [rollback])
    await service.config_changes.announce(TENANT)

    again, reply = await say(service, "eve")
    assert (again, reply) == (sid, "one")
    moved = await session(service, sid)
    assert (moved.config_version, moved.canary) == (1, False)
    events = await service.store.events.query(
        TENANT,
        EventQuery(session_id=sid, kinds=[EventKind.SESSION_REPINNED], in_commit_order=False),
    )
    assert [(e.data["from"], e.data["to"], e.data["reason"]) for e in events] == [
        (f"v{number}", "v1", "rolled_back")
    ]
    assert await labels_of_turns(service, sid) == [{f"v{number}"}, {"v1"}]


def with_scenario(reply: str) -> dict[str, Any]:
    """``body(reply)`` whose agent has a scenario ``refund`` with a step ``collect`` that
    answers otherwise, and lets a session override its deadline."""
    document = body(reply)
    agent = document["tenants"][TENANT]["agents"][AGENT]
    rule = {"name": "hi", "lane": "info", "match": {"keywords": ["hello"]}, "reply": "collecting"}
    collect = {"fallback": "collecting", "rules": [rule]}
    agent["scenarios"] = {"refund": {"steps": {"collect": {"pipeline": {"rules": collect}}}}}
    agent["overridable"] = ["settings.deadline_ms"]
    return document


async def test_a_turn_runs_its_scenario_step_and_runtime_overrides(
    service: Service, tmp_path: Path
) -> None:
    number = await push_and_promote(service, tmp_path, with_scenario("plain"))
    sid, reply = await say(service, "fay")
    assert reply == "plain"

    current = await session(service, sid)
    where = {"scenario": "refund", "step": "collect"}
    patch = PatchState(sid, current.state_version, where, service.clock.now_ms())
    await service.store.uow.commit(TENANT, [patch])
    _, reply = await say(service, "fay")
    assert reply == "collecting"  # the step's pipeline, in version v{number}
    assert await labels_of_turns(service, sid) == [{f"v{number}"}, {f"v{number}"}]

    current = await session(service, sid)
    overrides = {"config_overrides": {"settings.deadline_ms": 1234}}
    patch = PatchState(sid, current.state_version, overrides, service.clock.now_ms())
    await service.store.uow.commit(TENANT, [patch])
    pinned = await service.agents.pinned(await session(service, sid))
    assert pinned.config_version == f"v{number}"
    assert pinned.binding.settings.deadline_ms == 1234
    assert pinned.scenario_stamp is not None
    assert pinned.scenario_stamp["label"] == f"v{number}"
    assert pinned.scenario_stamp["hash"].startswith("sha256:")


def stop_periodic_refresh(service: Service) -> None:
    """This process then learns of a pointer change only when it is announced (or when it
    reads the pointer itself): what a worker sees while a NOTIFY is on its way."""
    refreshing = service._refreshing
    assert refreshing is not None
    refreshing.cancel()


async def promote_unannounced(service: Service, number: int) -> None:
    now = service.clock.now_ms()
    await service.store.uow.commit(TENANT, [PromoteVersion(TENANT, number, now, "elsewhere")])


async def repinned(service: Service, sid: SessionId) -> list[tuple[Any, ...]]:
    events = await service.store.events.query(
        TENANT,
        EventQuery(session_id=sid, kinds=[EventKind.SESSION_REPINNED], in_commit_order=False),
    )
    return [(e.data["from"], e.data["to"], e.data["reason"], e.data["migrated"]) for e in events]


async def test_a_stale_view_of_the_pointer_never_moves_a_session_off_the_live_version(
    service: Service, tmp_path: Path
) -> None:
    """Review of issue 21, bug 1: a worker whose cached live version is behind (v2,
    applied next_turn) must not move a session opened on the live v3 back to v2."""
    stop_periodic_refresh(service)
    await push_and_promote(service, tmp_path, body("two", apply="next_turn"))
    three = await push(service, tmp_path, body("three"))
    await promote_unannounced(service, three)  # another process promoted it
    assert service.agents.label(TENANT) == "v2"  # this one does not know yet

    sid, reply = await say(service, "gus")  # opened on v3 (the store's pointer)
    assert reply == "three"
    assert (await session(service, sid)).config_version == three
    assert await repinned(service, sid) == []
    assert service.agents.label(TENANT) == f"v{three}"  # the refusal made it read again


async def test_a_repin_upcast_never_overwrites_a_state_written_meanwhile(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review of issue 21, bug 4: the state is written through the API between the
    driver's read and the re-pin's commit; the upcast is made again from the new state."""
    sid, _ = await say(service, "hal")
    upcaster = {"set": {"slots": {"migrated": True}}}
    number = await push_and_promote(
        service, tmp_path, body("three", apply="next_turn", state_upcaster=upcaster)
    )
    decide = service.agents.repin
    written: list[int] = []

    async def api_writes_meanwhile(record: SessionRecord) -> Any:
        move = await decide(record)
        if move is not None and not written:
            patch = {"data": {"note": "from the API"}}
            op = PatchState(sid, record.state_version, patch, service.clock.now_ms())
            written.append((await service.store.uow.commit(TENANT, [op])).get(op))
        return move

    monkeypatch.setattr(service.agents, "repin", api_writes_meanwhile)
    again, reply = await say(service, "hal")
    assert (again, reply) == (sid, "three")
    moved = await session(service, sid)
    assert moved.config_version == number
    assert moved.state["data"]["note"] == "from the API"  # kept
    assert moved.state["slots"] == {"migrated": True}  # and migrated
    assert await repinned(service, sid) == [("v1", f"v{number}", "next_turn", True)]


def two_agents(reply: str, *, sales: bool = True) -> dict[str, Any]:
    """``body(reply)`` with a second agent ``sales`` (answering ``sales <reply>``)."""
    document = body(reply)
    if sales:
        agents = document["tenants"][TENANT]["agents"]
        rule = {"name": "hi", "lane": "info", "match": {"keywords": ["hi"]}, "reply": "hi"}
        rules = {"fallback": f"sales {reply}", "rules": [rule]}
        agents["sales"] = {"pipeline": {"kind": "rules", "rules": rules}}
    return document


async def turns_of(service: Service, sid: SessionId) -> list[TurnPhase]:
    async with asyncio.timeout(WAIT_S):
        while True:
            turns = await service.store.turns.list_turns(TENANT, sid)
            if turns and all(t.phase.is_terminal for t in turns):
                return [t.phase for t in turns]
            await asyncio.sleep(0.02)


async def test_a_session_whose_version_lacks_its_agent_moves_to_the_live_version(
    service: Service, tmp_path: Path
) -> None:
    """Review of issue 21, bug 3: a canary without agent ``sales`` takes every new session;
    a message for ``sales`` is pinned to it, cannot be served there, and moves to live."""
    await push_and_promote(service, tmp_path, two_agents("one"))
    canary = await push(service, tmp_path, two_agents("canary", sales=False))
    now = service.clock.now_ms()
    await service.store.uow.commit(TENANT, [StartCanary(TENANT, canary, 100, now, "test")])
    await service.config_changes.announce(TENANT)

    key = SessionKey(TENANT, "sales", "ivy", Channel.WEB)
    accepted = await service.ingress.accept(NewMessage(key, new_id(), "hello"))
    sid = accepted.session_id
    assert (await session(service, sid)).config_version == canary
    assert await turns_of(service, sid) == [TurnPhase.COMMITTED]
    turn = (await service.store.turns.list_turns(TENANT, sid))[0]
    record = await service.store.turns.get_record(TENANT, turn.turn_id)
    assert record is not None and list(record.replies) == ["sales one"]
    assert record.correlation.config_version == "v2"
    assert (await session(service, sid)).config_version == 2
    assert await repinned(service, sid) == [(f"v{canary}", "v2", "unservable", False)]


async def test_a_session_no_version_can_serve_fails_its_turn_instead_of_looping(
    service: Service, tmp_path: Path
) -> None:
    """Review of issue 21, bug 3: the live version lacks the agent too (this process
    accepted the message on its stale view): the turn fails as a pipeline error does —
    the fallback reply, a failed turn record — and the driver does not crash in a loop."""
    stop_periodic_refresh(service)
    await push_and_promote(service, tmp_path, two_agents("one"))
    without = await push(service, tmp_path, two_agents("three", sales=False))
    await promote_unannounced(service, without)

    key = SessionKey(TENANT, "sales", "jay", Channel.WEB)
    accepted = await service.ingress.accept(NewMessage(key, new_id(), "hello"))
    sid = accepted.session_id
    assert (await session(service, sid)).config_version == without
    assert await turns_of(service, sid) == [TurnPhase.FAILED]
    turn = (await service.store.turns.list_turns(TENANT, sid))[0]
    record = await service.store.turns.get_record(TENANT, turn.turn_id)
    assert record is not None
    assert record.correlation.config_version == f"v{without}"
    assert len(record.replies) == 1  # the fallback reply
    assert await repinned(service, sid) == []
    assert (await session(service, sid)).config_version == without


class Later:
    """The service's clock, ``ahead_ms`` later (a sweep run as if time had passed)."""

    def __init__(self, clock: Any, ahead_ms: int) -> None:
        self._clock, self._ahead_ms = clock, ahead_ms

    def now_ms(self) -> int:
        return int(self._clock.now_ms()) + self._ahead_ms

    def monotonic(self) -> float:
        return float(self._clock.monotonic()) + self._ahead_ms / 1000

    async def sleep(self, seconds: float) -> None:
        await self._clock.sleep(seconds)


async def test_idle_close_decides_by_the_pinned_versions_timeout(
    service: Service, tmp_path: Path
) -> None:
    """Review of issue 21, bug 6: a session pinned to a version whose web sessions close
    after a minute closes after a minute, though the live version keeps them for a day."""
    short = body("short")
    short["tenants"][TENANT]["channels"]["web"]["idle_timeout_s"] = 60
    await push_and_promote(service, tmp_path, short)
    sid, reply = await say(service, "kim")
    assert reply == "short"
    await push_and_promote(service, tmp_path, body("day"))  # idle_timeout_s: acf's 24 h
    assert service.agents.get(TENANT, AGENT).settings.policy_for(Channel.WEB).idle_timeout_s > 60

    closer = service.runtime.idle_closer
    assert closer is not None
    parts = replace(service.runtime.parts, clock=Later(service.clock, 59_000))
    early = IdleCloser(parts, IdleCloseSettings(), closer._wake, closer._busy)
    assert await early.sweep() == 0  # not yet due by its version
    parts = replace(service.runtime.parts, clock=Later(service.clock, 61_000))
    later = IdleCloser(parts, IdleCloseSettings(), closer._wake, closer._busy)
    assert await later.sweep() == 1
    assert (await session(service, sid)).status is SessionStatus.CLOSED
