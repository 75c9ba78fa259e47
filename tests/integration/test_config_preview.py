"""``acf config preview`` and ``acf scenarios run --tenant --version`` (issue #21).

Twenty sessions are recorded by real turns: the embedded runtime on the system clock, a
rules agent whose tool is an HTTP tool on a loopback backend that counts its calls, and a
recording channel that counts its sends. The preview then replays them through versions of
the tenant's configuration: the unchanged one differs in nothing, one with a changed reply
differs in exactly those replies, one that calls a tool with new arguments changes tool
calls (with sandbox results); neither the backend nor the channel hears from it, also while
a runtime still holds the database.
"""

import asyncio
import json
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from acf.adapters.memory.clock import SystemClock
from acf.adapters.memory.wakeup import InProcessWakeUps
from acf.adapters.sqlite.store import SqliteStore, open_sqlite_store
from acf.bootstrap import ToolBackends, build_agents, database_path
from acf.config.load import load_config
from acf.config.versions_source import version_sources
from acf.domain.channels import Channel
from acf.domain.config_versions import ApplyMode
from acf.domain.messages import NewMessage
from acf.domain.session_key import SessionKey
from acf.entrypoints.cli import app
from acf.ports.config_versions import PushVersion
from acf.service.ingress import Ingress
from acf.service.runtime import Runtime
from acf.testing.channel import RecordingChannel

TENANT = "shop"
HELLO, THANKS, WELCOME = "Hello! How can I help?", "You're welcome.", "Glad to help."
CONFIG = """
version: 1
tenants:
  shop:
    channels:
      web: {mode: off}
    tools:
      - name: lookup_order
        policy: pure
        args_schema: {type: object, required: [order_id], properties: {order_id: {type: string}}}
        http: {method: POST, url: "BACKEND/orders/{order_id}"}
    agents:
      support:
        pipeline: {kind: rules, rules_file: rules.yaml}
        tools: [lookup_order]
"""
RULES = """
fallback: "Sorry, I didn't get that."
rules:
  - name: hello
    lane: talk
    match: {keywords: [hello]}
    HELLO_CALL
    reply: "Hello! How can I help?"
  - name: order_status
    lane: orders
    match: {regex: '\\border\\b\\D{0,40}(?P<order_id>\\d{3,8})\\b'}
    call: {tool: lookup_order, args: {order_id: "{order_id}"}}
    reply: "Order {order_id} is {result.status}."
  - name: thanks
    lane: talk
    match: {keywords: [thanks]}
    reply: "THANKS_REPLY"
"""
SCRIPTS = [
    ["hello", "where is order 1001", "thanks"],
    ["hello", "thanks"],
    ["my order 1002 please", "thanks"],
    ["hello", "what?"],
]
SESSIONS = 20
runner = CliRunner()


class Backend:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[Backend, str]]:
    state = Backend()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            self.rfile.read(length)
            state.calls[self.path] += 1
            body = json.dumps({"status": "shipped"}).encode()
            self.send_response(200)
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


