"""Identifiers. Plain strings, named for what they identify; generated ids are 128 random
bits in hex (the shape of a UUIDv4's hex, without its version bits).

They come from ``random.getrandbits``: ids must be unique, not secret (every read is scoped
by tenant, never guarded by an id being unguessable), and it costs a tenth of
``os.urandom``. Python reseeds the generator in a forked child, so processes do not repeat.
"""

import random

TenantId = str
AgentId = str
SessionId = str
TurnId = str
GroupId = str
MessageId = str
TraceId = str


def new_id() -> str:
    """A fresh random identifier (32 hex characters)."""
    return f"{random.getrandbits(128):032x}"


def new_trace_id() -> TraceId:
    """A W3C-compatible trace id (32 lowercase hex characters, never all zeros)."""
    return f"{random.getrandbits(128) | 1:032x}"
