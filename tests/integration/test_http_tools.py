"""HTTP tools against a real backend on loopback that counts calls per Idempotency-Key.

End to end: the embedded runtime on the system clock, a real SQLite file, a pipeline that
calls the tool through the gateway, and the backend's own record of what it received.
"""

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from acf.adapters.memory.clock import SystemClock
from acf.adapters.memory.wakeup import InProcessWakeUps
from acf.adapters.sqlite.store import open_sqlite_store
from acf.adapters.tools import declared
from acf.adapters.tools.http import HttpToolConfig, ToolRefused, http_tool
from acf.config.secrets import resolve_secrets
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.messages import NewMessage
from acf.domain.replies import PipelineResult
from acf.domain.session_key import SessionKey
from acf.domain.tools import SideEffectPolicy, ToolSpec
from acf.ports.agent_binding import AgentBinding
from acf.ports.pipeline import TurnContext
from acf.ports.tool_backend import OutcomeUnknown, ToolCall
from acf.ports.tool_registry import ToolRegistry
from acf.service.agents import Agents
from acf.service.ingress import Ingress
from acf.service.runtime import Runtime
from acf.testing.channel import RecordingChannel


class Backend:
    """Answers from a script of status codes per path; records every call."""

    def __init__(self) -> None:
        self.script: dict[str, list[int]] = {}
        self.calls: Counter[str] = Counter()
        self.headers: list[dict[str, str]] = []
        self.bodies: list[Any] = []


