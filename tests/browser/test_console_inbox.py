"""The console's inbox (/console/inbox) in headless Chromium, against acf served in this
process on SQLite.

- The inbox: an ``api`` key is asked to give way to an operator one; a session handed to a
  person is listed with its reason and unanswered message; a reply before the claim is
  refused in words; claim; a reply with buttons (an operator reply in the timeline and the
  outbox, delivered to the customer); an internal note (never sent); resume with a note
  (the conversation leaves the open inbox, the agent answers the next message).
- The holds: a handed-off session is held with a person; blocking a customer lists the
  block and holds their session as blocked (blocking again is refused in words); unblock
  lifts it; a held conversation opens in the inbox tab.
- A reply acf committed whose answer the console did not get (409 ``in_progress``) is sent
  again with the same Idempotency-Key after ``Retry-After``: the customer gets it once.
"""

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from acf.ports.api_keys import new_api_key
from tests.browser.conftest import SETTLE_TIMEOUT_S, START_TIMEOUT_S, wait_settled
from tests.integration.config_api_server import Served, serve

T = TypeVar("T")
WAIT_MS = 20_000
OPERATOR = "alice"


@dataclass
class Running:
    served: Served
    loop: asyncio.AbstractEventLoop
    operator_key: str
    operator_key_id: str

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the server's loop (its store belongs to it)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def client(self, key: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.served.base_url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, chromium_path: Path) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("console-inbox")
    started = threading.Event()
    box: list[Running] = []
    stops: list[asyncio.Event] = []

    def run() -> None:
        async def main() -> None:
            stop = asyncio.Event()
            stops.append(stop)
            async with serve("sqlite", tmp) as served:
                service = served.service
                key = new_api_key()
                now = service.clock.now_ms()
                made = await service.api_keys.create("acme", OPERATOR, key, now, scope="operator")
                box.append(Running(served, asyncio.get_running_loop(), key, made.key_id))
                started.set()
                await stop.wait()

        try:
            asyncio.run(main())
        finally:
            started.set()

    thread = threading.Thread(target=run, name="acf-console-inbox", daemon=True)
    thread.start()
    assert started.wait(START_TIMEOUT_S) and box, "acf did not start"
    try:
        yield box[0]
    finally:
        box[0].loop.call_soon_threadsafe(stops[0].set)
        thread.join(START_TIMEOUT_S)


def send(api: httpx.Client, customer: str, text: str) -> str:
    body = {"agent": "support", "customer": customer, "client_message_id": uuid.uuid4().hex}
    accepted = api.post("/v1/messages", json={**body, "text": text})
    assert accepted.status_code == 202, accepted.text
    session_id: str = accepted.json()["session_id"]
    return session_id


def wait_for_reply(api: httpx.Client, session_id: str, text: str) -> dict[str, Any]:
    """Poll the session's outbox until a reply with ``text`` went out; that reply."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    replies: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        detail = api.get(f"/v1/sessions/{session_id}").raise_for_status().json()
        replies = [r for r in detail["replies"] if r["text"] == text]
        if replies and replies[0]["status"] in {"sent", "delivered", "read"}:
            return replies[0]
        time.sleep(0.1)
    pytest.fail(f"no reply {text!r} went out: {replies}")


@pytest.fixture
def clients(running: Running) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """The customer API (an ``api`` key) and the operator's (an ``operator`` key)."""
    with (
        running.client(running.served.keys[("acme", "api")]) as api,
        running.client(running.operator_key) as operator,
    ):
        yield api, operator


@pytest.fixture
def page(running: Running, browser: Browser) -> Iterator[Page]:
    """A page of its own browser context; JavaScript errors on it fail the test."""
    context = browser.new_context(base_url=running.served.base_url)
    context.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    opened = context.new_page()
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, errors


def handed_off(api: httpx.Client, operator: httpx.Client, customer: str) -> str:
    """A session the agent answered once, then handed to a person, with one message since."""
    session_id = send(api, customer, "hello")
    wait_settled(api, session_id)
    handed = operator.post(
        f"/v1/sessions/{session_id}/handoff", json={"reason": "asked for a person"}
    )
    assert handed.status_code == 200, handed.text
    assert send(api, customer, "is anybody there?") == session_id
    return session_id


