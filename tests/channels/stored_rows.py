"""Rows in the service's SQLite file, read beside it (WAL lets a reader in): what a webhook
stored, whatever customer or session it landed in."""

import sqlite3
from collections.abc import Awaitable, Callable, Container
from pathlib import Path

import httpx

from acf.bootstrap.embedded import database_path


def message_count(data_dir: Path) -> int:
    raw = sqlite3.connect(database_path(data_dir))
    try:
        (count,) = raw.execute("SELECT count(*) FROM messages").fetchone()
    finally:
        raw.close()
    return int(count)


async def post_and_check(
    data_dir: Path,
    send: Callable[[], Awaitable[httpx.Response]],
    stored_on_success: Callable[[httpx.Response], Container[int]],
    context: object = None,
) -> httpx.Response:
    """The fuzz tests' property: ``send`` (one signed webhook) never gets a 5xx; a 4xx
    stores nothing and says what was wrong; a 2xx stores what ``stored_on_success`` allows."""
    before = message_count(data_dir)
    answer = await send()
    assert answer.status_code < 500, (answer.status_code, answer.text, context)
    stored = message_count(data_dir) - before
    if answer.status_code >= 400:
        assert stored == 0, (answer.status_code, answer.text, context)
        assert answer.json()["message"], answer.text
    else:
        assert stored in stored_on_success(answer), (stored, answer.text, context)
    return answer
