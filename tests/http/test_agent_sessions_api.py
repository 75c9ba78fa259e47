"""The agent sessions of a conversation over real HTTP, looked up both ways (seed 004
Story 2): by the conversation, and by the service's agent session id; another tenant's
answer 404, and the execution key never shows."""

from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.ids import new_id
from acf.ports.agent_sessions import SaveAgentSession
from tests.http.conftest import Api, settled


async def test_agent_sessions_are_looked_up_both_ways_within_the_tenant(api: Api) -> None:
    async with api.client("acme") as acme, api.client("globex") as globex:
        body = {"agent": "support", "customer": "ana", "client_message_id": "m1", "text": "hi"}
        sid = (await acme.post("/v1/messages", json=body)).json()["session_id"]
        await settled(acme, sid)
        assert (await acme.get(f"/v1/sessions/{sid}/agent-sessions")).json() == {"items": []}

        now = api.service.clock.now_ms()
        row = AgentSessionRow(
            "acme",
            new_id(),
            sid,
            "support",
            "orders",
            AgentSessionStatus.AWAITING_USER,
            now,
            now,
            agent_session_id="as-1",
            pending_ask_id="ask-1",
            pending_question="Which order?",
            pending_options=("A-1", "A-2"),
            asked_at_ms=now,
            execution_key="exe-secret-ish",
            execution_open=False,
        )
        await api.service.store.uow.commit("acme", [SaveAgentSession(row)])

        listed = (await acme.get(f"/v1/sessions/{sid}/agent-sessions")).json()["items"]
        assert [(r["agent_session_id"], r["status"], r["pending_options"]) for r in listed] == [
            ("as-1", "AWAITING_USER", ["A-1", "A-2"])
        ]
        found = await acme.get("/v1/agent-sessions/as-1")
        assert found.status_code == 200 and found.json()["session_id"] == sid
        assert "exe-secret-ish" not in found.text and "execution_key" not in found.json()

        assert (await globex.get("/v1/agent-sessions/as-1")).status_code == 404
        assert (await globex.get(f"/v1/sessions/{sid}/agent-sessions")).status_code == 404
        assert (await acme.get("/v1/agent-sessions/as-404")).status_code == 404
