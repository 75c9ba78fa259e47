"""The configuration lifecycle over HTTP (``/v1/config``, DESIGN §17), on SQLite and
PostgreSQL: push → history → diff → promote (gated; forced and audited) → canary →
rollback → explain; admin scope; tenants isolated on every route; invalid uploads named
field by field; a session's runtime overrides checked against what its agent allows."""

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from acf.ports.config_versions import RecordGate
from tests.integration.config_api_server import Served, serve, served_config, tenant_yaml

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


async def push(client: httpx.AsyncClient, text: str, message: str = "", **extra: Any) -> Any:
    pushed = await client.post(
        "/v1/config/versions", json={"yaml": text, "message": message, **extra}
    )
    assert pushed.status_code in (200, 201), pushed.text
    return pushed.json()


async def passed_gate(served: Served, tenant: str, number: int) -> None:
    """What ``acf scenarios run --tenant T --version N`` records when the suite passes."""
    op = RecordGate(tenant, number, "scenarios", True, {"passed": 3}, served.service.clock.now_ms())
    await served.service.store.uow.commit(tenant, [op])


async def events(client: httpx.AsyncClient, kind: str, count: int) -> list[dict[str, Any]]:
    """The tenant's ``count`` events of ``kind`` (read in commit order: on PostgreSQL an
    event shows once no older transaction can still commit, a moment after its own)."""
    async with asyncio.timeout(10):
        while True:
            answer = await client.get("/v1/events", params={"kind": kind})
            assert answer.status_code == 200, answer.text
            items: list[dict[str, Any]] = answer.json()["items"]
            if len(items) >= count:
                return items
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_push_history_diff_promote_canary_rollback(backend: str, tmp_path: Path) -> None:
    async with serve(backend, tmp_path) as served, served.client() as admin:
        listed = (await admin.get("/v1/config/versions")).json()
        assert [v["label"] for v in listed["items"]] == ["v1"]  # acf serve pushed the file
        assert listed["live"] == 1 and listed["items"][0]["author"] == "acf serve"

        v2 = await push(admin, tenant_yaml(deadline_ms=9000), "longer deadline", author="ana")
        assert (v2["label"], v2["status"], v2["created"], v2["author"]) == (
            "v2",
            "draft",
            True,
            "ana",
        )
        again = await admin.post(
            "/v1/config/versions", json={"yaml": tenant_yaml(deadline_ms=9000)}
        )
        assert again.status_code == 200 and again.json()["label"] == "v2"
        assert again.json()["created"] is False

        history = (await admin.get("/v1/config/versions")).json()["items"]
        assert [(v["label"], v["status"]) for v in history] == [("v2", "draft"), ("v1", "live")]
        detail = (await admin.get("/v1/config/versions/2")).json()
        assert detail["message"] == "longer deadline" and detail["source"]["tenant"] == "acme"
        assert detail["resolved"]["agents"]["support"]["settings"]["deadline_ms"] == 9000

        diff = (await admin.get("/v1/config/diff", params={"a": 1, "b": 2})).json()
        key = "agents.support.settings.deadline_ms"
        assert [(r["key"], r["change"], r["after"]) for r in diff["rows"]] == [
            (key, "changed", 9000)
        ]
        assert (await admin.get("/v1/config/diff", params={"a": 2, "b": 2})).json()["rows"] == []

        # promote is gated by the scenarios suite; forced, it says so in its event
        refused = await admin.post("/v1/config/versions/2/promote", json={})
        assert refused.status_code == 409, refused.text
        assert "no passed scenarios gate" in refused.json()["message"]
        assert "acf scenarios run PATH --tenant acme --version 2" in refused.json()["message"]
        await passed_gate(served, "acme", 2)
        promoted = await admin.post("/v1/config/versions/2/promote")
        assert promoted.status_code == 200, promoted.text
        assert (promoted.json()["live"], promoted.json()["previous_live"]) == (2, 1)
        v3 = await push(admin, tenant_yaml(deadline_ms=7000), "shorter")
        forced = await admin.post("/v1/config/versions/3/promote", json={"force": True})
        assert forced.status_code == 200 and forced.json()["live"] == 3
        audit = await events(admin, "config.promoted", 3)
        by_version = {e["data"]["version"]: e["data"] for e in audit}
        assert by_version["v2"]["forced"] is False and by_version["v3"]["forced"] is True
        assert by_version["v3"]["actor"].startswith("key ")

        # canary: start, move its share, status, stop
        v4 = await push(admin, tenant_yaml(deadline_ms=6000), "canary candidate")
        gated = await admin.post(f"/v1/config/versions/{v4['number']}/canary", json={"share": 10})
        assert gated.status_code == 409 and "no passed scenarios gate" in gated.text
        await passed_gate(served, "acme", 4)
        started = await admin.post(f"/v1/config/versions/{v4['number']}/canary", json={"share": 10})
        assert started.status_code == 200, started.text
        assert (started.json()["canary"], started.json()["canary_share"]) == (4, 10)
        moved = await admin.post("/v1/config/versions/4/canary", json={"share": 25})
        assert moved.json()["canary_share"] == 25
        second = await admin.post("/v1/config/versions/2/canary", json={"share": 10})
        assert second.status_code == 409 and "already on canary" in second.json()["message"]
        status = (await admin.get("/v1/config/canary")).json()
        assert (status["live"], status["canary"], status["canary_share"]) == (3, 4, 25)
        assert set(status["arms"]) == {"live", "canary"}
        assert status["arms"]["canary"]["turns"] == 0
        kinds = [e["kind"] for e in status["decisions"]]
        assert kinds[:2] == ["config.canary_advanced", "config.canary_started"]
        stopped = await admin.post("/v1/config/rollback", json={"canary": True, "reason": "test"})
        assert stopped.status_code == 200 and stopped.json()["canary"] is None
        status = (await admin.get("/v1/config/canary")).json()
        last = status["last_rollback"]
        assert (last["version"], last["reason"], last["automatic"]) == ("v4", "test", False)
        assert status["arms"] == {}

        # rollback: back to the previous live version, the one left marked rolled back
        back = await admin.post("/v1/config/rollback", json={})
        assert back.status_code == 200 and back.json()["live"] == 2
        listed = (await admin.get("/v1/config/versions")).json()
        statuses = {v["label"]: (v["status"], v["rolled_back"]) for v in listed["items"]}
        assert statuses["v3"] == ("retired", True) and statuses["v2"] == ("live", False)
        assert statuses["v4"] == ("retired", True)
        nothing = await admin.post("/v1/config/rollback", json={})
        assert nothing.status_code == 409 and "no previous live" in nothing.json()["message"]
        assert v3["number"] == 3

        # explain: the live version's values with their layer and file
        explained = await admin.get(
            "/v1/config/explain", params={"agent": "support", "key": "settings.deadline_ms"}
        )
        assert explained.status_code == 200, explained.text
        body = explained.json()
        assert (body["tenant"], body["version"]) == ("acme", "v2")
        (row,) = body["rows"]
        assert (row["key"], row["value"], row["layer"]) == ("settings.deadline_ms", 9000, "agent")
        assert "acf.yaml" in row["source"]
        older = await admin.get(
            "/v1/config/explain",
            params={"agent": "support", "key": "settings.deadline_ms", "version": 1},
        )
        assert older.json()["version"] == "v1" and older.json()["rows"][0]["layer"] == "default"
        missing = await admin.get("/v1/config/explain", params={"agent": "nobody"})
        assert missing.status_code == 404 and "no agent 'nobody'" in missing.json()["message"]


