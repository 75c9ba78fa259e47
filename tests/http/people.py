"""What the people-in-the-loop API tests share: the served API of ``conftest`` (two tenants,
acme and globex) with operator keys besides the ``api`` keys, and a customer's message."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from acf.entrypoints.http.context import ApiSettings
from acf.ports.api_keys import ApiKeyRecord, new_api_key
from tests.http.conftest import Api, config, serve_api, settled

OPERATORS = ("ana", "bob")


@dataclass
class People:
    api: Api
    operator_keys: dict[tuple[str, str], str]
    """(tenant, operator name) -> an ``operator`` key."""
    records: dict[tuple[str, str], ApiKeyRecord]

    def customer_api(self, tenant: str = "acme") -> httpx.AsyncClient:
        """A client with the tenant's ``api`` key (the customer API's caller)."""
        return self.api.client(tenant)

    def operator(self, name: str = "ana", tenant: str = "acme") -> httpx.AsyncClient:
        key = self.operator_keys[(tenant, name)]
        return httpx.AsyncClient(
            base_url=self.api.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=15.0
        )

    def by(self, name: str = "ana", tenant: str = "acme") -> dict[str, str]:
        """The ``by`` an audit event carries for the operator."""
        record = self.records[(tenant, name)]
        return {"key_id": record.key_id, "name": record.name}


async def serve_people(tmp_path: Path) -> AsyncIterator[People]:
    settings = ApiSettings(heartbeat_s=0.3, poll_s=0.2)
    async for api in serve_api(tmp_path, config(), settings):
        keys, records = {}, {}
        for tenant in ("acme", "globex"):
            for name in OPERATORS:
                key = new_api_key()
                records[(tenant, name)] = await api.service.api_keys.create(
                    tenant, name, key, api.service.clock.now_ms(), scope="operator"
                )
                keys[(tenant, name)] = key
        yield People(api, keys, records)


async def say(
    c: httpx.AsyncClient, message_id: str, text: str, customer: str = "carol"
) -> dict[str, Any]:
    """Post a customer's web message with the ``api`` client ``c``; the 202 body."""
    r = await c.post(
        "/v1/messages",
        json={
            "agent": "support",
            "customer": customer,
            "client_message_id": message_id,
            "text": text,
        },
    )
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


async def answered_session(people: People, tenant: str = "acme", customer: str = "carol") -> str:
    """A session whose first message the agent answered: its id."""
    async with people.customer_api(tenant) as c:
        session_id: str = (await say(c, f"{customer}-1", "hello", customer))["session_id"]
        await settled(c, session_id)
    return session_id


async def handed_off(people: People, tenant: str = "acme", customer: str = "carol") -> str:
    """An answered session handed to people by operator ana: its id."""
    session_id = await answered_session(people, tenant, customer)
    async with people.operator("ana", tenant) as op:
        r = await op.post(f"/v1/sessions/{session_id}/handoff", json={"reason": "asked"})
        assert r.status_code == 200, r.text
    return session_id


async def events_of(c: httpx.AsyncClient, session_id: str, *kinds: str) -> list[dict[str, Any]]:
    params = [("kind", k) for k in kinds]
    r = await c.get(f"/v1/sessions/{session_id}/events", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items
