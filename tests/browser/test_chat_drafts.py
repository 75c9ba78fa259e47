"""Drafts in the web chat (DESIGN §16), in headless Chromium: the draft bubble grows while
the agent writes, the reply takes its place, a supersede removes it, and a late draft of
the superseded attempt (published straight on the bus after the withdrawal) never shows.

The service runs in a thread of the test process (embedded SQLite, uvicorn on loopback), so
the test can publish on its drafts' bus; the agent is ``tests.http.drafting.Writer``.
"""

import asyncio
import itertools
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
import yaml
from playwright.sync_api import Browser, BrowserContext, Page, expect

from acf.bootstrap import Service, open_service, read_settings
from acf.config.load import load_config
from acf.entrypoints.http.app import create_app
from acf.entrypoints.http.context import ApiSettings
from acf.ports.api_keys import new_api_key
from acf.ports.drafts import Draft
from tests.browser.draft_timing import RECORD_DRAFTS, draft_latency_ms, drafts_seen
from tests.http.conftest import free_port
from tests.http.drafting import HELD_AFTER, answer, config

START_TIMEOUT_S = 30.0


@dataclass
class DraftingServer:
    base_url: str
    key: str
    loop: asyncio.AbstractEventLoop
    service: Service

    def publish(self, draft: Draft) -> None:
        """Publish on the service's drafts' bus, from the test's thread."""
        self.loop.call_soon_threadsafe(self.service.drafts.publish, draft)


async def _serve(data: Path, ready: Callable[[DraftingServer], None], stop: asyncio.Event) -> None:
    path = data / "acf.yaml"
    path.write_text(yaml.safe_dump(config(every_ms=80)), encoding="utf-8")
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
        ready(DraftingServer(f"http://127.0.0.1:{port}", key, asyncio.get_running_loop(), service))
        await stop.wait()
    finally:
        server.should_exit = True
        server.force_exit = True
        await task
        await service.close()


@pytest.fixture(scope="module")
def drafting_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DraftingServer]:
    data = tmp_path_factory.mktemp("acf-drafts")
    started = threading.Event()
    box: list[DraftingServer] = []
    stop: list[asyncio.Event] = []

    def ready(server: DraftingServer) -> None:
        box.append(server)
        started.set()

    def run() -> None:
        async def main() -> None:
            stop.append(asyncio.Event())
            await _serve(data, ready, stop[0])

        try:
            asyncio.run(main())
        finally:
            started.set()

    thread = threading.Thread(target=run, name="acf-drafting-server", daemon=True)
    thread.start()
    assert started.wait(START_TIMEOUT_S) and box, "the drafting server did not start"
    server = box[0]
    try:
        yield server
    finally:
        server.loop.call_soon_threadsafe(stop[0].set)
        thread.join(START_TIMEOUT_S)


@pytest.fixture
def chat(browser: Browser, drafting_server: DraftingServer) -> Iterator[Page]:
    """The chat page as a fresh customer, recording every text a draft bubble shows.
    JavaScript errors fail the test."""
    context: BrowserContext = browser.new_context(base_url=drafting_server.base_url)
    context.set_default_timeout(15_000)
    errors: list[str] = []
    page = context.new_page()
    page.add_init_script(RECORD_DRAFTS)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    page.goto(f"/?key={drafting_server.key}")
    page.locator("#conversation").wait_for(state="visible")
    try:
        yield page
    finally:
        context.close()
    assert not errors, "JavaScript errors:\n" + "\n".join(errors)


def send(page: Page, text: str) -> None:
    box = page.get_by_label("Your message")
    box.fill(text)
    box.press("Enter")


def session_id_of(page: Page) -> str:
    expect(page.locator("body")).to_have_attribute("data-session-id", re.compile(".+"))
    value = page.locator("body").get_attribute("data-session-id")
    assert value
    return value


