"""Browser tests: the web chat and the console in headless Chromium, against a real
``acf serve`` (the bundled demo configuration) started as a subprocess.

Chromium is Debian's ``chromium`` (``/usr/bin/chromium``, or ``ACF_CHROMIUM``), driven by
Playwright. Without it the tests skip, unless ``ACF_REQUIRE_SERVICES=1`` (CI), where its
absence is a failure.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

CHROMIUM = Path(os.environ.get("ACF_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
START_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 30.0
LIVE_PHASES = {"accumulating", "running"}
NETWORK_LOG = "Failed to load resource"
"""Chromium's own line for a refused request (some tests refuse requests on purpose)."""

# Records everything the chat ever showed as activity (tool progress lines are transient).
RECORD_ACTIVITY = """
window.__activitySeen = [];
document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("activity");
  if (!list) return;
  new MutationObserver(() => {
    for (const li of list.querySelectorAll("li")) {
      const text = li.textContent;
      if (!window.__activitySeen.includes(text)) window.__activitySeen.push(text);
    }
  }).observe(list, { childList: true, subtree: true });
});
"""


def services_required() -> bool:
    return os.environ.get("ACF_REQUIRE_SERVICES") == "1"


@dataclass(frozen=True)
class Server:
    base_url: str
    key: str
    log_path: Path

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=10.0,
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _acf_command() -> list[str]:
    script = Path(sys.executable).with_name("acf")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from acf.entrypoints.cli import main; main()"]


def _wait_until_up(
    process: subprocess.Popen[bytes], base_url: str, key_file: Path, log_path: Path
) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = log_path.read_text(encoding="utf-8", errors="replace")
            pytest.fail(f"acf serve exited with {process.returncode}:\n{log}")
        try:
            healthy = httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            healthy = False
        if healthy and key_file.exists():
            key = key_file.read_text(encoding="utf-8").strip()
            if key:
                return key
        time.sleep(0.1)
    log = log_path.read_text(encoding="utf-8", errors="replace")
    pytest.fail(f"acf serve did not answer /healthz within {START_TIMEOUT_S} s:\n{log}")


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set ACF_CHROMIUM)"
        if services_required():
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def acf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("acf-data")
    log_path = data_dir.parent / "acf-serve.log"
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACF_")}
    command = [*_acf_command(), "serve", "--port", str(port), "--data-dir", str(data_dir)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        key = _wait_until_up(process, base_url, data_dir / "demo-api-key", log_path)
        yield Server(base_url, key, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# Module scope, not session: Playwright's sync API keeps an event loop running while it is
# open, and the async test suites that run after these modules need none to be running.
@pytest.fixture(scope="module")
def playwright_driver(chromium_path: Path) -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright, chromium_path: Path) -> Iterator[Browser]:
    launched = playwright_driver.chromium.launch(
        executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True
    )
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def api(acf_server: Server) -> Iterator[httpx.Client]:
    with acf_server.api() as client:
        yield client


@pytest.fixture
def new_page(browser: Browser, acf_server: Server) -> Iterator[Callable[[], Page]]:
    """``new_page()``: a page in a fresh browser context (its own localStorage, so its own
    web customer). JavaScript errors on any of them fail the test."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def make() -> Page:
        context = browser.new_context(base_url=acf_server.base_url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.add_init_script(RECORD_ACTIVITY)
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                errors.append(f"console.{msg.type}: {msg.text}")
                if msg.type == "error" and not msg.text.startswith(NETWORK_LOG)
                else None
            ),
        )
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, "JavaScript errors:\n" + "\n".join(errors)


@pytest.fixture
def chat(new_page: Callable[[], Page], acf_server: Server) -> Page:
    """The chat page, opened with the demo key in the address as `acf serve` prints it."""
    page = new_page()
    page.goto(f"/?key={acf_server.key}")
    page.locator("#conversation").wait_for(state="visible")
    return page


def wait_settled(api: httpx.Client, session_id: str, messages: int = 0) -> dict[str, Any]:
    """Poll until the session holds at least `messages` messages, every message is answered,
    no turn is live and no reply is pending; the session's detail then."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    detail: dict[str, Any] = {}
    turns: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        detail = api.get(f"/v1/sessions/{session_id}").raise_for_status().json()
        turns = api.get(f"/v1/sessions/{session_id}/turns").raise_for_status().json()["items"]
        live = [t for t in turns if t["phase"] in LIVE_PHASES]
        pending = [r for r in detail["replies"] if r["status"] == "pending"]
        arrived = detail["last_seq"] >= messages
        if arrived and detail["consumed_seq"] == detail["last_seq"] and not live and not pending:
            return detail
        time.sleep(0.1)
    pytest.fail(f"session {session_id} did not settle: {detail} turns={turns}")


def event_kinds(api: httpx.Client, session_id: str) -> list[str]:
    events = api.get(f"/v1/sessions/{session_id}/events").raise_for_status().json()["items"]
    return [e["kind"] for e in events]


def delivered(detail: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in detail["replies"] if r["status"] in {"sent", "delivered", "read"}]
