"""Contract: EmailThreads, on every backend (row-level security included on PostgreSQL)."""

import pytest

from acf.ports.email_threads import MAX_REFERENCES, ReplyContext, reply_references
from acf.ports.store import Store

OURS = "<acf.1.x@acme.example>"


async def test_a_reply_threads_on_the_customers_latest_mail(store: Store) -> None:
    threads = store.email_threads
    assert await threads.reply_context("t1", "ann@example.com") is None
    await threads.record_inbound("t1", "ann@example.com", "<m1@mail>", [], "Order 1001", 1_000)
    await threads.record_inbound(
        "t1", "ann@example.com", "<m2@mail>", ["<m0@mail>", "<m1@mail>"], "Re: Order 1001", 2_000
    )
    assert await threads.reply_context("t1", "ann@example.com") == ReplyContext(
        "Re: Order 1001", "<m2@mail>", ("<m0@mail>", "<m1@mail>", "<m2@mail>")
    )


async def test_two_mails_in_one_millisecond_thread_on_the_one_recorded_last(
    store: Store,
) -> None:
    threads = store.email_threads
    await threads.record_inbound("t1", "ann@example.com", "<a@mail>", [], "first", 1_000)
    await threads.record_inbound("t1", "ann@example.com", "<b@mail>", [], "second", 1_000)
    context = await threads.reply_context("t1", "ann@example.com")
    assert context is not None and context.in_reply_to == "<b@mail>"


async def test_recording_a_mail_twice_keeps_the_first_record(store: Store) -> None:
    threads = store.email_threads
    await threads.record_inbound("t1", "ann@example.com", "<m1@mail>", [], "first", 1_000)
    await threads.record_inbound("t1", "ann@example.com", "<m2@mail>", [], "second", 2_000)
    # A provider's retry of the first mail, later: it must not become the latest.
    await threads.record_inbound("t1", "ann@example.com", "<m1@mail>", [], "first", 3_000)
    await threads.record_outbound("t1", "ann@example.com", OURS, [], "Re: first", 4_000)
    await threads.record_outbound("t1", "bob@example.com", OURS, [], "Re: first", 5_000)
    context = await threads.reply_context("t1", "ann@example.com")
    assert context is not None and context.in_reply_to == "<m2@mail>"
    # Our ids are unique by construction; a clash answers the newest recipient.
    assert await threads.find_customer("t1", OURS, []) == "bob@example.com"


async def test_in_reply_to_is_matched_first_then_the_newest_reference(store: Store) -> None:
    threads = store.email_threads
    await threads.record_outbound("t1", "ann@example.com", "<ours-1@acme>", [], "Re: a", 1_000)
    await threads.record_outbound("t1", "bob@example.com", "<ours-2@acme>", [], "Re: b", 2_000)
    find = threads.find_customer
    assert await find("t1", "<ours-1@acme>", ["<ours-2@acme>"]) == "ann@example.com"
    assert await find("t1", "<theirs@mail>", ["<ours-1@acme>", "<ours-2@acme>"]) == (
        "bob@example.com"
    )
    assert await find("t1", None, ["<ours-1@acme>", "<unknown@mail>"]) == "ann@example.com"
    assert await find("t1", "<unknown@mail>", []) is None
    assert await find("t1", None, []) is None


async def test_only_message_ids_we_sent_name_a_customer(store: Store) -> None:
    threads = store.email_threads
    await threads.record_inbound("t1", "ann@example.com", "<ann-1@mail>", [], "hello", 1_000)
    # Someone else quoting Ann's own Message-ID does not join Ann's conversation.
    assert await threads.find_customer("t1", "<ann-1@mail>", ["<ann-1@mail>"]) is None


async def test_outbound_mails_are_not_a_reply_context(store: Store) -> None:
    threads = store.email_threads
    await threads.record_outbound("t1", "ann@example.com", OURS, [], "Hello", 1_000)
    assert await threads.reply_context("t1", "ann@example.com") is None


async def test_tenants_do_not_see_each_others_threads(store: Store) -> None:
    threads = store.email_threads
    await threads.record_outbound("t2", "ann@example.com", OURS, [], "Re: b", 1_000)
    await threads.record_inbound("t2", "ann@example.com", "<m1@mail>", [], "b", 1_000)
    assert await threads.find_customer("t1", OURS, [OURS]) is None
    assert await threads.reply_context("t1", "ann@example.com") is None
    # The same ids in t1 are t1's own rows; t2's are unchanged.
    await threads.record_inbound("t1", "ann@example.com", "<m1@mail>", [], "a", 2_000)
    await threads.record_outbound("t1", "cy@example.com", OURS, [], "Re: a", 2_000)
    assert await threads.find_customer("t2", OURS, []) == "ann@example.com"
    t2 = await threads.reply_context("t2", "ann@example.com")
    assert t2 is not None and t2.subject == "b"


@pytest.mark.parametrize(
    ("parent", "refs", "expected"),
    [
        ("<p>", [], ("<p>",)),
        ("<p>", ["<a>", "<b>"], ("<a>", "<b>", "<p>")),
        ("<p>", ["<a>", "<p>"], ("<a>", "<p>")),  # never the parent twice
    ],
)
def test_reply_references_follow_rfc_5322(
    parent: str, refs: list[str], expected: tuple[str, ...]
) -> None:
    assert reply_references(parent, refs) == expected


def test_long_reference_chains_keep_the_first_and_the_newest() -> None:
    refs = [f"<r{i}>" for i in range(50)]
    chain = reply_references("<p>", refs)
    assert len(chain) == MAX_REFERENCES
    assert chain[0] == "<r0>" and chain[-2:] == ("<r49>", "<p>")
    assert chain[1] == f"<r{50 - MAX_REFERENCES + 2}>"
