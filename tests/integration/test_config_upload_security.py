"""What an uploaded configuration (``POST /v1/config/validate|versions``) may not do: run
code the operator did not approve, read the server's files, name the server's secrets,
expand YAML aliases, or be a version that cannot be built. Checked on ``FileConfigs``
against a served file with a python pipeline and a secret, then over HTTP; and the
gates and errors of the lifecycle around it (a canary needs the scenarios gate or force,
a bad runtime override is a 422, a push conflict a 409)."""

import asyncio
import copy
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from acf.config.load import ConfigError, load_config
from acf.demo import demo_tools
from acf.domain.errors import Conflict
from acf.entrypoints.http.config_files import FileConfigs, tenant_prefix
from acf.entrypoints.http.config_uploads import MAX_NODES, yaml_nodes
from acf.service.config_lifecycle import Upload
from tests.integration.config_api_server import serve, tenant_yaml

FACTORY = "tests.http.drafting:build"
HI = {"name": "hi", "lane": "info", "match": {"keywords": ["hi"]}, "reply": "Hi"}
RULES = {"fallback": "nope", "rules": [HI]}


def _tool(name: str, header: str) -> dict[str, Any]:
    return {
        "name": name,
        "policy": "pure",
        "http": {"method": "GET", "url": "http://127.0.0.1:9/x", "headers": header_of(header)},
    }


def header_of(value: str) -> dict[str, str]:
    return {"Authorization": value}


def served_body() -> dict[str, Any]:
    """acme: a rules agent, a python agent (the approved factory), a tool with a secret."""
    acme = {
        "tools": [_tool("crm", "Bearer ${ACME_CRM_TOKEN}")],
        "agents": {
            "support": {"pipeline": {"kind": "rules", "rules": RULES}, "tools": ["crm"]},
            "writer": {"pipeline": {"kind": "python", "factory": FACTORY}},
        },
    }
    return {"version": 1, "tenants": {"acme": acme}}


@pytest.fixture
def files(tmp_path: Path) -> FileConfigs:
    path = tmp_path / "served" / "acf.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(served_body()), encoding="utf-8")
    return FileConfigs(load_config(path), demo_tools())


def upload(body: dict[str, Any], **files: str) -> Upload:
    return Upload(yaml.safe_dump(body), dict(files))


def refused(files: FileConfigs, up: Upload) -> str:
    with pytest.raises(ConfigError) as caught:
        files.prepare(up)
    return str(caught.value)


