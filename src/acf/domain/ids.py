"""Identifiers. Plain strings, named for what they identify; generated ids are UUIDv4 hex."""

import uuid

TenantId = str
AgentId = str
SessionId = str
TurnId = str
GroupId = str
MessageId = str
TraceId = str


def new_id() -> str:
    """A fresh random identifier (32 hex characters)."""
    return uuid.uuid4().hex


def new_trace_id() -> TraceId:
    """A W3C-compatible trace id (32 lowercase hex characters, never all zeros)."""
    return uuid.uuid4().hex
