"""``POST /v1/sessions/{id}/agent-answer`` over real HTTP (seed 004 Story 6): refused with
409 unless the session's agent session awaits that question, 404 for another tenant's or
an unknown session; accepted, the answer is the customer's next message through ingress:
sequenced, deduplicated by ``message_id`` (by the question without one), audited, answered."""

from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.events import EventKind
from acf.domain.ids import new_id
from acf.ports.agent_sessions import SaveAgentSession
from acf.ports.event_store import EventQuery
from tests.http.conftest import Api, settled


async def test_an_answer_is_taken_only_for_the_pending_question(api: Api) -> None:
    async with api.client("acme") as acme, api.client("globex") as globex:
        body = {"agent": "support", "customer": "ana", "client_message_id": "m1", "text": "hi"}
        sid = (await acme.post("/v1/messages", json=body)).json()["session_id"]
        await settled(acme, sid)
        path = f"/v1/sessions/{sid}/agent-answer"
        answer = {"ask_id": "ask-1", "text": "hello, order 1234", "message_id": "ans-1"}

        nothing = await acme.post(path, json=answer)
        assert nothing.status_code == 409 and nothing.json()["error"] == "not_awaited"

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
            asked_at_ms=now,
        )
        await api.service.store.uow.commit("acme", [SaveAgentSession(row)])

        assert (await globex.post(path, json=answer)).status_code == 404
        unknown = await acme.post(f"/v1/sessions/{new_id()}/agent-answer", json=answer)
        assert unknown.status_code == 404
        other = await acme.post(path, json={**answer, "ask_id": "ask-0"})
        assert other.status_code == 409
        empty = await acme.post(path, json={**answer, "text": "  "})
        assert empty.status_code == 422

        taken = await acme.post(path, json=answer)
        assert taken.status_code == 202, taken.text
        assert (taken.json()["session_id"], taken.json()["seq"]) == (sid, 2)
        assert taken.json()["duplicate"] is False
        again = await acme.post(path, json=answer)
        assert again.status_code == 202
        assert (again.json()["seq"], again.json()["duplicate"]) == (2, True)

        without_id = {"ask_id": "ask-1", "text": "1234"}
        first = (await acme.post(path, json=without_id)).json()
        second = (await acme.post(path, json=without_id)).json()
        assert (first["seq"], first["duplicate"], second["duplicate"]) == (3, False, True)

        session = await settled(acme, sid)
        assert [m["text"] for m in session["messages"]] == ["hi", "hello, order 1234", "1234"]
        assert session["messages"][1]["client_message_id"] == "ans-1"
        assert session["consumed_seq"] == 3 and len(session["replies"]) >= 2  # answered
    received = await api.service.store.events.query(
        "acme", EventQuery(session_id=sid, kinds=(EventKind.MESSAGE_RECEIVED,))
    )
    assert [e.data["seq"] for e in received] == [1, 2, 3]
    assert await api.service.store.messages.read_range("globex", sid, 0, 10) == []
