"""Property: whatever an Update posted with the right secret token carries, the answer is
never a 5xx, a 4xx stores nothing, and a 200 stores exactly the message it counts as
accepted. Bodies are random JSON and mutated Updates, posted over real HTTP to the service
on a SQLite file."""

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acf.entrypoints.http.context import ApiSettings
from tests.channels.fake_telegram import FakeTelegram, fake_telegram
from tests.channels.json_strategies import EDGE_INTS, json_values, mutated, shaped
from tests.channels.stored_rows import post_and_check
from tests.channels.telegram_updates import SECRET_TOKEN
from tests.channels.test_telegram_webhook import BOT_TOKEN, post, telegram_config
from tests.http.conftest import Api, serve_api

NOW = int(time.time())

dates = st.one_of(st.integers(NOW - 7 * 86400, NOW), st.sampled_from(EDGE_INTS))
chats = shaped(
    {
        "id": st.sampled_from([111, 2**40, -100123]),
        "type": st.sampled_from(["private"] * 3 + ["group"]),
    },
    {"first_name": st.text(max_size=10)},
)
users = shaped(
    {"id": st.integers(1, 10**9), "is_bot": st.booleans()},
    {"first_name": st.text(max_size=10), "last_name": st.text(max_size=10)},
)
files = shaped({"file_id": st.text(min_size=1, max_size=8)}, {"mime_type": st.text(max_size=10)})
photo_sizes = shaped(
    {"file_id": st.text(min_size=1, max_size=8)},
    {"width": st.integers(0, 4000), "height": st.integers(0, 4000)},
)
messages = shaped(
    {"message_id": st.integers(1, 10**6), "chat": chats, "date": dates},
    {
        "from": users,
        "edit_date": dates,
        "text": st.text(min_size=1, max_size=40),
        "caption": st.text(max_size=20),
        "photo": st.lists(photo_sizes, min_size=1, max_size=3),
        "document": files,
        "voice": files,
        "sticker": files,
    },
)
keyboard = shaped(
    {
        "inline_keyboard": st.lists(
            st.lists(
                shaped(
                    {"text": st.text(max_size=8), "callback_data": st.sampled_from(["yes", "no"])},
                    {},
                ),
                max_size=2,
            ),
            max_size=2,
        )
    },
    {},
)
callback_queries = shaped(
    {"id": st.text(min_size=1, max_size=8)},
    {
        "from": users,
        "data": st.sampled_from(["yes", "no"]),
        "message": shaped(
            {"message_id": st.integers(1, 100), "chat": chats, "date": dates},
            {"reply_markup": keyboard},
        ),
    },
)
update_ids = st.integers(0, 10**6)
documented = mutated(
    st.one_of(
        shaped({"update_id": update_ids, "message": messages}, {}),
        shaped({"update_id": update_ids, "edited_message": messages}, {}),
        shaped({"update_id": update_ids, "callback_query": callback_queries}, {}),
        shaped({"update_id": update_ids}, {"channel_post": messages}),
    )
)
updates = st.one_of(documented, documented, documented, json_values, st.binary(max_size=40))


@pytest.fixture
def bot_api() -> Iterator[FakeTelegram]:
    with fake_telegram() as server:
        yield server


@pytest.fixture
async def tg_api(
    tmp_path: Path, bot_api: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Api]:
    monkeypatch.setenv("TG_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("TG_SECRET_TOKEN", SECRET_TOKEN)
    body = telegram_config(bot_api.url, rate="100000/second")
    async for served in serve_api(tmp_path, body, ApiSettings(max_webhook_bytes=64 * 1024)):
        yield served


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=updates)
async def test_an_update_never_gets_a_5xx_and_a_4xx_stores_nothing(
    tg_api: Api, tmp_path: Path, body: Any
) -> None:
    await post_and_check(
        tmp_path / "data", lambda: post(tg_api, body), lambda a: {a.json()["accepted"]}, body
    )
