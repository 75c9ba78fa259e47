"""A session closed for idleness (DESIGN §15) stays readable through the API — its messages,
replies, turns and events, ``session.closed`` among them — and the customer's next message
opens a new session."""

import httpx

from acf.ports.lease import CheckFence
from acf.ports.session_store import CloseSession
from tests.http.conftest import Api, settled


async def send(c: httpx.AsyncClient, message_id: str, text: str) -> str:
    r = await c.post(
        "/v1/messages",
        json={
            "agent": "support",
            "customer": "carol",
            "client_message_id": message_id,
            "text": text,
        },
    )
    assert r.status_code in (200, 202), r.text
    session_id: str = r.json()["session_id"]
    return session_id


async def test_a_closed_session_stays_readable_and_the_next_message_opens_anew(
    api: Api,
) -> None:
    service = api.service
    async with api.client() as c:
        old = await send(c, "m1", "hello")
        before = await settled(c, old)
        assert before["status"] == "open"

        # Closed as the sweep closes it: under the lease, with the fence guard.
        now = service.clock.now_ms()
        lease = await service.store.lease.acquire("acme", old, "test-sweep", 15_000)
        assert lease is not None
        await service.store.uow.commit(
            "acme",
            [
                CheckFence(old, lease.fence, now),
                CloseSession("acme", old, now, "idle", before["updated_at_ms"]),
            ],
        )
        await service.store.lease.release(lease)

        new = await send(c, "m2", "hello again")
        assert new != old
        after = await settled(c, new)
        assert after["status"] == "open" and after["last_seq"] == 1

        detail = (await c.get(f"/v1/sessions/{old}")).json()
        assert detail["status"] == "closed"
        assert [m["text"] for m in detail["messages"]] == ["hello"]
        assert [r["text"] for r in detail["replies"]] == ["Hi from acme"]
        turns = (await c.get(f"/v1/sessions/{old}/turns")).json()["items"]
        assert len(turns) == 1
        kinds = [e["kind"] for e in (await c.get(f"/v1/sessions/{old}/events")).json()["items"]]
        assert kinds[-1] == "session.closed"