async def test_an_api_key_is_refused_on_every_config_route(tmp_path: Path) -> None:
    async with serve("sqlite", tmp_path) as served, served.client(scope="api") as api:
        text = tenant_yaml()
        calls = [
            ("POST", "/v1/config/validate", {"yaml": text}),
            ("GET", "/v1/config/versions", None),
            ("POST", "/v1/config/versions", {"yaml": text}),
            ("GET", "/v1/config/versions/1", None),
            ("GET", "/v1/config/diff?a=1&b=1", None),
            ("POST", "/v1/config/versions/1/promote", {"force": True}),
            ("POST", "/v1/config/versions/1/canary", {"share": 10}),
            ("POST", "/v1/config/rollback", {}),
            ("GET", "/v1/config/canary", None),
            ("GET", "/v1/config/explain?agent=support", None),
        ]
        for method, path, body in calls:
            answer = await api.request(method, path, json=body)
            assert answer.status_code == 403, (path, answer.text)
            assert answer.json()["error"] == "forbidden"
            assert "scope 'admin'" in answer.json()["message"]
            assert "--scope admin" in answer.json()["message"]
        async with httpx.AsyncClient(base_url=served.base_url) as nobody:
            assert (await nobody.get("/v1/config/versions")).status_code == 401
        assert len(await served.service.store.config_versions.history("acme")) == 1