def test_the_inbox(
    running: Running, clients: tuple[httpx.Client, httpx.Client], page: Page
) -> None:
    api, operator = clients
    customer = f"ana-{uuid.uuid4().hex[:6]}"
    session_id = handed_off(api, operator, customer)
    check_the_inbox(page, running, api, session_id, customer)


def test_the_holds(
    running: Running, clients: tuple[httpx.Client, httpx.Client], page: Page
) -> None:
    api, operator = clients
    bob = f"bob-{uuid.uuid4().hex[:6]}"
    handed_off(api, operator, bob)
    page.goto(f"/console/inbox?key={running.operator_key}")
    check_the_holds(page, running, api, bob)


def check_the_inbox(
    page: Page, running: Running, api: httpx.Client, session_id: str, customer: str
) -> None:
    # an api key: the page asks for an operator one
    page.goto(f"/console/inbox?key={running.served.keys[('acme', 'api')]}")
    form = page.locator("#key-form")
    expect(form).to_be_visible(timeout=WAIT_MS)
    expect(form).to_contain_text("scope 'operator'", timeout=WAIT_MS)
    page.fill("#key-input", running.operator_key)
    page.get_by_role("button", name="Use this key").click()

    # the handed-off session waits, with its reason and the message nobody answered
    entry = page.locator(f'#inbox button[data-session-id="{session_id}"]')
    expect(entry).to_be_visible(timeout=WAIT_MS)
    expect(entry).to_contain_text(customer, timeout=WAIT_MS)
    expect(entry).to_contain_text("asked for a person", timeout=WAIT_MS)
    expect(entry).to_contain_text("1 unanswered", timeout=WAIT_MS)
    expect(entry).to_contain_text("unclaimed", timeout=WAIT_MS)
    expect(entry).to_have_attribute("data-state", "waiting", timeout=WAIT_MS)
    entry.click()
    expect(entry).to_have_attribute("aria-current", "true", timeout=WAIT_MS)
    timeline = page.locator("#timeline")
    expect(timeline.locator('li[data-kind="session.handed_off"]')).to_have_count(1, timeout=WAIT_MS)
    expect(timeline.locator('li[data-kind="message.received"]').last).to_contain_text(
        "is anybody there?", timeout=WAIT_MS
    )
    expect(page.locator("#ledger-empty")).to_be_visible(timeout=WAIT_MS)
    notice = page.locator('#outbox li[data-author="system"]')
    expect(notice).to_contain_text("a member of our team", timeout=WAIT_MS)

    # a reply before the claim: refused, in words
    note = page.locator("#action-note")
    page.fill("#reply-text", "Hi, Alice here.")
    page.get_by_role("button", name="Send reply").click()
    expect(note).to_contain_text("Claim the conversation first", timeout=WAIT_MS)
    expect(note).to_have_class("action-note error-text", timeout=WAIT_MS)

    # claim, then reply with buttons
    page.get_by_role("button", name="Claim", exact=True).click()
    expect(note).to_have_text("You hold this conversation now.", timeout=WAIT_MS)
    expect(entry).to_contain_text(f"held by {OPERATOR}", timeout=WAIT_MS)
    expect(entry).to_have_attribute("data-state", "claimed", timeout=WAIT_MS)
    page.fill("#reply-text", "Hi, Alice here. Shall I refund the order?")
    page.fill("#reply-buttons", "Yes please, No thanks")
    page.get_by_role("button", name="Send reply").click()
    expect(note).to_contain_text("Reply queued", timeout=WAIT_MS)
    replied = timeline.locator('li[data-kind="operator.replied"]')
    expect(replied).to_have_count(1, timeout=WAIT_MS)
    expect(replied).to_have_attribute("data-category", "people", timeout=WAIT_MS)
    mine = page.locator('#outbox li[data-author="operator"]')
    expect(mine).to_have_count(1, timeout=WAIT_MS)
    expect(mine).to_contain_text("Shall I refund the order?", timeout=WAIT_MS)
    expect(mine).to_contain_text("[Yes please] [No thanks]", timeout=WAIT_MS)
    expect(mine).to_contain_text(f"Operator ({OPERATOR})", timeout=WAIT_MS)
    sent = wait_for_reply(api, session_id, "Hi, Alice here. Shall I refund the order?")
    assert [b.get("title") for b in sent["buttons"]] == ["Yes please", "No thanks"]
    expect(mine).to_have_attribute("data-status", sent["status"], timeout=WAIT_MS)
    expect(entry).not_to_contain_text("unanswered", timeout=WAIT_MS)

    # an internal note: listed with its author, never sent
    page.fill("#note-text", "refund approved by billing")
    page.get_by_role("button", name="Add note").click()
    expect(note).to_contain_text("Note added", timeout=WAIT_MS)
    written = page.locator("#notes li")
    expect(written).to_have_count(1, timeout=WAIT_MS)
    expect(written).to_contain_text("refund approved by billing", timeout=WAIT_MS)
    expect(written).to_contain_text(OPERATOR, timeout=WAIT_MS)
    detail = api.get(f"/v1/sessions/{session_id}").raise_for_status().json()
    assert all("refund approved" not in r["text"] for r in detail["replies"])

    # resume with a note: the conversation leaves the open inbox, the agent answers again
    page.fill("#handover-note", "refund done; be kind")
    page.get_by_role("button", name="Resume the agent").click()
    expect(note).to_have_text("The agent answers again and sees your note.", timeout=WAIT_MS)
    expect(timeline.locator('li[data-kind="session.resumed"]')).to_have_count(1, timeout=WAIT_MS)
    expect(entry).to_have_count(0, timeout=WAIT_MS)
    page.select_option("#inbox-state", "resolved")
    expect(entry).to_have_attribute("data-state", "resolved", timeout=WAIT_MS)
    send(api, customer, "thanks!")
    wait_settled(api, session_id)


