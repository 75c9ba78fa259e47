"""Identifiers. Plain strings, named for what they identify; generated ids are 128 random
bits in hex (the shape of a UUIDv4's hex, without its version bits).

They come from a private ``random.Random`` seeded from ``os.urandom``: ids must be unique,
not secret (every read is scoped by tenant, never guarded by an id being unguessable), and
it costs a tenth of ``os.urandom`` per id. Private, so code that seeds the global ``random``
cannot make ids repeat; reseeded in a forked child, so processes do not repeat each other.
"""

import os
import random

_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))

TenantId = str
AgentId = str
SessionId = str
TurnId = str
GroupId = str
MessageId = str
TraceId = str


def new_id() -> str:
    """A fresh random identifier (32 hex characters)."""
    return f"{_random.getrandbits(128):032x}"


def new_trace_id() -> TraceId:
    """A W3C-compatible trace id (32 lowercase hex characters, never all zeros)."""
    return f"{_random.getrandbits(128) | 1:032x}"