async def test_one_tenant_can_neither_see_nor_change_another_tenants_versions(
    tmp_path: Path,
) -> None:
    async with (
        serve("sqlite", tmp_path) as served,
        served.client("acme") as acme,
        served.client("globex") as globex,
    ):
        for n in (2, 3):
            await push(acme, tenant_yaml(deadline_ms=1000 * n), f"acme {n}")
        await passed_gate(served, "acme", 2)
        # acme has v1..v3, globex only v1: acme's numbers are unknown to globex
        probes = [
            ("GET", "/v1/config/versions/2", None),
            ("GET", "/v1/config/diff?a=1&b=2", None),
            ("POST", "/v1/config/versions/2/promote", {"force": True}),
            ("POST", "/v1/config/versions/3/canary", {"share": 50}),
            ("GET", "/v1/config/explain?agent=support&version=3", None),
        ]
        for method, path, body in probes:
            answer = await globex.request(method, path, json=body)
            assert answer.status_code == 404, (path, answer.text)
            assert "acme" not in answer.text
        listed = (await globex.get("/v1/config/versions")).json()
        assert [v["label"] for v in listed["items"]] == ["v1"]
        assert all("acme" not in v["message"] for v in listed["items"])
        # globex cannot push (nor validate) a configuration naming acme
        for path in ("/v1/config/versions", "/v1/config/validate"):
            answer = await globex.post(path, json={"yaml": tenant_yaml("acme")})
            assert answer.status_code == 403, answer.text
            assert "may push only tenant 'globex'" in answer.json()["message"]
        both = yaml.safe_dump(served_config())  # acme and globex
        answer = await globex.post("/v1/config/versions", json={"yaml": both})
        assert answer.status_code == 403 and "'acme'" in answer.json()["message"]
        # globex's rollback and status leave acme's pointer alone
        assert (await globex.post("/v1/config/rollback", json={})).status_code == 409
        assert (await globex.get("/v1/config/canary")).json()["canary"] is None
        acme_versions = await served.service.store.config_versions.history("acme")
        assert [v.number for v in acme_versions] == [3, 2, 1]
        assert (await acme.get("/v1/config/versions/2")).status_code == 200
        assert len(await served.service.store.config_versions.history("globex")) == 1
        # a session of acme is not globex's to override
        session = await _session(served)
        put = await globex.put(
            f"/v1/sessions/{session}/config-overrides",
            json={"overrides": {"settings.deadline_ms": 5000}},
        )
        assert put.status_code == 404


async def _session(served: Served) -> str:
    async with served.client("acme", "api") as api:
        posted = await api.post(
            "/v1/messages",
            json={
                "agent": "support",
                "customer": "ana",
                "client_message_id": "m1",
                "text": "hello",
            },
        )
        assert posted.status_code == 202, posted.text
        return str(posted.json()["session_id"])