def check_the_holds(page: Page, running: Running, api: httpx.Client, customer: str) -> None:
    mallory = f"mallory-{uuid.uuid4().hex[:6]}"
    blocked_session = send(api, mallory, "hello")
    wait_settled(api, blocked_session)
    page.get_by_role("tab", name="Holds").click()
    expect(page.get_by_role("tab", name="Holds")).to_have_attribute(
        "aria-selected", "true", timeout=WAIT_MS
    )
    expect(page.locator("#panel-holds")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#panel-inbox")).to_be_hidden(timeout=WAIT_MS)
    # the handed-off session is held with a person, its message waiting
    human = page.locator(f'#hold-rows tr[data-customer="{customer}"]')
    expect(human).to_have_attribute("data-mode", "human", timeout=WAIT_MS)
    expect(human).to_contain_text("with a person", timeout=WAIT_MS)
    expect(human.locator("td.count")).to_have_text("1", timeout=WAIT_MS)

    # block a customer: listed as active, their open session held as blocked
    note = page.locator("#blocks-note")
    page.select_option("#block-channel", "web")
    page.fill("#block-customer", mallory)
    page.fill("#block-reason", "threatened the staff")
    page.select_option("#block-expiry", "86400")
    page.get_by_role("button", name="Block", exact=True).click()
    expect(note).to_have_text(f"{mallory} (web) is blocked.", timeout=WAIT_MS)
    blocked = page.locator(f'#block-rows tr[data-customer="{mallory}"]')
    expect(blocked).to_have_count(1, timeout=WAIT_MS)
    expect(blocked).to_have_attribute("data-active", "true", timeout=WAIT_MS)
    expect(blocked).to_contain_text("threatened the staff", timeout=WAIT_MS)
    expect(blocked).to_contain_text("active", timeout=WAIT_MS)
    held = page.locator(f'#hold-rows tr[data-customer="{mallory}"]')
    expect(held).to_have_attribute("data-mode", "blocked", timeout=WAIT_MS)
    expect(held).to_contain_text("blocked", timeout=WAIT_MS)
    expect(page.locator('#abuse-summary dt[data-key="blocks_active"] + dd')).to_have_text(
        "1", timeout=WAIT_MS
    )

    # blocking them again: refused in words, the list unchanged
    page.fill("#block-customer", mallory)
    page.fill("#block-reason", "again")
    page.get_by_role("button", name="Block", exact=True).click()
    expect(note).to_have_text(
        f"Could not block the customer: {mallory} is on the block list of web already.",
        timeout=WAIT_MS,
    )
    expect(blocked).to_have_count(1, timeout=WAIT_MS)

    # unblock: gone from the active list and the holds, shown as lifted among all blocks
    page.get_by_role("button", name=f"Unblock {mallory} on web").click()
    expect(note).to_contain_text(f"{mallory} (web) is unblocked", timeout=WAIT_MS)
    expect(blocked).to_have_count(0, timeout=WAIT_MS)
    expect(held).to_have_count(0, timeout=WAIT_MS)
    page.check("#show-lifted")
    expect(blocked).to_have_count(1, timeout=WAIT_MS)
    expect(blocked).to_have_attribute("data-active", "false", timeout=WAIT_MS)
    # a block names its key (by the operator's name once the page saw it elsewhere)
    lifted = re.compile(f"lifted by ({OPERATOR}|{running.operator_key_id}) at")
    expect(blocked).to_contain_text(lifted, timeout=WAIT_MS)
    assert send(api, mallory, "sorry") == blocked_session
    wait_settled(api, blocked_session)

    # a held conversation opens in the inbox tab
    page.get_by_role("button", name=f"Open the conversation with {customer}").click()
    expect(page.get_by_role("tab", name="Inbox")).to_have_attribute(
        "aria-selected", "true", timeout=WAIT_MS
    )
    entry = page.locator(f'#inbox button[data-customer="{customer}"]')
    expect(entry).to_have_attribute("aria-current", "true", timeout=WAIT_MS)
    expect(page.locator("#conversation-facts")).to_contain_text(customer, timeout=WAIT_MS)


def test_a_reply_acf_took_is_sent_again_with_its_key(
    running: Running, clients: tuple[httpx.Client, httpx.Client], page: Page
) -> None:
    """acf committed the reply but the console got 409 ``in_progress`` (its answer not
    stored yet): the console keeps the Idempotency-Key and sends the reply again with it
    after ``Retry-After``, so it gets the first 202 and the customer gets the reply once;
    the next reply takes a new key."""
    api, operator = clients
    customer = f"cy-{uuid.uuid4().hex[:6]}"
    session_id = handed_off(api, operator, customer)
    claimed = operator.post(f"/v1/sessions/{session_id}/claim", json={})
    assert claimed.status_code == 200, claimed.text
    keys: list[str | None] = []
    in_progress = {
        "error": "in_progress",
        "message": f"session {session_id}: its answer is not stored yet",
        "problems": [],
    }

    def answer(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key"))
        committed = route.fetch()  # acf sends the reply; the console is told to wait
        if len(keys) == 1:
            assert committed.status == 202, committed.text()
            route.fulfill(status=409, json=in_progress, headers={"Retry-After": "1"})
        else:
            route.fulfill(response=committed)

    page.route("**/operator-messages", answer)
    page.goto(f"/console/inbox?key={running.operator_key}")
    entry = page.locator(f'#inbox button[data-session-id="{session_id}"]')
    entry.click()
    expect(entry).to_have_attribute("aria-current", "true", timeout=WAIT_MS)
    note = page.locator("#action-note")
    page.fill("#reply-text", "Checking your order now.")
    page.get_by_role("button", name="Send reply").click()
    expect(note).to_contain_text("Reply queued", timeout=WAIT_MS)
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1], keys
    wait_for_reply(api, session_id, "Checking your order now.")
    detail = api.get(f"/v1/sessions/{session_id}").raise_for_status().json()
    assert [r["text"] for r in detail["replies"]].count("Checking your order now.") == 1

    page.fill("#reply-text", "Found it.")
    page.get_by_role("button", name="Send reply").click()
    expect(note).to_contain_text("Reply queued", timeout=WAIT_MS)
    assert len(keys) == 3 and keys[2] and keys[2] != keys[0], keys