def with_agent(pipeline: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = copy.deepcopy(served_body())
    body["tenants"]["acme"]["agents"]["extra"] = {"pipeline": pipeline, **extra}
    return body


# ---------- 1. python pipelines: only the factories the served file uses ----------


def test_the_served_configuration_uploads_as_is(files: FileConfigs) -> None:
    prepared = files.prepare(upload(served_body()))
    assert set(prepared) == {"acme"} and prepared["acme"].git_commit is None


@pytest.mark.parametrize(
    ("pipeline", "extra", "where"),
    [
        ({"kind": "python", "factory": "subprocess:run"}, {}, "agents.extra.pipeline.factory"),
        (
            {
                "kind": "router",
                "default": "a",
                "routes": {
                    "a": {"kind": "rules", "rules": RULES},
                    "b": {"kind": "python", "factory": "os:system"},
                },
            },
            {},
            "agents.extra.pipeline.routes.b.factory",
        ),
        (  # a scenario step swapping the approved factory for another
            {"kind": "python", "factory": FACTORY},
            {"scenarios": {"s": {"steps": {"x": {"pipeline": {"factory": "subprocess:run"}}}}}},
            "agents.extra.scenarios.s.steps.x.pipeline.factory",
        ),
    ],
)
def test_a_python_factory_the_served_file_does_not_use_is_refused(
    files: FileConfigs, pipeline: dict[str, Any], extra: dict[str, Any], where: str
) -> None:
    started = time.monotonic()
    message = refused(files, upload(with_agent(pipeline, **extra)))
    assert where in message and "python pipelines are code" in message
    assert "changes only in the file acf serves" in message
    assert time.monotonic() - started < 5  # nothing was run


def test_a_base_agent_cannot_bring_a_python_factory(files: FileConfigs) -> None:
    body = with_agent({"kind": "rules", "rules": RULES})
    body["bases"] = {"evil": "evil.yaml"}
    body["tenants"]["acme"]["agents"]["extra"] = {"base": "evil"}
    base = yaml.safe_dump({"pipeline": {"kind": "python", "factory": "subprocess:run"}})
    assert "python pipelines are code" in refused(files, upload(body, **{"evil.yaml": base}))


def test_the_approved_factory_with_other_options_is_accepted(files: FileConfigs) -> None:
    body = with_agent({"kind": "python", "factory": FACTORY, "options": {"every_ms": 5}})
    assert "acme" in files.prepare(upload(body))


# ---------- 2. no file outside the upload is read ----------


@pytest.mark.parametrize("field", ["system_prompt_file", "rules_file"])
@pytest.mark.parametrize("kind", ["absolute", "climbing"])
def test_a_base_file_naming_a_server_file_is_refused_unread(
    files: FileConfigs, tmp_path: Path, field: str, kind: str
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    path = str(secret) if kind == "absolute" else "../../../../../../../../" + str(secret)
    pipeline: dict[str, Any] = {"kind": "rules", field: path}
    if field == "system_prompt_file":
        pipeline = {"kind": "llm", "model": "m", "base_url": "http://127.0.0.1:9/v1", field: path}
    body = with_agent({"kind": "rules", "rules": RULES})
    body["bases"] = {"b": "bases/b.yaml"}
    body["tenants"]["acme"]["agents"]["extra"] = {"base": "b"}
    base = yaml.safe_dump({"pipeline": pipeline})
    message = refused(files, upload(body, **{"bases/b.yaml": base}))
    assert "bases/b.yaml" in message and field in message and path in message
    assert "TOP-SECRET-CONTENT" not in message


# ---------- 3. secret references: the served tenant's, or the tenant's prefix ----------


def test_secret_references_outside_the_tenants_are_refused(files: FileConfigs) -> None:
    body = copy.deepcopy(served_body())
    body["tenants"]["acme"]["tools"].append(_tool("leak", "Bearer ${ACF_DATABASE_URL}"))
    message = refused(files, upload(body))
    assert "${ACF_DATABASE_URL}" in message and "tenants.acme.tools.1.http.headers" in message
    assert "ACF_SECRET_ACME_" in message
    # the served tenant's own secret, and the tenant's prefix, are fine
    body["tenants"]["acme"]["tools"][1] = _tool("ok", "Bearer ${ACF_SECRET_ACME_CRM}")
    body["tenants"]["acme"]["tools"].append(_tool("again", "Bearer ${ACME_CRM_TOKEN}"))
    assert "acme" in files.prepare(upload(body))


def test_a_secret_reference_in_a_base_file_is_checked_too(files: FileConfigs) -> None:
    body = with_agent({"kind": "rules", "rules": RULES})
    body["bases"] = {"b": "b.yaml"}
    body["tenants"]["acme"]["agents"]["extra"] = {"base": "b"}
    llm = {"kind": "llm", "model": "m", "base_url": "http://127.0.0.1:9/v1", "api_key": "${HOME}"}
    message = refused(files, upload(body, **{"b.yaml": yaml.safe_dump({"pipeline": llm})}))
    assert "${HOME}" in message


@pytest.mark.parametrize(
    ("tenant", "prefix"),
    [
        ("acme", "ACF_SECRET_ACME_"),
        ("big-co.eu", "ACF_SECRET_BIG_CO_EU_"),
        ("t1", "ACF_SECRET_T1_"),
    ],
)
def test_tenant_prefix(tenant: str, prefix: str) -> None:
    assert tenant_prefix(tenant) == prefix


# ---------- 4. YAML aliases ----------

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9)
)


def test_yaml_aliases_are_refused_fast(files: FileConfigs) -> None:
    assert len(BOMB) < 1000
    started = time.monotonic()
    assert "YAML aliases are not accepted" in refused(files, Upload(BOMB))
    base_body = with_agent({"kind": "rules", "rules": RULES})
    base_body["bases"] = {"b": "b.yaml"}
    message = refused(files, upload(base_body, **{"b.yaml": BOMB}))
    assert "b.yaml" in message and "YAML aliases are not accepted" in message
    assert time.monotonic() - started < 2


def test_too_many_nodes_are_refused(files: FileConfigs) -> None:
    big = "k: [" + ", ".join(["1"] * (MAX_NODES + 10)) + "]\n"
    assert yaml_nodes(big, "x") > MAX_NODES
    assert "YAML nodes" in refused(files, Upload(big))


# ---------- 5. a version that cannot be built is refused ----------


