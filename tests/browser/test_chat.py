"""The web chat (/) in headless Chromium against `acf serve` with the demo agent."""

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import (
    SETTLE_TIMEOUT_S,
    Server,
    delivered,
    event_kinds,
    wait_settled,
)

KEYSTROKE_MS = 30
"""A fast typist: enough for the page to send its typing signals between fragments."""


def type_and_send(page: Page, text: str, delay_ms: int = KEYSTROKE_MS) -> None:
    box = page.get_by_label("Your message")
    box.press_sequentially(text, delay=delay_ms)
    box.press("Enter")


def session_id_of(page: Page) -> str:
    expect(page.locator("body")).to_have_attribute("data-session-id", re.compile(".+"))
    value = page.locator("body").get_attribute("data-session-id")
    assert value
    return value


def agent_bubbles(page: Page) -> Any:
    return page.locator("#messages li.from-agent")


def settle_page(page: Page, api: httpx.Client, session_id: str) -> list[dict[str, Any]]:
    """Wait until the page's sends were accepted and the session is settled with all of them,
    then until the page shows every delivered reply; the delivered replies.

    Waiting for the sends first matters under load: the last message's POST may still be in
    flight while the session looks settled with the messages before it."""
    mine = page.locator("#messages li.from-customer")
    unsent = page.locator("#messages li.from-customer:not([data-state='sent'])")
    expect(unsent).to_have_count(0, timeout=SETTLE_TIMEOUT_S * 1000)
    replies = delivered(wait_settled(api, session_id, messages=mine.count()))
    expect(agent_bubbles(page)).to_have_count(len(replies))
    page.wait_for_timeout(500)  # anything late would show up now
    expect(agent_bubbles(page)).to_have_count(len(replies))
    expect(page.locator("#activity li")).to_have_count(0)
    return replies


def test_the_key_in_the_address_is_stored_and_removed(chat: Page, acf_server: Server) -> None:
    assert "key=" not in chat.url
    stored = chat.evaluate("localStorage.getItem('acf.apiKey')")
    assert stored == acf_server.key
    chat.reload()
    expect(chat.locator("#conversation")).to_be_visible()
    expect(chat.locator("#key-form")).to_be_hidden()


def test_without_a_key_the_page_asks_for_one(
    new_page: Callable[[], Page], acf_server: Server
) -> None:
    page = new_page()
    page.goto("/")
    expect(page.locator("#key-form")).to_be_visible()
    expect(page.locator("#conversation")).to_be_hidden()
    page.get_by_label("API key").fill(acf_server.key)
    page.get_by_role("button", name="Use this key").click()
    expect(page.locator("#conversation")).to_be_visible()
    expect(page.get_by_label("Your message")).to_be_focused()


def test_a_burst_of_three_fragments_gets_one_reply(chat: Page, api: httpx.Client) -> None:
    for fragment in ("hi", "I want to know", "where is order 1001"):
        type_and_send(chat, fragment)
    session_id = session_id_of(chat)
    replies = settle_page(chat, api, session_id)

    assert len(replies) == 1, replies
    assert "1001" in replies[0]["text"]
    bubble = agent_bubbles(chat)
    expect(bubble).to_have_count(1)
    expect(bubble).to_contain_text("Order 1001 is shipped")
    mine = chat.locator("#messages li.from-customer")
    expect(mine).to_have_count(3)
    expect(mine.locator(".meta")).to_have_text(["sent", "sent", "sent"])
    # All three fragments were one thought: answered by one committed turn, and the page
    # told acf that the customer was typing between them.
    detail = wait_settled(api, session_id)
    assert detail["last_seq"] == 3
    turns = api.get(f"/v1/sessions/{session_id}/turns").json()["items"]
    committed = [t for t in turns if t["phase"] == "committed"]
    assert len(committed) == 1, turns
    assert (committed[0]["from_seq"], committed[0]["to_seq"]) == (0, 3)
    kinds = event_kinds(api, session_id)
    assert "typing.started" in kinds
    assert "typing.stopped" in kinds


