"""The console (/console) in headless Chromium against `acf serve` with the demo agent."""

import uuid
from collections.abc import Callable

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, wait_settled


def test_the_console_shows_a_sessions_timeline_and_ledger(
    new_page: Callable[[], Page], acf_server: Server, api: httpx.Client
) -> None:
    customer = f"console-{uuid.uuid4().hex[:8]}"
    accepted = api.post(
        "/v1/messages",
        json={
            "agent": "support",
            "customer": customer,
            "client_message_id": uuid.uuid4().hex,
            "text": "where is order 1004?",
        },
    )
    assert accepted.status_code == 202, accepted.text
    session_id = accepted.json()["session_id"]
    wait_settled(api, session_id)

    page = new_page()
    page.goto(f"/console?key={acf_server.key}")
    assert "key=" not in page.url
    session = page.get_by_role("button", name=customer)
    expect(session).to_be_visible()
    session.click()
    expect(session).to_have_attribute("aria-current", "true")
    assert f"session={session_id}" in page.url

    timeline = page.locator("#timeline")
    received = timeline.locator('li[data-kind="message.received"]')
    expect(received).to_have_count(1)
    expect(received).to_contain_text("where is order 1004?")
    expect(received).to_have_attribute("data-category", "messages")
    expect(timeline.locator('li[data-kind="turn.committed"]')).to_have_count(1)
    expect(timeline.locator('li[data-kind="turn.committed"]')).to_have_attribute(
        "data-category", "turns"
    )
    delivered = timeline.locator('li[data-kind="response.delivered"]')
    expect(delivered).to_have_count(1)
    expect(delivered).to_contain_text("Order 1004 is delivered")
    expect(timeline.locator("li").first.locator("time")).to_have_text("+0.000 s")

    ledger = page.locator("#ledger-rows tr")
    expect(ledger).to_have_count(1)
    expect(ledger).to_contain_text("lookup_order")
    expect(ledger).to_contain_text("succeeded")

    # Hiding a category hides its rows; the timeline stays live for new events.
    page.get_by_label("Deliveries").uncheck()
    expect(delivered).to_be_hidden()
    page.get_by_label("Deliveries").check()
    expect(delivered).to_be_visible()
    api.post(
        "/v1/messages",
        json={
            "agent": "support",
            "customer": customer,
            "client_message_id": uuid.uuid4().hex,
            "text": "thanks!",
        },
    ).raise_for_status()
    expect(received).to_have_count(2)
    expect(received.last).to_contain_text("thanks!")
    expect(timeline.locator('li[data-kind="response.delivered"]')).to_have_count(2)


def test_the_flagged_filter_lists_only_flagged_sessions(
    new_page: Callable[[], Page], acf_server: Server, api: httpx.Client
) -> None:
    customers = {}
    for what, text in (("flagged", "I want to talk to a person"), ("plain", "hello")):
        customer = f"{what}-{uuid.uuid4().hex[:8]}"
        accepted = api.post(
            "/v1/messages",
            json={
                "agent": "support",
                "customer": customer,
                "client_message_id": uuid.uuid4().hex,
                "text": text,
            },
        )
        assert accepted.status_code == 202, accepted.text
        wait_settled(api, accepted.json()["session_id"])
        customers[what] = customer

    page = new_page()
    page.goto(f"/console?key={acf_server.key}")
    expect(page.get_by_role("button", name=customers["plain"])).to_be_visible()
    expect(page.get_by_role("button", name=customers["flagged"])).to_be_visible()
    page.get_by_label("Flagged only").check()
    expect(page.get_by_role("button", name=customers["plain"])).to_have_count(0)
    expect(page.get_by_role("button", name=customers["flagged"])).to_contain_text("flagged")
