"""Customers' linked identities and continuing a session on another channel, over real
HTTP (the service on a SQLite file, served on loopback)."""

import asyncio

import httpx

from tests.http.conftest import Api, settled

PHONE = {"channel": "sms", "address": "+15550001"}
WEB = {"channel": "web", "address": "ana-web"}


async def test_link_read_and_unlink_identities(api: Api) -> None:
    async with api.client() as c, api.client("globex") as other, api.client(None) as anon:
        linked = await c.put("/v1/customers/ana/identities", json={"identities": [WEB, PHONE]})
        assert linked.status_code == 200, linked.text
        body = linked.json()
        assert body["customer_id"] == "ana"
        assert [(i["channel"], i["address"]) for i in body["identities"]] == [
            ("sms", "+15550001"),
            ("web", "ana-web"),
        ]
        again = await c.put("/v1/customers/ana/identities", json={"identities": [PHONE]})
        assert again.status_code == 200 and again.json() == body  # already hers: unchanged
        taken = await c.put(
            "/v1/customers/bob/identities",
            json={"identities": [{"channel": "telegram", "address": "42"}, PHONE]},
        )
        assert taken.status_code == 409
        assert taken.json()["error"] == "address_taken"
        assert "+15550001" in taken.json()["message"]
        assert (await c.get("/v1/customers/bob")).status_code == 404  # nothing was linked
        fax = await c.put(
            "/v1/customers/ana/identities",
            json={"identities": [{"channel": "fax", "address": "1"}]},
        )
        assert fax.status_code == 422
        assert fax.json()["problems"][0]["field"] == "identities.0"
        assert "whatsapp" in fax.json()["problems"][0]["message"]  # the channels it takes
        assert (await c.get("/v1/customers/ana")).json() == body
        # Another tenant neither sees ana nor is refused her number.
        assert (await other.get("/v1/customers/ana")).status_code == 404
        mine = await other.put("/v1/customers/zed/identities", json={"identities": [PHONE]})
        assert mine.status_code == 200
        assert (await anon.get("/v1/customers/ana")).status_code == 401
        gone = await c.delete("/v1/customers/ana/identities/sms/+15550001")
        assert gone.status_code == 204
        again_gone = await c.delete("/v1/customers/ana/identities/sms/+15550001")
        assert again_gone.status_code == 404
        unknown = await c.delete("/v1/customers/ana/identities/fax/1")
        assert unknown.status_code == 422
        left = (await c.get("/v1/customers/ana")).json()["identities"]
        assert [i["channel"] for i in left] == ["web"]


async def _session(c: httpx.AsyncClient) -> str:
    posted = await c.post(
        "/v1/messages",
        json={
            "agent": "support",
            "customer": "ana-web",
            "text": "hello",
            "client_message_id": "m1",
        },
    )
    assert posted.status_code == 202, posted.text
    session_id: str = posted.json()["session_id"]
    await settled(c, session_id)
    return session_id


async def test_continue_needs_a_linked_address_and_queues_the_notice(api: Api) -> None:
    async with api.client() as c, api.client("globex") as other:
        session_id = await _session(c)
        path = f"/v1/sessions/{session_id}/continue"
        refused = await c.post(path, json={"channel": "sms", "text": "We will text you"})
        assert refused.status_code == 409 and refused.json()["error"] == "not_linked"
        await c.put("/v1/customers/ana/identities", json={"identities": [WEB, PHONE]})
        assert (await other.post(path, json={"channel": "sms"})).status_code == 404
        blank = await c.post(path, json={"channel": "sms", "text": "   "})
        assert blank.status_code == 422
        done = await c.post(path, json={"channel": "sms", "text": "We will text you"})
        assert done.status_code == 202, done.text
        assert done.json()["address"] == "+15550001" and done.json()["outbox_id"] is not None
        # This configuration has no SMS sender: the relay tries the notice and it fails
        # definitely (no ladder configured), recorded on the row.
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            replies = (await c.get(f"/v1/sessions/{session_id}")).json()["replies"]
            notice = [r for r in replies if r["outbox_id"] == done.json()["outbox_id"]]
            if notice and notice[0]["status"] != "pending":
                break
            assert asyncio.get_running_loop().time() < deadline, replies
            await asyncio.sleep(0.05)
        assert notice[0]["text"] == "We will text you" and notice[0]["status"] == "failed"
        events = (
            await c.get(f"/v1/sessions/{session_id}/events", params={"kind": "session.continued"})
        ).json()["items"]
        assert [e["data"] for e in events] == [
            {"channel": "sms", "address": "+15550001", "notified": True}
        ]


async def test_addresses_are_written_as_the_channels_write_them(api: Api) -> None:
    written = [
        {"channel": "whatsapp", "address": "+16505551234"},
        {"channel": "email", "address": "Ana@Example.COM"},
    ]
    async with api.client() as c:
        linked = await c.put("/v1/customers/ana/identities", json={"identities": written})
        assert linked.status_code == 200, linked.text
        assert [(i["channel"], i["address"]) for i in linked.json()["identities"]] == [
            ("email", "ana@example.com"),
            ("whatsapp", "16505551234"),
        ]
        local = await c.put(
            "/v1/customers/ana/identities",
            json={"identities": [{"channel": "sms", "address": "650 555 1234"}]},
        )
        assert local.status_code == 422
        assert "E.164" in local.json()["problems"][0]["message"]
        gone = await c.delete("/v1/customers/ana/identities/whatsapp/+16505551234")
        assert gone.status_code == 204, gone.text


async def test_an_address_that_cannot_be_linked_is_not_found_on_delete(api: Api) -> None:
    async with api.client() as c:
        gone = await c.delete("/v1/customers/ana/identities/sms/650-555")
    assert gone.status_code == 404 and "not an E.164 number" in gone.json()["message"]
