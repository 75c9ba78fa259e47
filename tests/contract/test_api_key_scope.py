"""API keys carry a scope ("api" unless created otherwise; "admin" and "operator" are the
others), on both backends."""

from pathlib import Path

import pytest

from acf.adapters.postgres import PgStore
from acf.adapters.sqlite.api_keys import SqliteApiKeys
from acf.domain.errors import InvalidValue
from acf.ports.api_keys import ApiKeys, new_api_key
from acf.ports.store import Store


def api_keys(store: Store, tmp_path: Path) -> ApiKeys:
    if isinstance(store, PgStore):
        return store.api_keys
    return SqliteApiKeys(tmp_path / "acf.db")


async def test_scope_is_stored_and_read_back(store: Store, tmp_path: Path) -> None:
    keys = api_keys(store, tmp_path)
    plain, admin = new_api_key(), new_api_key()
    created = await keys.create("t1", "ci", plain, 1_000)
    assert created.scope == "api"
    assert (await keys.create("t1", "ops", admin, 2_000, scope="admin")).scope == "admin"
    with pytest.raises(InvalidValue, match="scope"):
        await keys.create("t1", "root", new_api_key(), 3_000, scope="root")
    found = await keys.authenticate(admin)
    assert found is not None and (found.name, found.scope) == ("ops", "admin")
    found = await keys.authenticate(plain)
    assert found is not None and found.scope == "api"
    assert [(k.name, k.scope) for k in await keys.list_keys("t1")] == [
        ("ci", "api"),
        ("ops", "admin"),
    ]