def write_config(folder: Path, base: str, thanks: str = THANKS, hello_call: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rules = RULES.replace("THANKS_REPLY", thanks).replace("HELLO_CALL", hello_call)
    (folder / "rules.yaml").write_text(rules, encoding="utf-8")
    path = folder / "acf.yaml"
    path.write_text(CONFIG.replace("BACKEND", base), encoding="utf-8")
    return path


async def push(store: SqliteStore, file: Path, message: str) -> int:
    source = version_sources(load_config(file))[TENANT]
    op = PushVersion(
        TENANT,
        source.content_hash,
        source.source,
        source.resolved,
        source.provenance,
        "test",
        message,
        None,
        ApplyMode(source.apply),
        SystemClock().now_ms(),
    )
    pushed = (await store.uow.commit(TENANT, [op])).get(op)
    return pushed.version.number


@dataclass
class Live:
    store: SqliteStore
    runtime: Runtime
    channel: RecordingChannel
    ingress: Ingress
    client: httpx.AsyncClient

    async def stop(self) -> None:
        await self.runtime.stop()
        await self.store.close()
        await self.client.aclose()


async def start(data_dir: Path, config: Path) -> Live:
    clock = SystemClock()
    store = await open_sqlite_store(database_path(data_dir), clock)
    client = httpx.AsyncClient()
    agents = build_agents(load_config(config), ToolBackends(client))
    channel = RecordingChannel(clock)
    wakeups = InProcessWakeUps()
    runtime = Runtime(store, clock, agents, wakeups, channel)
    await runtime.start()
    return Live(store, runtime, channel, Ingress(agents, store.uow, wakeups, clock), client)


async def converse(live: Live, customer: str, texts: list[str]) -> None:
    key = SessionKey(TENANT, "support", customer, Channel.WEB)
    for n, text in enumerate(texts, 1):
        await live.ingress.accept(NewMessage(key, f"{customer}-{n}", text=text))
        for _ in range(400):
            if len(live.channel.replies_for(customer)) >= n:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError(f"{customer}: no reply to {text!r}")


@dataclass(frozen=True)
class Recorded:
    data_dir: Path
    versions: dict[str, int]
    backend: Backend
    backend_calls: int
    sends: int
    folder: Path


async def record(folder: Path, base: str) -> tuple[dict[str, int], int]:
    data_dir = folder / "data"
    v1 = write_config(folder / "v1", base)
    live = await start(data_dir, v1)
    try:
        versions = {"same": await push(live.store, v1, "as recorded")}
        await asyncio.gather(
            *(converse(live, f"c{i}", SCRIPTS[i % len(SCRIPTS)]) for i in range(SESSIONS))
        )
        changed = write_config(folder / "v2", base, thanks=WELCOME)
        versions["reply"] = await push(live.store, changed, "a warmer thank-you")
        calls = 'call: {tool: lookup_order, args: {order_id: "999"}}'
        tool = write_config(folder / "v3", base, hello_call=calls)
        versions["tool"] = await push(live.store, tool, "hello looks up order 999")
        return versions, len(live.channel.sends)
    finally:
        await live.stop()


@pytest.fixture(scope="module")
def recorded(backend: tuple[Backend, str], tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    state, base = backend
    folder = tmp_path_factory.mktemp("preview")
    versions, sends = asyncio.run(record(folder, base))
    calls = sum(state.calls.values())
    assert calls == 10  # five sessions ask for order 1001, five for 1002
    assert sends == sum(len(SCRIPTS[i % len(SCRIPTS)]) for i in range(SESSIONS))
    return Recorded(folder / "data", versions, state, calls, sends, folder)


def preview(r: Recorded, version: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    args = ["config", "preview", str(r.versions[version]), "--tenant", TENANT, "--json"]
    result = runner.invoke(app, [*args, "--data-dir", str(r.data_dir), *extra])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    body = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.exit_code, body, result.stderr


def test_an_unchanged_version_shows_no_difference_and_touches_nothing(r: Recorded) -> None:
    code, body, err = preview(r, "same", "--sessions", "20")
    assert code == 0, err
    assert body["summary"]["sessions"] == SESSIONS
    assert body["summary"]["changed"] == 0
    assert all(s["changes"] == [] and s["problems"] == [] for s in body["sessions"])
    assert body["tool_calls"] == 10  # every one answered from the ledger's results
    assert body["summary"]["sandbox_calls"] == 0
    assert body["sandbox_sends"] == r.sends  # the sandbox's own recording channel
    assert sum(r.backend.calls.values()) == r.backend_calls  # no backend call


def test_a_changed_reply_differs_in_exactly_those_replies(r: Recorded) -> None:
    code, body, err = preview(r, "reply", "--sessions", "20")
    assert code == 0, err
    thanked = [i for i in range(SESSIONS) if "thanks" in SCRIPTS[i % len(SCRIPTS)]]
    summary = body["summary"]
    assert summary["changed"] == len(thanked) == 15
    assert summary["sessions_changed"] == {"replies": 15, "tool_calls": 0, "outcomes": 0}
    changed = {s["customer"]: s["changes"] for s in body["sessions"] if s["changed"]}
    assert set(changed) == {f"c{i}" for i in thanked}
    for customer, changes in changed.items():
        position = SCRIPTS[int(customer[1:]) % len(SCRIPTS)].index("thanks")
        assert changes == [
            {"kind": "replies", "position": position, "before": THANKS, "after": WELCOME}
        ]
    assert sum(r.backend.calls.values()) == r.backend_calls


def test_fail_on_change_is_a_regression_gate(r: Recorded) -> None:
    code, body, err = preview(r, "tool", "--sessions", "20", "--fail-on-change", "tool_calls")
    assert code == 1, err
    assert "tool_calls" in err
    hello = [s for s in body["sessions"] if s["changed"]]
    assert len(hello) == 15  # every session that said hello
    after = [c["after"] for s in hello for c in s["changes"] if c["kind"] == "tool_calls"]
    assert after and all(
        a == {"tool": "lookup_order", "args": {"order_id": "999"}, "sandbox": True} for a in after
    )
    assert body["summary"]["sandbox_calls"] == 15
    code, _, err = preview(r, "reply", "--sessions", "20", "--fail-on-change", "tool_calls")
    assert code == 0, err
    code, _, err = preview(r, "reply", "--sessions", "20", "--fail-on-change", "replies")
    assert code == 1, err
    assert sum(r.backend.calls.values()) == r.backend_calls


def test_one_session_and_clear_refusals(r: Recorded) -> None:
    code, body, _ = preview(r, "same", "--sessions", "1")
    assert code == 0
    (only,) = body["sessions"]
    code, again, err = preview(r, "reply", "--session", only["session_id"])
    assert code == 0, err
    assert [s["session_id"] for s in again["sessions"]] == [only["session_id"]]
    base = ["config", "preview", "1", "--tenant", TENANT, "--data-dir", str(r.data_dir)]
    neither = runner.invoke(app, base)
    assert neither.exit_code == 2
    assert "exactly one of --sessions" in neither.stderr
    missing = runner.invoke(app, [*base[:2], "99", *base[3:], "--sessions", "3"])
    assert missing.exit_code == 2
    assert "no configuration version 99" in missing.stderr
    nowhere = runner.invoke(app, [*base[:-1], str(r.folder / "nothing"), "--sessions", "3"])
    assert nowhere.exit_code == 2
    assert "no database" in nowhere.stderr


async def test_it_reads_while_a_runtime_holds_the_file_and_sends_nothing(
    r: Recorded, tmp_path: Path
) -> None:
    shutil.copytree(r.data_dir, tmp_path / "data")
    live = await start(tmp_path / "data", r.folder / "v1" / "acf.yaml")
    try:
        held = Recorded(tmp_path / "data", r.versions, r.backend, r.backend_calls, 0, r.folder)
        code, body, err = await asyncio.to_thread(preview, held, "reply", "--sessions", "20")
        assert code == 0, err
        assert body["summary"]["changed"] == 15
        assert live.channel.sends == []  # the live runtime's channel heard nothing
        assert sum(r.backend.calls.values()) == r.backend_calls
        gate = await asyncio.to_thread(
            runner.invoke,
            app,
            [
                "scenarios",
                "run",
                str(r.folder),
                "--tenant",
                TENANT,
                "--version",
                "1",
                "--data-dir",
                str(tmp_path / "data"),
            ],
        )
        assert gate.exit_code == 2
        assert "a running acf holds" in gate.stderr
    finally:
        await live.stop()


SCENARIO = """
name: the shop's agent greets and thanks
script:
  - {at: 0, send: {text: "hello"}}
  - {at: 5000, send: {text: "thanks"}}
expect:
  replies: {alice: ["Hello! How can I help?", "You're welcome."]}
"""


def test_scenarios_run_against_a_version_records_the_gate(r: Recorded, tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(SCENARIO, encoding="utf-8")
    data = ["--data-dir", str(r.data_dir)]
    run = ["scenarios", "run", str(tmp_path), "--tenant", TENANT]
    passed = runner.invoke(app, [*run, "--version", str(r.versions["same"]), *data])
    assert passed.exit_code == 0, passed.stdout + passed.stderr
    assert "recorded: passed" in passed.stdout
    failed = runner.invoke(app, [*run, "--version", f"v{r.versions['reply']}", *data])
    assert failed.exit_code == 1
    assert "recorded: failed" in failed.stdout
    same = asyncio.run(gates_of(r.data_dir, r.versions["same"]))["scenarios"]
    reply = asyncio.run(gates_of(r.data_dir, r.versions["reply"]))["scenarios"]
    assert same["passed"] is True
    assert same["summary"]["scenarios"] == 1
    assert reply["passed"] is False
    assert reply["summary"]["failed"][0]["name"] == "the shop's agent greets and thanks"


async def gates_of(data_dir: Path, number: int) -> dict[str, Any]:
    store = await open_sqlite_store(database_path(data_dir), SystemClock())
    try:
        version = await store.config_versions.get(TENANT, number)
        assert version is not None
        return dict(version.gates)
    finally:
        await store.close()


@pytest.fixture
def r(recorded: Recorded) -> Recorded:
    return recorded
