"""The web chat with an agent whose pipeline is an agent service (seed 004 Stories 5 and 8),
in headless Chromium: a tool's status text shows while the tool runs, the answer streams
into a draft bubble, then the committed reply takes its place; and when the page cannot
hold its event stream (refused, or cut at once as some proxies do), it polls the session's
events and the customer still sees the status and the reply; once a stream holds again,
polling stops, and no event is handled twice.

acf runs in a thread of the test process (embedded SQLite, uvicorn on loopback) beside
``acf.testing.FakeAgentService`` on the same event loop.
"""

import asyncio
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from playwright.sync_api import Browser, BrowserContext, Page, Request, Route, expect

from acf.bootstrap import open_service, read_settings
from acf.config.load import load_config
from acf.entrypoints.http.app import create_app
from acf.entrypoints.http.context import ApiSettings
from acf.pipelines.agent_service.protocol import ExecuteRequest
from acf.ports.api_keys import new_api_key
from acf.testing import FakeAgentService
from acf.testing.fake_agent_steps import Chunks, Complete, Step, Think, Tool, echo
from tests.browser.conftest import NETWORK_LOG
from tests.browser.draft_timing import RECORD_DRAFTS, drafts_seen
from tests.http.conftest import free_port

START_TIMEOUT_S = 30.0
AGENT = "concierge"
STATUS = "Checking where your parcel is…"
ANSWER = "Your parcel P1 left the depot this morning and arrives tomorrow before noon."
TOOL_SECONDS = 3.0
WAIT_MS = 20_000
"""How long an expectation waits for the page (a bound: polling every 1.5 s, a 3 s tool)."""
"""Longer than a poll (1.5 s) and its request: a polling page still sees the tool run."""

# Every activity line the page showed, with the browser's wall-clock time.
RECORD_ACTIVITY_AT = """
window.__activityAt = [];
document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("activity");
  if (!list) return;
  new MutationObserver(() => {
    const at = performance.timeOrigin + performance.now();
    for (const li of list.querySelectorAll("li")) {
      if (!window.__activityAt.some((a) => a.text === li.textContent)) {
        window.__activityAt.push({ at, text: li.textContent });
      }
    }
  }).observe(list, { childList: true, subtree: true });
});
"""


def script(request: ExecuteRequest, profile: str) -> Sequence[Step]:
    """A parcel question runs a slow tool, then streams its answer; anything else echoes."""
    if "parcel" not in request.message.text:
        return echo(request, profile)
    return [
        Think("The customer asks about a parcel: look it up."),
        Tool("track_parcel", {"parcel": "P1"}, status_text=STATUS, seconds=TOOL_SECONDS),
        Chunks(ANSWER, parts=6, interval_s=0.3),
        Complete(),
    ]


def config(base_url: str) -> dict[str, object]:
    web = {"mode": "fixed", "window_ms": 100, "min_window_ms": 50, "max_window_ms": 500}
    agent = {"pipeline": {"kind": "agent_service", "base_url": base_url, "profile": "support"}}
    return {"version": 1, "tenants": {"acme": {"channels": {"web": web}, "agents": {AGENT: agent}}}}


@dataclass
class AgentServer:
    base_url: str
    key: str


def agent_server_api(server: AgentServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {server.key}"}, timeout=10
    )


async def _serve(data: Path, ready: Callable[[AgentServer], None], stop: asyncio.Event) -> None:
    async with FakeAgentService() as agent_service:
        agent_service.script(script)
        path = data / "acf.yaml"
        path.write_text(yaml.safe_dump(config(agent_service.base_url)), encoding="utf-8")
        settings = read_settings({"data_dir": data / "data"}, environ={})
        service = await open_service(load_config(path), settings)
        await service.start()
        key = new_api_key()
        await service.api_keys.create("acme", "test", key, service.clock.now_ms())
        port = free_port()
        app = create_app(service, ApiSettings(heartbeat_s=5, poll_s=0.5))
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        task = asyncio.create_task(server.serve())
        try:
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
                await asyncio.sleep(0.01)
            ready(AgentServer(f"http://127.0.0.1:{port}", key))
            await stop.wait()
        finally:
            server.should_exit = True
            server.force_exit = True
            await task
            await service.close()