def test_a_correction_during_a_slow_reply_shows_only_the_corrected_answer(
    chat: Page, api: httpx.Client
) -> None:
    type_and_send(chat, "where is order 1001")
    # The answer is being computed (the demo's order lookup takes 2 s): correct it now.
    expect(chat.locator('#activity li[data-activity="turn"]')).to_be_visible()
    type_and_send(chat, "sorry, I meant order 1002", delay_ms=10)
    session_id = session_id_of(chat)
    replies = settle_page(chat, api, session_id)

    assert len(replies) == 1, replies
    assert "1002" in replies[0]["text"]
    assert not [r for r in replies if "1001" in r["text"]]
    expect(agent_bubbles(chat)).to_have_count(1)
    expect(agent_bubbles(chat)).to_contain_text("Order 1002 is processing")
    expect(agent_bubbles(chat).filter(has_text="1001")).to_have_count(0)
    assert "turn.superseded" in event_kinds(api, session_id)


def test_confirming_a_refund_with_the_button_runs_it_once(chat: Page, api: httpx.Client) -> None:
    type_and_send(chat, "refund order 1003")
    question = agent_bubbles(chat).filter(has_text="Refund")
    expect(question).to_have_count(1)
    expect(question).to_contain_text("order 1003")
    yes = question.get_by_role("button", name="Yes")
    no = question.get_by_role("button", name="No")
    expect(yes).to_be_enabled()
    expect(no).to_be_enabled()
    yes.click()
    expect(yes).to_be_disabled()
    expect(no).to_be_disabled()
    expect(yes).to_have_attribute("aria-pressed", "true")
    expect(chat.locator("#messages li.from-customer").last).to_contain_text("Yes")

    done = agent_bubbles(chat).filter(has_text="Done")
    expect(done).to_have_count(1)
    expect(done).to_contain_text("order 1003")
    session_id = session_id_of(chat)
    replies = settle_page(chat, api, session_id)
    assert len(replies) == 2, replies
    # While the refund ran, the page showed the tool's progress line.
    seen = chat.evaluate("window.__activitySeen")
    assert "Refunding your order..." in seen, seen

    refunds = api.get("/v1/ledger", params={"tool": "refund_order"}).json()["items"]
    assert len(refunds) == 1, refunds
    assert refunds[0]["status"] == "succeeded"
    assert refunds[0]["session_id"] == session_id
    assert refunds[0]["args"] == {"order_id": "1003"}

    # Shown again after a reload, the settled question's buttons stay disabled.
    chat.reload()
    expect(agent_bubbles(chat)).to_have_count(2)
    expect(question.get_by_role("button", name="Yes")).to_be_disabled()
    expect(question.get_by_role("button", name="No")).to_be_disabled()


def test_the_sse_parser_handles_split_chunks_comments_and_crlf(chat: Page) -> None:
    messages = chat.evaluate(
        """async () => {
          const { SseParser } = await import("/static/sse.js");
          const parser = new SseParser();
          const chunks = [
            ": ping\\n\\nid: 7\\nevent: turn.started\\ndata: {\\"a\\"",
            ":1}\\r",
            "\\n\\r\\nda",
            "ta: x\\ndata: y\\n",
            "\\n: ping\\r\\n\\r\\nid: 9\\ndata: last\\n\\nid: 10\\ndata: unfinished\\n",
          ];
          const out = [];
          for (const chunk of chunks) out.push(...parser.push(chunk));
          return { out, comments: parser.comments };
        }"""
    )
    assert messages["out"] == [
        {"id": "7", "event": "turn.started", "data": '{"a":1}'},
        {"id": "7", "event": "message", "data": "x\ny"},
        {"id": "9", "event": "message", "data": "last"},
    ]
    assert messages["comments"] == 2


def test_over_the_rate_limit_the_page_waits_retry_after_and_sends_again(
    chat: Page, api: httpx.Client
) -> None:
    refused: list[str] = []

    def refuse_once(route: Route) -> None:
        if refused:
            route.continue_()
            return
        refused.append(route.request.post_data or "")
        route.fulfill(
            status=429,
            headers={"Retry-After": "1", "Content-Type": "application/json"},
            body=json.dumps(
                {"error": "rate_limited", "message": "over the rate; retry in 1 s", "problems": []}
            ),
        )

    chat.route("**/v1/messages", refuse_once)
    type_and_send(chat, "hello")
    notice = chat.get_by_role("alert")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("1 s")
    mine = chat.locator("#messages li.from-customer")
    expect(mine).to_have_attribute("data-state", "waiting")
    expect(mine).to_have_attribute("data-state", "sent")
    expect(notice).to_be_hidden()
    expect(agent_bubbles(chat)).to_have_count(1)
    assert len(refused) == 1
    detail = wait_settled(api, session_id_of(chat))
    assert detail["last_seq"] == 1
    assert json.loads(refused[0])["client_message_id"] == detail["messages"][0]["client_message_id"]