async def test_invalid_uploads_name_the_field(tmp_path: Path) -> None:
    async with serve("sqlite", tmp_path) as served, served.client() as admin:
        bad = await admin.post("/v1/config/versions", json={"yaml": tenant_yaml(deadline_ms=-5)})
        assert bad.status_code == 422, bad.text
        body = bad.json()
        assert body["error"] == "invalid_config"
        fields = [p["field"] for p in body["problems"]]
        assert "tenants.acme.agents.support.settings.deadline_ms" in fields
        assert "/tmp" not in bad.text  # never the server's temporary folder

        broken = await admin.post("/v1/config/versions", json={"yaml": "tenants: [oops"})
        assert broken.status_code == 422 and "invalid YAML" in broken.json()["message"]

        validated = await admin.post(
            "/v1/config/validate", json={"yaml": tenant_yaml(deadline_ms=-5)}
        )
        assert validated.status_code == 200 and validated.json()["valid"] is False
        assert "deadline_ms" in validated.json()["problems"][0]["field"]
        fine = (await admin.post("/v1/config/validate", json={"yaml": tenant_yaml()})).json()
        assert fine["valid"] is True and fine["agents"] == ["support"]
        assert fine["content_hash"].startswith("sha256:")

        # nothing outside the upload is read, and no code is uploaded
        outside = tenant_yaml().replace(
            "kind: rules", "kind: rules\n          rules_file: /etc/passwd", 1
        )
        cases = [
            ({"yaml": outside}, "rules_file"),
            ({"yaml": tenant_yaml(), "files": {"../escape.yaml": "x"}}, "../escape.yaml"),
            ({"yaml": tenant_yaml(), "files": {"evil/agent.py": "import os"}}, "code is not"),
        ]
        for upload, named in cases:
            answer = await admin.post("/v1/config/versions", json=upload)
            assert answer.status_code == 422, answer.text
            assert named in answer.text
            assert "root:" not in answer.text
        assert len(await served.service.store.config_versions.history("acme")) == 1


async def test_a_pushed_configuration_carries_the_files_it_names(tmp_path: Path) -> None:
    async with serve("sqlite", tmp_path) as served, served.client() as admin:
        text = tenant_yaml()
        inline = "kind: rules\n          rules:"
        assert inline in text
        rules_text = (
            "fallback: nope\nrules:\n- name: hi\n  lane: info\n  match: {keywords: [hi]}\n"
            "  reply: Hi from a file\n"
        )
        body = text.split(inline)[0] + "kind: rules\n          rules_file: rules/support.yaml\n"
        tail = text.split(inline)[1].split("\n")
        rest = "\n".join(line for line in tail if not line.startswith("            ") and line)
        with_file = body + rest + "\n"
        missing = await admin.post("/v1/config/versions", json={"yaml": with_file})
        assert missing.status_code == 422 and "rules/support.yaml" in missing.text
        pushed = await push(admin, with_file, files={"rules/support.yaml": rules_text})
        stored = await served.service.store.config_versions.get("acme", pushed["number"])
        assert stored is not None
        assert stored.source["files"] == {"rules/support.yaml": rules_text}


async def test_session_overrides_are_checked_against_the_agent(tmp_path: Path) -> None:
    async with serve("sqlite", tmp_path) as served, served.client("acme", "api") as api:
        session = await _session(served)
        path = f"/v1/sessions/{session}/config-overrides"
        refused = await api.put(path, json={"overrides": {"settings.max_attempts": 9}})
        assert refused.status_code == 422, refused.text
        assert "settings.max_attempts" in refused.json()["message"]
        assert "not overridable" in refused.json()["message"]
        invalid = await api.put(path, json={"overrides": {"settings.deadline_ms": -1}})
        assert invalid.status_code == 422 and "deadline_ms" in invalid.text

        done = await api.put(path, json={"overrides": {"settings.deadline_ms": 5000}})
        assert done.status_code == 200, done.text
        assert done.json()["overrides"] == {"settings.deadline_ms": 5000}
        state = (await api.get(f"/v1/sessions/{session}")).json()["state"]
        assert state["config_overrides"] == {"settings.deadline_ms": 5000}

        replaced = await api.put(path, json={"overrides": {"settings.fallback_text": "Later."}})
        assert replaced.json()["overrides"] == {"settings.fallback_text": "Later."}
        cleared = await api.put(path, json={"overrides": {}})
        assert cleared.status_code == 200 and cleared.json()["overrides"] == {}
        unknown = await api.put("/v1/sessions/nope/config-overrides", json={"overrides": {}})
        assert unknown.status_code == 404
