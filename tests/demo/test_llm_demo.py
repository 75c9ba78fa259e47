"""The demo with an LLM for a brain: `acf serve` with ACF_LLM_BASE_URL runs the demo agent as
`kind: llm` over the commerce tools, through the gateway, against a fake OpenAI server."""

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from acf.config.pipelines import LlmPipelineFields
from acf.demo.llm import brain, llm_demo_config
from acf.entrypoints.cli.serve import demo_config_path
from acf.testing import Answer, FakeOpenAI, FakeToolCall
from acf.testing.fake_openai_script import Item
from tests.http.conftest import free_port
from tests.http.test_serve_process import Served

SECRET = "sk-demo-secret-3f9a7c"


def test_the_key_is_a_reference_to_the_first_variable_set() -> None:
    path = demo_config_path()
    both = {"ACF_LLM_API_KEY": "a", "OPENAI_API_KEY": "b"}
    loaded = llm_demo_config(path, "http://127.0.0.1:11434/v1", None, both)
    pipeline = loaded.config.tenants["demo"].agents["support"].pipeline
    assert isinstance(pipeline, LlmPipelineFields)
    assert pipeline.api_key == "${ACF_LLM_API_KEY}" and pipeline.model == "gpt-4o-mini"
    only_openai = llm_demo_config(path, "http://h/v1", "m", {"OPENAI_API_KEY": "b"})
    fields = only_openai.config.tenants["demo"].agents["support"].pipeline
    assert isinstance(fields, LlmPipelineFields) and fields.api_key == "${OPENAI_API_KEY}"
    keyless = llm_demo_config(path, "http://h/v1", "m", {})
    assert brain(keyless) == "an LLM: m at http://h/v1"


def _respond(request: Any) -> Item:
    """Look the order up first; once the tool's result is in, answer with it."""
    last = request["messages"][-1]
    if last["role"] == "tool":
        status = json.loads(last["content"])["value"]["status"]
        return Answer(f"Your order 1001 is {status}.")
    return Answer("", (FakeToolCall("lookup_order", {"order_id": "1001"}),))


async def test_acf_serve_runs_the_demo_agent_on_an_llm_through_the_gateway(
    tmp_path: Path,
) -> None:
    async with FakeOpenAI(responder=_respond) as fake:
        port = free_port()
        fake_url = fake.base_url
        env = {"ACF_LLM_BASE_URL": fake_url, "ACF_LLM_API_KEY": SECRET}
        served = Served(tmp_path / "data", port, env)
        try:
            await asyncio.to_thread(served.wait_ready)
            key = (tmp_path / "data" / "demo-api-key").read_text().strip()
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {key}"}
            ) as api:
                body = {"agent": "support", "customer": "ana", "client_message_id": "1"}
                r = await api.post("/v1/messages", json={**body, "text": "where is order 1001?"})
                assert r.status_code == 202, r.text
                session = r.json()["session_id"]
                replies: list[str] = []
                for _ in range(600):  # until the reply was sent (a hang fails at the end)
                    detail = (await api.get(f"/v1/sessions/{session}")).json()
                    replies = [x["text"] for x in detail["replies"] if x["status"] != "pending"]
                    if replies:
                        break
                    await asyncio.sleep(0.05)
                ledger = (await api.get("/v1/ledger", params={"session_id": session})).json()
        finally:
            code, out, err = await asyncio.to_thread(served.stop)
    assert replies == ["Your order 1001 is shipped."], served.output()
    assert f"brain:     an LLM: gpt-4o-mini at {fake_url}" in out
    assert code == 0, err
    first, second = fake.completions[:2]
    offered = [t["function"]["name"] for t in first.body["tools"]]
    assert {"lookup_order", "refund_order", "create_ticket"} <= set(offered)
    assert first.headers["authorization"] == f"Bearer {SECRET}"
    assert second.messages[-1]["role"] == "tool"  # the gateway's result went back
    assert [e["tool"] for e in ledger["items"]] == ["lookup_order"]
    assert SECRET not in out + err