def test_a_failed_send_shows_the_error_inline_and_retries_with_the_same_id(
    chat: Page, api: httpx.Client
) -> None:
    chat.route("**/v1/messages", lambda route: route.abort("connectionrefused"))
    type_and_send(chat, "hello there")
    mine = chat.locator("#messages li.from-customer")
    expect(mine).to_have_attribute("data-state", "failed")
    expect(mine).to_contain_text("cannot be reached")
    chat.unroute("**/v1/messages")
    mine.get_by_role("button", name="Retry").click()
    expect(mine).to_have_attribute("data-state", "sent")
    expect(agent_bubbles(chat)).to_have_count(1)
    detail = wait_settled(api, session_id_of(chat))
    assert detail["last_seq"] == 1


def test_a_reload_shows_the_conversation_again(chat: Page, api: httpx.Client) -> None:
    type_and_send(chat, "hello")
    session_id = session_id_of(chat)
    settle_page(chat, api, session_id)
    type_and_send(chat, "where is order 1004")
    settle_page(chat, api, session_id)
    before = chat.locator("#messages li.bubble").all_inner_texts()

    chat.reload()
    expect(chat.locator("#messages li.from-agent")).to_have_count(2)
    expect(chat.locator("#messages li.from-customer")).to_have_count(2)
    after = chat.locator("#messages li.bubble").all_inner_texts()
    assert [text.split("\n")[0] for text in after] == [text.split("\n")[0] for text in before]
    assert session_id_of(chat) == session_id


def test_after_the_stream_ends_the_page_resumes_from_the_last_event_id(
    chat: Page, api: httpx.Client
) -> None:
    """The first stream answers with the session's first event only and ends; the page
    reconnects with Last-Event-ID and gets the rest once."""
    requests: list[dict[str, str]] = []

    def first_ends_early(route: Route) -> None:
        requests.append(route.request.headers)
        if len(requests) > 1:
            route.continue_()
            return
        session_id = route.request.url.split("/v1/sessions/")[1].split("/")[0]
        first = api.get(f"/v1/sessions/{session_id}/events").json()["items"][0]
        body = f": ping\n\nid: {first['event_id']}\nevent: {first['kind']}\n"
        body += f"data: {json.dumps(first)}\n\n"
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body)

    chat.route("**/v1/sessions/*/stream*", first_ends_early)
    type_and_send(chat, "hello")
    session_id = session_id_of(chat)
    replies = settle_page(chat, api, session_id)
    assert len(replies) == 1
    expect(chat.locator("#messages li.from-customer")).to_have_count(1)
    assert len(requests) >= 2
    first_id = api.get(f"/v1/sessions/{session_id}/events").json()["items"][0]["event_id"]
    assert "last-event-id" not in requests[0]
    assert requests[1]["last-event-id"] == str(first_id)
    assert requests[1]["authorization"] == requests[0]["authorization"]


def test_a_reply_ready_while_the_customer_types_waits_for_their_message(
    chat: Page, api: httpx.Client
) -> None:
    """Hold-while-typing (issue 23): the answer to the first message is ready while the
    customer types the next one; it is held, not sent, the page stops showing the agent
    typing, and the message supersedes it: one reply, to both."""
    type_and_send(chat, "where is order 1001")
    expect(chat.locator('#activity li[data-activity="turn"]')).to_be_visible()
    box = chat.get_by_label("Your message")
    # About 4 s of typing: the demo's 2 s order lookup ends meanwhile.
    box.press_sequentially("sorry, I meant order 1002", delay=160)
    session_id = session_id_of(chat)
    assert "turn.held" in event_kinds(api, session_id)
    expect(agent_bubbles(chat)).to_have_count(0)
    expect(chat.locator('#activity li[data-activity="turn"]')).to_have_count(0)
    box.press("Enter")
    replies = settle_page(chat, api, session_id)

    assert len(replies) == 1, replies
    assert "1002" in replies[0]["text"]
    kinds = event_kinds(api, session_id)
    assert "turn.hold_ended" in kinds and "turn.superseded" in kinds
