"""docs/agents.md cannot rot: its LLM configuration and the Python example of
examples/python-agent are served by `acf serve` as a new user would, against a fake
OpenAI server (the guide's base_url replaced by the fake's), and answer through the
gateway."""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from acf.testing import Answer, FakeOpenAI, FakeToolCall
from acf.testing.fake_openai_script import Item
from tests.docs.test_yaml_snippets import ROOT, snippets
from tests.http.conftest import free_port
from tests.http.test_serve_process import Served

GUIDE = ROOT / "docs" / "agents.md"
EXAMPLE = ROOT / "examples" / "python-agent"
ACF = [sys.executable, "-c", "from acf.entrypoints.cli import main; main()"]


def _llm_config() -> dict[str, Any]:
    """The guide's first whole configuration with a `kind: llm` agent."""
    for snippet in snippets(GUIDE):
        body = yaml.safe_load(snippet.text)
        if "version" in body and "kind: llm" in snippet.text:
            return dict(body)
    raise AssertionError("docs/agents.md shows no whole configuration of an LLM agent")


def _respond(request: Any) -> Item:
    """Look order 1001 up, then answer with what the tool said."""
    last = request["messages"][-1]
    if last["role"] == "tool":
        status = json.loads(last["content"])["value"]["status"]
        return Answer(f"Order 1001 is {status}.")
    return Answer("", (FakeToolCall("lookup_order", {"order_id": "1001"}),))


async def _ask(config: Path, data: Path, tenant: str, agent: str, env: dict[str, str]) -> str:
    """Make a key, serve ``config``, ask about order 1001; the reply's text."""
    made = await asyncio.to_thread(
        subprocess.run,
        [*ACF, "keys", "create", "--tenant", tenant, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=True,
        env={**env, "ACF_CONFIG": str(config)},
    )
    key = re.search(r"acf_\S+", made.stdout)
    assert key is not None, made.stdout
    port = free_port()
    served = Served(data, port, {**env, "ACF_CONFIG": str(config)})
    try:
        await asyncio.to_thread(served.wait_ready)
        headers = {"Authorization": f"Bearer {key.group(0)}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as api:
            body = {"agent": agent, "customer": "ana", "client_message_id": "1"}
            r = await api.post("/v1/messages", json={**body, "text": "where is order 1001?"})
            assert r.status_code == 202, r.text
            session = r.json()["session_id"]
            for _ in range(600):  # a hang fails below
                detail = (await api.get(f"/v1/sessions/{session}")).json()
                sent = [x["text"] for x in detail["replies"] if x["status"] != "pending"]
                if sent:
                    return str(sent[0])
                await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(served.stop)
    raise AssertionError(f"no reply:\n{served.output()}")


async def test_the_guides_llm_configuration_runs_as_written(tmp_path: Path) -> None:
    body = _llm_config()
    async with FakeOpenAI(responder=_respond) as fake:
        for agent in body["tenants"]["shop"]["agents"].values():
            agent["pipeline"]["base_url"] = fake.base_url
        config = tmp_path / "acf.yaml"
        config.write_text(yaml.safe_dump(body), "utf-8")
        env = {"OPENAI_API_KEY": "sk-guide-test"}

        reply = await _ask(config, tmp_path / "data", "shop", "support", {**os.environ, **env})
        first = fake.completions[0]
    assert reply == "Order 1001 is shipped."
    assert first.headers["authorization"] == "Bearer sk-guide-test"
    assert first.model == "gpt-4o-mini"
    assert first.body["temperature"] == 0.2 and first.body["max_tokens"] == 600


async def test_the_python_example_serves_beside_its_configuration(tmp_path: Path) -> None:
    folder = tmp_path / "python-agent"
    shutil.copytree(EXAMPLE, folder)
    config = folder / "acf.yaml"
    body = yaml.safe_load(config.read_text("utf-8"))
    async with FakeOpenAI(responder=_respond) as fake:
        body["tenants"]["shop"]["agents"]["desk"]["pipeline"]["options"]["base_url"] = fake.base_url
        config.write_text(yaml.safe_dump(body), "utf-8")

        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        reply = await _ask(config, tmp_path / "data", "shop", "desk", env)
        models = [request.model for request in fake.completions]
    assert reply == "Order 1001 is shipped."
    assert models == ["llama3.1", "llama3.1"]  # the tool call, then the answer
