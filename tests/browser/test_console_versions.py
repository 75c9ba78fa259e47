"""The console's configuration page in headless Chromium, against acf served in this
process (v1 live from its file): an ``api`` key is asked to give way to an admin one; the
versions are listed; Promote is refused without a passed scenarios gate and works forced;
Canary starts one at the chosen share and the canary panel shows both arms; the diff of two
versions shows the changed key; an automatic canary rollback raises the banner with its
reason."""

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from acf.ports.config_versions import RollbackCanary
from tests.browser.conftest import START_TIMEOUT_S
from tests.integration.config_api_server import Served, serve, tenant_yaml

T = TypeVar("T")
WAIT_MS = 20_000


@dataclass
class Running:
    served: Served
    loop: asyncio.AbstractEventLoop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the server's loop (its store belongs to it)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def api(self) -> httpx.Client:
        key = self.served.keys[("acme", "admin")]
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.served.base_url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, chromium_path: Path) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("console-versions")
    started = threading.Event()
    box: list[Running] = []
    stops: list[asyncio.Event] = []

    def run() -> None:
        async def main() -> None:
            stop = asyncio.Event()
            stops.append(stop)
            async with serve("sqlite", tmp) as served:
                box.append(Running(served, asyncio.get_running_loop()))
                started.set()
                await stop.wait()

        try:
            asyncio.run(main())
        finally:
            started.set()

    thread = threading.Thread(target=run, name="acf-console-versions", daemon=True)
    thread.start()
    assert started.wait(START_TIMEOUT_S) and box, "acf did not start"
    try:
        yield box[0]
    finally:
        box[0].loop.call_soon_threadsafe(stops[0].set)
        thread.join(START_TIMEOUT_S)


def push(api: httpx.Client, **settings: Any) -> int:
    pushed = api.post("/v1/config/versions", json={"yaml": tenant_yaml(**settings), "message": "m"})
    assert pushed.status_code == 201, pushed.text
    number: int = pushed.json()["number"]
    return number


def test_the_versions_page(running: Running, browser: Browser) -> None:
    base = running.served.base_url
    with running.api() as api:
        assert push(api, deadline_ms=9000) == 2
    context = browser.new_context(base_url=base)
    errors: list[str] = []
    page: Page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        # an api key: the page asks for an admin one
        page.goto(f"/console/versions?key={running.served.keys[('acme', 'api')]}")
        form = page.locator("#key-form")
        expect(form).to_be_visible(timeout=WAIT_MS)
        expect(form).to_contain_text("scope 'admin'", timeout=WAIT_MS)
        page.fill("#key-input", running.served.keys[("acme", "admin")])
        page.get_by_role("button", name="Use this key").click()

        rows = page.locator("#version-rows tr")
        expect(rows).to_have_count(2, timeout=WAIT_MS)
        v2 = page.locator('#version-rows tr[data-version="2"]')
        expect(v2).to_contain_text("draft", timeout=WAIT_MS)
        expect(page.locator('#version-rows tr[data-version="1"]')).to_contain_text(
            "live", timeout=WAIT_MS
        )

        # promote: refused without a passed gate, then forced
        v2.get_by_role("button", name="Promote v2").click()
        note = page.locator("#versions-note")
        expect(note).to_contain_text("no passed scenarios gate", timeout=WAIT_MS)
        page.check("#force-promote")
        v2.get_by_role("button", name="Promote v2").click()
        expect(note).to_have_text("v2 is live.", timeout=WAIT_MS)
        expect(v2).to_contain_text("live", timeout=WAIT_MS)
        expect(page.locator("#rollback")).to_have_text("Roll back to v1", timeout=WAIT_MS)
        expect(page.locator("#decisions")).to_contain_text("(forced", timeout=WAIT_MS)

        # canary at the chosen share
        with running.api() as api:
            assert push(api, deadline_ms=4000) == 3
        page.get_by_role("button", name="Refresh").click()
        v3 = page.locator('#version-rows tr[data-version="3"]')
        expect(v3).to_contain_text("draft", timeout=WAIT_MS)
        page.fill("#canary-share", "20")
        page.uncheck("#force-promote")  # a canary needs the gate too ...
        v3.get_by_role("button", name="Canary v3").click()
        expect(note).to_contain_text("no passed scenarios gate", timeout=WAIT_MS)
        page.check("#force-promote")  # ... or force
        v3.get_by_role("button", name="Canary v3").click()
        expect(note).to_have_text("v3 on canary at 20%.", timeout=WAIT_MS)
        expect(page.locator("#canary-summary")).to_contain_text(
            "v3 on canary at 20%", timeout=WAIT_MS
        )
        expect(page.locator("#canary-arm-rows tr")).to_have_count(2, timeout=WAIT_MS)
        expect(page.locator("#canary-banner")).to_be_hidden(timeout=WAIT_MS)

        # the diff of two versions
        page.select_option("#diff-a", "1")
        page.select_option("#diff-b", "3")
        page.get_by_role("button", name="Show the diff").click()
        changed = page.locator('#diff-rows tr[data-key="agents.support.settings.deadline_ms"]')
        expect(changed).to_contain_text("4000", timeout=WAIT_MS)
        expect(page.locator("#diff-note")).to_contain_text("1 key differ", timeout=WAIT_MS)

        # the canary watch rolls it back: the banner says why
        reason = "canary v3 against live v2: failure rate 9.0% vs 1.0% (margin 2.0%)"
        op = RollbackCanary(
            "acme", 3, reason, running.served.service.clock.now_ms(), "canary watch"
        )
        running.run(running.served.service.store.uow.commit("acme", [op]))
        banner = page.locator("#canary-banner")
        expect(banner).to_be_visible(timeout=WAIT_MS)
        expect(banner).to_contain_text("Canary v3 was rolled back automatically", timeout=WAIT_MS)
        expect(banner).to_contain_text("failure rate 9.0%", timeout=WAIT_MS)
        expect(v3).to_contain_text("rolled back", timeout=WAIT_MS)
    finally:
        context.close()
    assert not errors, errors