@pytest.fixture
def backend() -> Iterator[tuple[Backend, str]]:
    state = Backend()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            state.bodies.append(json.loads(self.rfile.read(length) or b"null"))
            state.headers.append(dict(self.headers))
            state.calls[f"{self.path} {self.headers.get('Idempotency-Key')}"] += 1
            codes = state.script.get(self.path, [200])
            code = codes.pop(0) if len(codes) > 1 else codes[0]
            body = json.dumps({"ok": code < 300, "path": self.path}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_the_request_carries_the_key_and_resolved_secrets(
    backend: tuple[Backend, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, base = backend
    monkeypatch.setenv("PAYMENTS_TOKEN", "s3cret")
    spec = ToolSpec("refund", SideEffectPolicy.IRREVERSIBLE, business_key="{order}")
    config = HttpToolConfig(
        "post", base + "/orders/{order}/refund", {"Authorization": "Bearer ${PAYMENTS_TOKEN}"}
    )
    async with httpx.AsyncClient() as client:
        tool = http_tool(spec, config, client)
        result = await tool.handler(ToolCall({"order": 7}, "t1:refund:7", "x1", 1))
        assert result == {"ok": True, "path": "/orders/7/refund"}
        assert state.headers[0]["Idempotency-Key"] == "t1:refund:7"
        assert state.headers[0]["Authorization"] == "Bearer s3cret"
        assert state.bodies[0] == {"order": 7}
        state.script["/orders/8/refund"] = [422]
        with pytest.raises(ToolRefused, match="HTTP 422"):
            await tool.handler(ToolCall({"order": 8}, "k8", "x2", 1))
        state.script["/orders/9/refund"] = [503]
        with pytest.raises(OutcomeUnknown, match="HTTP 503"):
            await tool.handler(ToolCall({"order": 9}, "k9", "x3", 1))
        dead = http_tool(spec, HttpToolConfig("post", "http://127.0.0.1:9/x"), client)
        with pytest.raises(OutcomeUnknown):
            await dead.handler(ToolCall({"order": 1}, "k1", "x4", 1))


def test_a_missing_secret_and_a_bad_config_are_named() -> None:
    with pytest.raises(InvalidValue, match="secret NOPE is not set"):
        resolve_secrets("Bearer ${NOPE}", {})
    with pytest.raises(InvalidValue, match="method"):
        HttpToolConfig("FETCH", "http://x")
    with pytest.raises(InvalidValue, match="url"):
        HttpToolConfig("POST", "ftp://x")


class CallsTools:
    name, version = "calls-tools", "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        outcomes = []
        for tool in ("notify", "refund"):
            result = await ctx.tools.call(tool, {"order": 5})
            outcomes.append(result.outcome.value)
        return PipelineResult.reply(",".join(outcomes))


async def test_through_the_runtime_idempotent_retries_keep_the_key_irreversible_is_in_doubt(
    backend: tuple[Backend, str], tmp_path: Path
) -> None:
    state, base = backend
    state.script["/notify"] = [503, 200]  # fails once, then succeeds: same key both times
    state.script["/refund"] = [503]  # unknown outcome: never re-run
    clock = SystemClock()
    store = await open_sqlite_store(tmp_path / "acf.db", clock)
    channel = RecordingChannel(clock)
    async with httpx.AsyncClient() as client:
        tools = ToolRegistry(
            [
                http_tool(
                    ToolSpec("notify", SideEffectPolicy.IDEMPOTENT, business_key="{order}"),
                    HttpToolConfig("POST", base + "/notify"),
                    client,
                ),
                http_tool(
                    ToolSpec("refund", SideEffectPolicy.IRREVERSIBLE, business_key="{order}"),
                    HttpToolConfig("POST", base + "/refund"),
                    client,
                ),
            ]
        )
        binding = AgentBinding(CallsTools(), AgentSettings(), tools)
        agents = Agents({"t1": {"a1": binding}})
        wakeups = InProcessWakeUps()
        runtime = Runtime(store, clock, agents, wakeups, channel)
        await runtime.start()
        try:
            key = SessionKey("t1", "a1", "alice", Channel.EMAIL)
            await Ingress(agents, store.uow, wakeups, clock).accept(
                NewMessage(key, "m1", text="notify me and refund order 5")
            )
            for _ in range(200):
                if channel.replies_for("alice"):
                    break
                await asyncio.sleep(0.05)
        finally:
            await runtime.stop()
            await store.close()
    assert channel.replies_for("alice") == ["ok,in_doubt"]
    assert state.calls == Counter(
        {"/notify t1:notify:5:group:" + _group(state): 2, "/refund t1:refund:5": 1}
    )


def _group(state: Backend) -> str:
    key = next(h["Idempotency-Key"] for h in state.headers if "notify" in h["Idempotency-Key"])
    return key.rsplit(":", 1)[1]


DECLARED = """
tools:
  - name: refund
    policy: irreversible
    business_key: "order-{order}"
    args_schema: {type: object, required: [order], properties: {order: {type: integer}}}
    http:
      method: post
      url: BASE/orders/{order}/refund
      headers: {Authorization: "Bearer ${PAYMENTS_TOKEN}"}
"""


async def test_tools_declared_in_yaml_call_the_backend(
    backend: tuple[Backend, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, base = backend
    monkeypatch.setenv("PAYMENTS_TOKEN", "tok")
    path = tmp_path / "tools.yaml"
    path.write_text(DECLARED.replace("BASE", base))
    declarations = declared.load(path)
    async with httpx.AsyncClient() as client:
        (tool,) = declared.build(declarations, client)
        assert tool.spec.policy is SideEffectPolicy.IRREVERSIBLE
        await tool.handler(ToolCall({"order": 4}, "t1:refund:order-4", "x", 1))
    assert state.headers[-1]["Authorization"] == "Bearer tok"
    assert state.headers[-1]["Idempotency-Key"] == "t1:refund:order-4"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("policy: irreversible", "policy: sometimes"), "tools.0.policy"),
        (("method: post", "method: fetch"), "tools.0.http.method"),
        (("Bearer ${PAYMENTS_TOKEN}", "Bearer abc123"), "must reference a secret"),
        (("    http:", "    colour: red\n    http:"), "tools.0.colour"),
        (("policy: irreversible", "policy: compensatable"), "needs a compensation"),
        (("tools:", "tools: ["), "tools.yaml"),
    ],
)
def test_bad_declarations_name_the_file_and_field(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "tools.yaml"
    path.write_text(DECLARED.replace("BASE", "http://x").replace(*change))
    with pytest.raises(InvalidValue, match=message) as info:
        declared.load(path)
    assert str(path) in str(info.value)
