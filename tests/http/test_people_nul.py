"""A NUL character in what an operator sends: PostgreSQL cannot store one in text, so every
string of the people routes' bodies refuses it with a 422 naming the field (as the channels'
payloads do), never a 500 from the database; a NUL in a session's or a block's id in the
path is an unknown one (404).

The bodies' check is a table over every string field of every request model (a new field
without the check fails ``test_every_string_field_is_in_the_table``); the routes' answers
are checked on PostgreSQL, where the NUL used to reach the database.
"""

import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from acf.entrypoints.http.people_views import (
    BlockBody,
    ClaimBody,
    HandBackBody,
    HandoffBody,
    NoteBody,
    OperatorMessageBody,
)
from tests.http.conftest import settled
from tests.integration.config_api_server import serve

NUL = "a\x00b"

REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    BlockBody,
    ClaimBody,
    HandBackBody,
    HandoffBody,
    NoteBody,
    OperatorMessageBody,
)

VALID: dict[type[BaseModel], dict[str, Any]] = {
    HandoffBody: {"reason": "asked for a person"},
    OperatorMessageBody: {"text": "Hi, Ana here.", "buttons": ["Yes", "No"]},
    NoteBody: {"text": "refund approved"},
    HandBackBody: {"note": "all done"},
    BlockBody: {"channel": "web", "customer": "mallory", "reason": "spam"},
}

# (model, field, where the NUL goes in a valid body, the field the 422 names)
STRING_FIELDS: list[tuple[type[BaseModel], str, tuple[str | int, ...]]] = [
    (HandoffBody, "reason", ("reason",)),
    (OperatorMessageBody, "text", ("text",)),
    (OperatorMessageBody, "buttons", ("buttons", 1)),
    (NoteBody, "text", ("text",)),
    (HandBackBody, "note", ("note",)),
    (BlockBody, "customer", ("customer",)),
    (BlockBody, "reason", ("reason",)),
]


def _with_nul(body: dict[str, Any], where: tuple[str | int, ...]) -> dict[str, Any]:
    changed = {k: list(v) if isinstance(v, list) else v for k, v in body.items()}
    if len(where) == 1:
        changed[str(where[0])] = NUL
    else:
        field, index = where
        changed[str(field)][int(index)] = NUL
    return changed


def _holds_text(annotation: Any) -> bool:
    if annotation is str:
        return True
    return any(_holds_text(arg) for arg in typing.get_args(annotation))


def test_every_string_field_is_in_the_table() -> None:
    strings = {
        (model, name)
        for model in REQUEST_MODELS
        for name, field in model.model_fields.items()
        if _holds_text(field.annotation)
    }
    assert strings == {(model, name) for model, name, _ in STRING_FIELDS}


@pytest.mark.parametrize(("model", "field", "where"), STRING_FIELDS)
def test_a_nul_is_refused_naming_the_field(
    model: type[BaseModel], field: str, where: tuple[str | int, ...]
) -> None:
    model.model_validate(VALID[model])  # the table's bodies are valid without the NUL
    with pytest.raises(ValidationError) as refused:
        model.model_validate(_with_nul(VALID[model], where))
    problems = refused.value.errors()
    assert [p["loc"] for p in problems] == [where]
    assert "NUL" in problems[0]["msg"]


async def test_a_nul_is_a_422_on_postgresql(tmp_path: Path) -> None:
    async with (
        serve("postgresql", tmp_path) as served,
        served.client(scope="api") as c,
        served.client(scope="admin") as op,
    ):
        message = {"agent": "support", "customer": "carol", "client_message_id": "m1"}
        r = await c.post("/v1/messages", json={**message, "text": "hello"})
        assert r.status_code == 202, r.text
        session_id = r.json()["session_id"]
        await settled(c, session_id)
        base = f"/v1/sessions/{session_id}"

        async def refused(path: str, body: dict[str, Any], field: str) -> None:
            r = await op.post(path, json=body)
            assert (r.status_code, r.json()["error"]) == (422, "invalid"), (path, r.text)
            assert [p["field"] for p in r.json()["problems"]] == [field], r.text

        await refused(f"{base}/handoff", {"reason": NUL}, "reason")
        assert (await op.post(f"{base}/handoff", json={"reason": "x"})).status_code == 200
        assert (await op.post(f"{base}/claim", json={})).status_code == 200
        await refused(f"{base}/operator-messages", {"text": NUL}, "text")
        await refused(f"{base}/operator-messages", {"text": "hi", "buttons": [NUL]}, "buttons.0")
        await refused(f"{base}/notes", {"text": NUL}, "text")
        await refused(f"{base}/release", {"note": NUL}, "note")
        await refused(f"{base}/resume", {"note": NUL}, "note")
        block = {"channel": "web", "customer": "carol", "reason": "spam"}
        await refused("/v1/blocks", {**block, "customer": NUL}, "customer")
        await refused("/v1/blocks", {**block, "reason": NUL}, "reason")

        # a NUL in an id in the path: no such session or block
        for method, path in (
            ("POST", "/v1/sessions/a%00b/notes"),
            ("GET", "/v1/sessions/a%00b/notes"),
            ("POST", "/v1/sessions/a%00b/claim"),
            ("DELETE", "/v1/blocks/a%00b"),
        ):
            body = {"text": "x"} if path.endswith("notes") and method == "POST" else None
            r = await op.request(method, path, json=body)
            assert (r.status_code, r.json()["error"]) == (404, "not_found"), (path, r.text)

        # the customer API's routes too (any path with a NUL names nothing stored)
        for path in ("/v1/sessions/a%00b", "/v1/sessions/a%00b/timeline", "/v1/dead-letters/a%00b"):
            r = await c.get(path)
            assert (r.status_code, r.json()["error"]) == (404, "not_found"), (path, r.text)

        # nothing was stored or broken: the session takes a note, still unblocked
        r = await op.post(f"{base}/notes", json={"text": "fine"})
        assert r.status_code == 201, r.text
        notes = (await op.get(f"{base}/notes")).json()["notes"]
        assert [n["text"] for n in notes] == ["fine"]
        assert (await op.get("/v1/blocks")).json()["blocks"] == []