@pytest.mark.parametrize(
    ("agent", "named"),
    [
        ({"pipeline": {"kind": "rules", "rules": RULES}, "tools": ["no_such"]}, "no_such"),
        ({"pipeline": {"kind": "python", "factory": FACTORY, "options": {"nope": 1}}}, "nope"),
    ],
)
def test_a_version_that_does_not_build_is_refused(
    files: FileConfigs, agent: dict[str, Any], named: str
) -> None:
    body = copy.deepcopy(served_body())
    if "tools" in agent:
        body["tenants"]["acme"]["tools"].append({"name": "no_such", "builtin": "commerce"})
    body["tenants"]["acme"]["agents"]["extra"] = agent
    message = refused(files, upload(body))
    assert "cannot be built" in message and named in message
    assert message.startswith("acf.yaml: tenants.acme.")
    assert "acf-upload-" not in message


# ---------- over HTTP ----------


async def test_over_http_uploads_are_refused_with_422(tmp_path: Path) -> None:
    async with serve("sqlite", tmp_path) as served, served.client() as admin:
        text = tenant_yaml().replace("kind: rules", "kind: python\n          factory: os:system", 1)
        text = text.replace("          rules:", "          options:", 1)
        answer = await admin.post("/v1/config/validate", json={"yaml": text})
        assert answer.status_code == 200 and answer.json()["valid"] is False
        assert "python pipelines are code" in answer.text
        for path in ("/v1/config/versions", "/v1/config/validate"):
            bomb = await admin.post(path, json={"yaml": BOMB})
            assert "YAML aliases are not accepted" in bomb.text
        bomb = await admin.post("/v1/config/versions", json={"yaml": BOMB})
        assert bomb.status_code == 422
        assert len(await served.service.store.config_versions.history("acme")) == 1


async def test_a_canary_needs_the_scenarios_gate_or_force(tmp_path: Path) -> None:
    async with serve("sqlite", tmp_path) as served, served.client() as admin:
        pushed = await admin.post("/v1/config/versions", json={"yaml": tenant_yaml(deadline_ms=7)})
        number = pushed.json()["number"]
        gated = await admin.post(f"/v1/config/versions/{number}/canary", json={"share": 10})
        assert gated.status_code == 409, gated.text
        assert "no passed scenarios gate" in gated.json()["message"]
        assert f"acf scenarios run PATH --tenant acme --version {number}" in gated.text
        forced = await admin.post(
            f"/v1/config/versions/{number}/canary", json={"share": 10, "force": True}
        )
        assert forced.status_code == 200 and forced.json()["canary"] == number
        moved = await admin.post(f"/v1/config/versions/{number}/canary", json={"share": 30})
        assert moved.status_code == 200 and moved.json()["canary_share"] == 30  # no gate
        async with asyncio.timeout(10):
            while True:
                found = await admin.get("/v1/events", params={"kind": "config.canary_started"})
                items = found.json()["items"]
                if items:
                    break
                await asyncio.sleep(0.1)
        assert items[0]["data"]["forced"] is True and items[0]["data"]["actor"].startswith("key ")


async def test_an_override_setting_inside_a_value_is_a_422(tmp_path: Path) -> None:
    async with serve("sqlite", tmp_path) as served, served.client("acme", "api") as api:
        posted = await api.post(
            "/v1/messages",
            json={"agent": "support", "customer": "c", "client_message_id": "m", "text": "hi"},
        )
        session = posted.json()["session_id"]
        for overrides in (
            {"settings.deadline_ms": 5, "settings.deadline_ms.x": 1},
            {"settings.deadline_ms.x": 1, "settings.deadline_ms": 5},
        ):
            answer = await api.put(
                f"/v1/sessions/{session}/config-overrides", json={"overrides": overrides}
            )
            assert answer.status_code == 422, answer.text
            assert "settings.deadline_ms.x" in answer.json()["message"]


async def test_a_push_that_keeps_conflicting_is_a_409(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve("sqlite", tmp_path) as served, served.client() as admin:
        uow = served.service.store.uow

        async def conflicting(*args: Any, **kwargs: Any) -> Any:
            raise Conflict("concurrent pushes kept taking the next version number; push again")

        monkeypatch.setattr(uow, "commit", conflicting)
        answer = await admin.post("/v1/config/versions", json={"yaml": tenant_yaml(deadline_ms=8)})
        assert answer.status_code == 409 and "push again" in answer.json()["message"]


def test_an_upload_has_no_git_commit_even_in_a_work_tree(
    files: FileConfigs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(
            ["git", "-c", "user.email=a@b", "-c", "user.name=a", "-C", str(tree), *args],
            check=True,
        )
    monkeypatch.setattr("tempfile.tempdir", str(tree))
    assert files.prepare(upload(served_body()))["acme"].git_commit is None
