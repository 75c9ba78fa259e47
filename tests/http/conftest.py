"""The HTTP API over real HTTP: the service on a SQLite file in a temporary folder, served by
uvicorn on a free loopback port, two tenants with a key each."""

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml
from opentelemetry.trace import TracerProvider

from acf.bootstrap import Service, open_service, read_settings
from acf.config.load import load_config
from acf.demo import demo_tools
from acf.entrypoints.http.app import create_app
from acf.entrypoints.http.context import ApiSettings
from acf.ports.api_keys import new_api_key

PEOPLE_PATHS = (
    "^/v1/(inbox|blocks|holds|abuse/)"
    "|^/v1/sessions/[^/]+/(handoff|claim|operator-messages|notes|release|resume)$"
)
"""The people-in-the-loop routes (an operator key's): fuzzed by test_people_fuzz.py."""


def rules(tenant: str) -> dict[str, object]:
    return {
        "fallback": f"{tenant} did not understand",
        "rules": [
            {
                "name": "hello",
                "lane": "info",
                "match": {"keywords": ["hello"]},
                "reply": f"Hi from {tenant}",
            },
            {
                "name": "slow",
                "lane": "info",
                "match": {"keywords": ["slow"]},
                "latency_ms": 1500,
                "reply": "slow answer",
            },
            {
                "name": "status",
                "lane": "commerce",
                "match": {"regex": r"order (?P<order_id>\d{4})"},
                "call": {"tool": "lookup_order", "args": {"order_id": "{order_id}"}},
                "reply": "Order {order_id} is {result.status}.",
            },
        ],
    }


def config(rate: str = "50/second") -> dict[str, object]:
    tenants = {}
    for tenant in ("acme", "globex"):
        tenants[tenant] = {
            "limits": {"accepted_messages": rate},
            "channels": {
                "web": {
                    "mode": "adaptive",
                    "window_ms": 300,
                    "min_window_ms": 100,
                    "max_window_ms": 1000,
                }
            },
            "tools": [{"name": "lookup_order", "builtin": "commerce"}],
            "agents": {
                "support": {
                    "pipeline": {"kind": "rules", "rules": rules(tenant)},
                    "tools": ["lookup_order"],
                }
            },
        }
    return {"version": 1, "tenants": tenants}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Api:
    service: Service
    base_url: str
    keys: dict[str, str]

    def client(self, tenant: str | None = "acme") -> httpx.AsyncClient:
        headers = {} if tenant is None else {"Authorization": f"Bearer {self.keys[tenant]}"}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=10.0)


async def serve_api(
    tmp_path: Path,
    body: dict[str, object],
    settings: ApiSettings,
    tracing: TracerProvider | None = None,
) -> AsyncIterator[Api]:
    path = tmp_path / "acf.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    process = read_settings({"data_dir": tmp_path / "data"}, environ={})
    service = await open_service(
        load_config(path), process, builtin_tools=demo_tools(), tracing=tracing
    )
    await service.start()
    keys = {}
    for tenant in ("acme", "globex"):
        keys[tenant] = new_api_key()
        await service.api_keys.create(tenant, "test", keys[tenant], service.clock.now_ms())
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(service, settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield Api(service, f"http://127.0.0.1:{port}", keys)
    finally:
        server.should_exit = True
        server.force_exit = True
        await task
        await service.close()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async for served in serve_api(tmp_path, config(), ApiSettings(heartbeat_s=0.3, poll_s=0.2)):
        yield served


async def settled(client: httpx.AsyncClient, session_id: str, timeout_s: float = 10.0) -> dict:
    """The session once every message is consumed and every reply delivered."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        body = (await client.get(f"/v1/sessions/{session_id}")).json()
        done = body["consumed_seq"] == body["last_seq"] and all(
            r["status"] != "pending" for r in body["replies"]
        )
        if done:
            return dict(body)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"session did not settle: {body}")
        await asyncio.sleep(0.05)
