"""The console's dead letters in headless Chromium, against `acf serve` with an agent whose
brain fails on "boom": the letter is listed, its Replay button runs it once (then it is
disabled and the letter says it ran), and the session gets the replayed answer."""

import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import START_TIMEOUT_S, _acf_command, _free_port
from tests.http.conftest import config

PIPELINE = """
from acf import PipelineResult


class Brittle:
    name = "brittle"
    version = "1"

    async def run(self, ctx):
        if ctx.replay is not None:
            asked = " ".join(ctx.replay.request.get("messages", []))
            return PipelineResult.reply(f"replayed: {asked}")
        text = " ".join(m.text or "" for m in ctx.messages)
        if "boom" in text:
            raise RuntimeError("the model is down")
        return PipelineResult.reply("ok")


def build() -> Brittle:
    return Brittle()
"""


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, chromium_path: Path
) -> Iterator[tuple[str, str]]:
    """(base URL, acme's key) of an `acf serve` whose acme agent is ``Brittle``."""
    tmp = tmp_path_factory.mktemp("dead-letters")
    package = f"brittle_{uuid.uuid4().hex[:8]}"
    (tmp / package).mkdir()
    (tmp / package / "__init__.py").write_text("", "utf-8")
    (tmp / package / "agent.py").write_text(textwrap.dedent(PIPELINE), "utf-8")
    body = config()
    support = body["tenants"]["acme"]["agents"]["support"]  # type: ignore[index]
    support["pipeline"] = {"kind": "python", "factory": f"{package}.agent:build"}
    support["settings"] = {"max_attempts": 1}
    path = tmp / "acf.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    data = tmp / "data"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    common = ["--config", str(path), "--data-dir", str(data)]
    log = (tmp / "serve.log").open("wb")
    process = subprocess.Popen(
        [*_acf_command(), "serve", "--port", str(port), *common],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"acf serve did not start: {(tmp / 'serve.log').read_text()}")
            time.sleep(0.1)
        made = subprocess.run(
            [*_acf_command(), "keys", "create", "--tenant", "acme", *common],
            capture_output=True,
            text=True,
            check=True,
        )
        yield base, made.stdout.strip().splitlines()[0]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def test_a_dead_letter_is_listed_and_replayed_once_from_the_console(
    served: tuple[str, str], browser: Browser
) -> None:
    base, key = served
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as api:
        customer = f"boom-{uuid.uuid4().hex[:8]}"
        message = {"agent": "support", "customer": customer, "client_message_id": "m1"}
        posted = api.post("/v1/messages", json={**message, "text": "boom, refund order 7"})
        session_id = posted.json()["session_id"]
        deadline = time.monotonic() + 15
        while not (letters := api.get("/v1/dead-letters").json()["items"]):
            assert time.monotonic() < deadline, "no dead letter was recorded"
            time.sleep(0.1)
        (letter,) = letters
        show(browser, base, key, letter["dead_letter_id"], session_id)
        replies = api.get(f"/v1/sessions/{session_id}").json()["replies"]
        assert replies[-1]["text"] == "replayed: boom, refund order 7"
        again = api.post(f"/v1/dead-letters/{letter['dead_letter_id']}/replay")
        assert again.status_code == 409


def show(browser: Browser, base: str, key: str, dead_letter_id: str, session_id: str) -> None:
    """The console lists the letter; its Replay runs it once; the letter opens its session."""
    context = browser.new_context(base_url=base)
    context.set_default_timeout(15_000)
    errors: list[str] = []
    page: Page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"/console?key={key}")
        item = page.locator(f'#dead-letters li[data-dead-letter-id="{dead_letter_id}"]')
        expect(item).to_contain_text("RuntimeError: the model is down")
        expect(item).to_contain_text("1 attempt")
        replay = item.get_by_role("button", name="Replay dead letter")
        expect(replay).to_be_enabled()
        replay.click()
        expect(page.locator("#dead-letters-note")).to_contain_text("requested")
        expect(replay).to_be_disabled()
        expect(item).to_contain_text("replayed in turn", timeout=20_000)
        item.get_by_role("button", name="RuntimeError").click()
        assert f"session={session_id}" in page.url
    finally:
        context.close()
    assert not errors, errors