@pytest.fixture(scope="module")
def agent_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentServer]:
    data = tmp_path_factory.mktemp("acf-agent-service")
    started = threading.Event()
    box: list[AgentServer] = []
    stops: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def ready(server: AgentServer) -> None:
        box.append(server)
        started.set()

    def run() -> None:
        async def main() -> None:
            stops.append((asyncio.get_running_loop(), asyncio.Event()))
            await _serve(data, ready, stops[0][1])

        try:
            asyncio.run(main())
        finally:
            started.set()

    thread = threading.Thread(target=run, name="acf-agent-service-server", daemon=True)
    thread.start()
    assert started.wait(START_TIMEOUT_S) and box, "acf with the fake agent service did not start"
    try:
        yield box[0]
    finally:
        loop, stop = stops[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(START_TIMEOUT_S)


@pytest.fixture
def open_chat(browser: Browser, agent_server: AgentServer) -> Iterator[Callable[..., Page]]:
    """``open_chat(stream_route=None)``: the chat with the agent as a fresh customer,
    recording its drafts and activity lines; ``stream_route`` handles the page's requests
    for its event stream. JavaScript errors fail the test."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def make(stream_route: Callable[[Route], None] | None = None) -> Page:
        context = browser.new_context(base_url=agent_server.base_url)
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.add_init_script(RECORD_DRAFTS)
        page.add_init_script(RECORD_ACTIVITY_AT)
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                errors.append(f"console.{msg.type}: {msg.text}")
                if msg.type == "error" and not msg.text.startswith(NETWORK_LOG)
                else None
            ),
        )
        if stream_route is not None:
            page.route("**/v1/sessions/*/stream*", stream_route)
        page.goto(f"/?key={agent_server.key}&agent={AGENT}")
        page.locator("#conversation").wait_for(state="visible")
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, "JavaScript errors:\n" + "\n".join(errors)


def send(page: Page, text: str) -> None:
    box = page.get_by_label("Your message")
    box.fill(text)
    box.press("Enter")


def activity_seen(page: Page) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = page.evaluate("window.__activityAt")
    return seen


def expect_status_then_reply(page: Page) -> None:
    """The tool's status line while it runs, then the reply alone."""
    status = page.locator("#activity li", has_text=STATUS)
    expect(status).to_be_visible(timeout=WAIT_MS)
    expect(status).to_have_attribute("data-activity", "tool", timeout=WAIT_MS)
    reply = page.locator("#messages li.from-agent")
    expect(reply.locator(".text")).to_have_text(ANSWER, timeout=WAIT_MS)
    expect(reply).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#messages li.draft")).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator("#activity li")).to_have_count(0, timeout=WAIT_MS)


def test_a_tools_status_then_the_streamed_answer_then_the_reply(
    open_chat: Callable[..., Page],
) -> None:
    page = open_chat()
    send(page, "where is my parcel P1?")
    expect_status_then_reply(page)
    expect(page.locator("#connection")).to_have_attribute("data-state", "open", timeout=WAIT_MS)

    turn_id = page.locator("#messages li.from-agent").get_attribute("data-turn-id")
    drafts = [d for d in drafts_seen(page, turn_id) if d["text"].strip()]
    texts = [d["text"].strip() for d in drafts]
    assert len(texts) >= 2, texts  # it grew as the chunks came
    assert all(ANSWER.startswith(text) for text in texts), texts
    assert texts == sorted(texts, key=len), texts
    shown = {a["text"]: a["at"] for a in activity_seen(page)}
    assert shown[STATUS] < drafts[0]["at"]  # the tool ran before the answer streamed
    assert f"{AGENT} is typing…" in shown


def refuse(route: Route) -> None:
    route.abort()


def cut_at_once(route: Route) -> None:
    """As a proxy that closes event streams: a heartbeat, then the end."""
    route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=": ping\n\n")