def test_the_draft_bubble_grows_then_the_reply_takes_its_place(chat: Page) -> None:
    send(chat, "where is my order?")
    reply = "".join(answer(["where is my order?"])).strip()
    replies = chat.locator("#messages li.from-agent")
    expect(replies).to_have_count(1)
    expect(replies.locator(".text")).to_have_text(reply)
    expect(chat.locator("#messages li.draft")).to_have_count(0)

    turn_id = replies.get_attribute("data-turn-id")
    shown = [d["text"] for d in drafts_seen(chat, turn_id)]
    assert len(shown) >= 3, shown  # it grew, draft by draft
    assert all(len(a) < len(b) for a, b in itertools.pairwise(shown)), shown
    assert all(reply.startswith(text.strip()) for text in shown), shown
    # The reply sits where the draft was: right after the customer's message.
    items = chat.locator("#messages > li")
    expect(items).to_have_count(2)
    expect(items.nth(1)).to_have_class(re.compile("from-agent"))


def test_a_supersede_removes_the_draft_and_a_late_draft_never_shows(
    chat: Page, drafting_server: DraftingServer
) -> None:
    send(chat, "hold on, where is my order?")
    held_text = "".join(answer(["hold on, where is my order?"])[:HELD_AFTER]).strip()
    draft = chat.locator("#messages li.draft")
    expect(draft.locator(".text")).to_have_text(held_text)  # then the pipeline waits
    held = draft.get_attribute("data-turn-id")
    assert held

    send(chat, "the one from Monday")  # supersedes the held turn
    reply = "".join(answer(["hold on, where is my order?", "the one from Monday"])).strip()
    expect(chat.locator(f'#messages li.draft[data-turn-id="{held}"]')).to_have_count(0)
    replies = chat.locator("#messages li.from-agent")
    expect(replies.locator(".text")).to_have_text([reply])
    assert replies.get_attribute("data-turn-id") != held
    expect(chat.locator("#messages li.draft")).to_have_count(0)

    # A late draft of the superseded attempt, straight on the bus, after its withdrawal;
    # then a canary on a turn of its own: once the canary shows, the late one was handled.
    session_id = session_id_of(chat)
    drafting_server.publish(Draft("acme", session_id, held, 1, 1, 0, "LATE words", 0))
    canary = f"canary-{uuid.uuid4().hex[:8]}"

    def publish(marker: str) -> None:
        drafting_server.publish(Draft("acme", session_id, canary, 1, 1, 0, marker, 0))

    latency_ms = draft_latency_ms(chat, publish, marker=canary)
    print(f"draft publish -> shown in Chromium: {latency_ms:.1f} ms")  # a measurement only
    assert not any("LATE" in d["text"] for d in drafts_seen(chat))
    assert [d["text"] for d in drafts_seen(chat, held)][-1].strip() == held_text


def test_the_browser_applies_the_forwarders_rules_itself(chat: Page) -> None:
    """The page's own rules (``drafts.js``), fed directly: late drafts that slipped past the
    server are still ignored."""
    out = chat.evaluate(
        """async () => {
          const { DraftTexts } = await import("/static/drafts.js");
          const d = new DraftTexts();
          const r = [];
          const draft = (t, attempt, fence, offset, text) =>
            r.push(d.apply(t, { attempt, fence, offset, text }));
          draft("T", 1, 7, 0, "Hel");
          draft("T", 1, 7, 3, "lo");          // grows
          draft("T", 1, 7, 2, "y");           // a restart from the common prefix
          draft("T", 1, 7, 9, "gap");         // cannot be placed
          r.push(d.withdraw("T", 1));         // the shown text is withdrawn
          draft("T", 1, 7, 3, "late");        // of the withdrawn attempt
          draft("T", 2, 8, 0, "Again");       // the next attempt
          draft("T", 1, 9, 0, "old");         // a lower attempt
          draft("T", 2, 7, 0, "old");         // a lower fence
          r.push(d.started("T", 3));          // attempt 3 started: 2 is retired
          draft("T", 2, 8, 5, "!");
          draft("U", 1, 1, 0, "Hi 👋");
          draft("U", 1, 1, 4, "!");           // offsets count code points
          d.close("U");                       // its reply is committed
          draft("U", 1, 1, 0, "late");
          return r;
        }"""
    )
    assert out == [
        "Hel",
        "Hello",
        "Hey",
        None,
        True,
        None,
        "Again",
        None,
        None,
        True,
        None,
        "Hi 👋",
        "Hi 👋!",
        None,
    ]
