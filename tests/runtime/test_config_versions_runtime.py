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
from acf.ports.session_store import PatchState, SessionRecord
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