@pytest.mark.parametrize("stream_route", [refuse, cut_at_once], ids=["refused", "cut"])
def test_without_a_stream_the_page_polls_and_the_customer_sees_the_same(
    open_chat: Callable[..., Page], stream_route: Callable[[Route], None]
) -> None:
    polls: list[str] = []
    page = open_chat(stream_route)

    def note(request: Request) -> None:
        if re.search(r"/v1/sessions/[^/]+/events\?", request.url):
            polls.append(request.url)

    page.on("request", note)
    send(page, "hello there")
    expect(page.locator("#connection")).to_have_attribute("data-state", "polling", timeout=WAIT_MS)
    expect(page.locator("#connection")).to_have_text("connected", timeout=WAIT_MS)
    expect(page.locator("#messages li.from-agent .text")).to_have_text(
        "You said: hello there", timeout=WAIT_MS
    )

    send(page, "and where is my parcel P1?")
    status = page.locator("#activity li", has_text=STATUS)
    expect(status).to_be_visible(timeout=WAIT_MS)
    reply = page.locator("#messages li.from-agent").nth(1)
    expect(reply.locator(".text")).to_have_text(ANSWER, timeout=WAIT_MS)
    expect(page.locator("#messages li.from-agent")).to_have_count(2, timeout=WAIT_MS)
    expect(page.locator("#messages li.from-customer")).to_have_count(2, timeout=WAIT_MS)
    expect(page.locator("#activity li")).to_have_count(0, timeout=WAIT_MS)

    assert polls and all("limit=" in url for url in polls)
    after = [int(re.search(r"after_id=(\d+)", url).group(1)) for url in polls]  # type: ignore[union-attr]
    assert after == sorted(after) and after[-1] > after[0]  # each poll goes on from the last
    assert not drafts_seen(page)  # drafts only come with the stream


PROBE = """async ({ sessionId, timing }) => {
  const { openEventStream } = await import("/static/sse.js");
  const path = `/v1/sessions/${sessionId}`;
  window.__probe = { statuses: [], ids: [] };
  window.__probeStream = openEventStream({
    url: `${path}/stream?probe=1`,
    pollUrl: `${path}/events`,
    key: localStorage.getItem("acf.apiKey"),
    timing,
    onEvent: (event) => window.__probe.ids.push(event.event_id),
    onStatus: (status) => window.__probe.statuses.push(status),
  });
}"""
BACK_TO_STREAM = """() => {
  const s = window.__probe.statuses;
  const polling = s.indexOf("polling");
  return polling >= 0 && s.indexOf("open", polling) > polling;
}"""


def test_once_the_stream_holds_again_polling_stops_and_nothing_comes_twice(
    open_chat: Callable[..., Page], agent_server: AgentServer
) -> None:
    """sse.js itself, with short timings: three refused streams, polling, the stream back
    (it holds once a heartbeat comes), each stored event once and in order throughout."""
    page = open_chat()
    send(page, "hello")
    expect(page.locator("#messages li.from-agent")).to_have_count(1, timeout=WAIT_MS)
    session_id = page.locator("body").get_attribute("data-session-id")
    refused: list[str] = []
    polls: list[str] = []

    def refuse_three(route: Route) -> None:
        if len(refused) < 3:
            refused.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/stream?probe=1", refuse_three)
    page.on("request", lambda r: polls.append(r.url) if "/events?" in r.url else None)
    timing = {"holdMs": 1000, "pollMs": 200, "streamRetryMs": 1500}
    page.evaluate(PROBE, {"sessionId": session_id, "timing": timing})
    page.wait_for_function(BACK_TO_STREAM, timeout=30_000)
    page.wait_for_timeout(300)  # the request events of the last polls reach this side
    assert len(refused) == 3 and polls
    polled = len(polls)

    send(page, "hello again")  # its events come by the stream only
    expect(page.locator("#messages li.from-agent")).to_have_count(2, timeout=WAIT_MS)
    with agent_server_api(agent_server) as api:
        stored = [
            e["event_id"] for e in api.get(f"/v1/sessions/{session_id}/events").json()["items"]
        ]
    page.wait_for_function("n => window.__probe.ids.length >= n", arg=len(stored))
    assert page.evaluate("window.__probe.ids") == stored
    assert len(polls) == polled
    page.evaluate("window.__probeStream.close()")
