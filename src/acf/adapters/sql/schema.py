"""The relational schema, described once with SQLAlchemy Core for SQLite and PostgreSQL.

Times are integer milliseconds since the epoch. Every table leads with ``tenant`` and every
key and index starts with it, so each tenant's rows are a contiguous, separately indexed
range and no lookup can be served without naming the tenant.
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

# On SQLite, JSON is stored as TEXT: a column declared JSON gets NUMERIC affinity there,
# which would turn the JSON text "1" into the integer 1.
Json = sa.JSON().with_variant(JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")
# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Tenant = sa.String(256)
Id = sa.String(64)
Ms = sa.BigInteger

LIVE_PHASES = "('accumulating', 'running')"
TYPING_EVENTS = "kind IN ('typing.started', 'typing.stopped')"
"""The customer's typing signals, as ``events.kinds_predicate`` writes them (index
``ix_events_typing``: a query of these kinds must say exactly this to use it)."""

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("session_id", Id, primary_key=True),
    sa.Column("agent", sa.String(256), nullable=False),
    sa.Column("customer", sa.String(256), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("consumed_seq", sa.BigInteger, nullable=False),
    sa.Column("state", Json, nullable=False),
    sa.Column("state_version", sa.BigInteger, nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("flag_reason", sa.Text, nullable=True),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("updated_at_ms", Ms, nullable=False),
    # The trace id of the oldest unconsumed message: the turn that answers it carries it.
    sa.Column("pending_trace_id", sa.String(64), nullable=True),
    # The configuration version the session is pinned to (DESIGN §17), fixed when it opens.
    sa.Column("config_version", sa.Integer, nullable=True),
    sa.Column("canary", sa.Boolean, nullable=False, server_default=sa.text("false")),
    sa.Column("closed_at_ms", Ms, nullable=True),
    # Who answers (acf.domain.modes, revision 0011): agent | human | cooldown | blocked.
    sa.Column("mode", sa.String(16), nullable=False, server_default=sa.text("'agent'")),
    sa.Column("mode_reason", sa.Text, nullable=True),
    sa.Column("mode_since_ms", Ms, nullable=True),
    sa.Column("mode_until_ms", Ms, nullable=True),
    sa.Column("fallbacks", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Index(
        "ux_sessions_open_key",
        "tenant",
        "agent",
        "customer",
        "channel",
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    ),
    sa.Index("ix_sessions_activity", "tenant", "updated_at_ms"),
    sa.Index("ix_sessions_config_version", "tenant", "config_version", "status"),
    sa.Index(
        "ix_sessions_open_idle",
        "updated_at_ms",
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    ),
    sa.Index(
        "ix_sessions_mode",
        "tenant",
        "mode",
        "mode_since_ms",
        sqlite_where=sa.text("mode <> 'agent'"),
        postgresql_where=sa.text("mode <> 'agent'"),
    ),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("message_id", Id, primary_key=True),
    sa.Column("session_id", Id, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("provider_message_id", sa.String(256), nullable=False),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("button_id", sa.String(256), nullable=True),
    sa.Column("button_title", sa.Text, nullable=True),
    sa.Column("media", Json, nullable=False),
    sa.Column("provider_timestamp_ms", Ms, nullable=True),
    sa.Column("sender_name", sa.Text, nullable=True),
    sa.Column("received_at_ms", Ms, nullable=False),
    # The trace of the request that delivered the message (the turn answering it joins it).
    sa.Column("trace_id", sa.String(64), nullable=True),
    # Who sent it on its channel; NULL (older rows) means the session's customer.
    sa.Column("address", sa.String(256), nullable=True),
    sa.UniqueConstraint("tenant", "channel", "provider_message_id", name="ux_messages_provider"),
    sa.UniqueConstraint("tenant", "session_id", "seq", name="ux_messages_seq"),
)

turn_groups = sa.Table(
    "turn_groups",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("group_id", Id, primary_key=True),
    sa.Column("session_id", Id, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("restarts", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("updated_at_ms", Ms, nullable=False),
)

turns = sa.Table(
    "turns",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("turn_id", Id, primary_key=True),
    sa.Column("session_id", Id, nullable=False),
    sa.Column("group_id", Id, nullable=False),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("from_seq", sa.BigInteger, nullable=False),
    sa.Column("to_seq", sa.BigInteger, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("fence", sa.BigInteger, nullable=False),
    sa.Column("irreversible_started", sa.Boolean, nullable=False),
    sa.Column("trace_id", sa.String(64), nullable=False),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("updated_at_ms", Ms, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, server_default=sa.text("'agent'")),
    sa.Index(
        "ux_turns_live",
        "tenant",
        "session_id",
        unique=True,
        sqlite_where=sa.text(f"phase IN {LIVE_PHASES}"),
        postgresql_where=sa.text(f"phase IN {LIVE_PHASES}"),
    ),
    sa.Index("ix_turns_session", "tenant", "session_id", "created_at_ms"),
)

turn_records = sa.Table(
    "turn_records",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("turn_id", Id, primary_key=True),
    sa.Column("session_id", Id, nullable=False),
    sa.Column("record", Json, nullable=False),
    sa.Column("created_at_ms", Ms, nullable=False),
    # Copied out of the record for the canary's comparison (``arm_stats``); NULL on records
    # written before revision 0010.
    sa.Column("config_version", sa.String(128), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("category", sa.String(64), nullable=True),
    sa.Column("fallback", sa.Boolean, nullable=True),
    sa.Column("handoff", sa.Boolean, nullable=True),
    sa.Column("duration_ms", Ms, nullable=True),
    sa.Index("ix_turn_records_config_version", "tenant", "config_version", "created_at_ms"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("event_id", AutoId, primary_key=True, autoincrement=True),
    sa.Column("tenant", Tenant, nullable=False),
    sa.Column("session_id", Id, nullable=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("at_ms", Ms, nullable=False),
    sa.Column("trace_id", sa.String(64), nullable=False),
    sa.Column("turn_id", Id, nullable=True),
    sa.Column("group_id", Id, nullable=True),
    sa.Column("agent_version", sa.String(128), nullable=True),
    sa.Column("config_version", sa.String(128), nullable=True),
    sa.Column("data", Json, nullable=False),
    sa.Index("ix_events_tenant", "tenant", "event_id"),
    sa.Index("ix_events_session", "tenant", "session_id", "event_id"),
    # A session's latest typing signal (revision 0012): the kinds as ``kinds_predicate``
    # writes them, or the query cannot use it.
    sa.Index(
        "ix_events_typing",
        "tenant",
        "session_id",
        "event_id",
        sqlite_where=sa.text(TYPING_EVENTS),
        postgresql_where=sa.text(TYPING_EVENTS),
    ),
    # SQLite: AUTOINCREMENT, so an id is never given again once its row is deleted (a plain
    # rowid takes the largest id + 1). PostgreSQL's ids come from acf_next_event_id().
    sqlite_autoincrement=True,
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("outbox_id", AutoId, primary_key=True, autoincrement=True),
    sa.Column("tenant", Tenant, nullable=False),
    sa.Column("session_id", Id, nullable=False),
    sa.Column("turn_id", Id, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("provider_message_id", sa.String(256), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("updated_at_ms", Ms, nullable=False),
    # A fallback copy: the row it replaces (at most one copy per row), and the place in the
    # session's order it takes (its original's); where a row was, or is to be, sent.
    sa.Column("fallback_of", sa.BigInteger, nullable=True),
    sa.Column("sort_id", sa.BigInteger, nullable=True),
    sa.Column("channel", sa.String(32), nullable=True),
    sa.Column("address", sa.String(256), nullable=True),
    # Provider messages of the row already accepted (a reply cut in parts).
    sa.Column("parts_sent", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Index("ix_outbox_session", "tenant", "session_id", "status", "outbox_id"),
    sa.Index("ix_outbox_provider", "tenant", "provider_message_id"),
    sa.Index("ux_outbox_fallback", "tenant", "fallback_of", unique=True),
)

step_memo = sa.Table(
    "step_memo",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("group_id", Id, primary_key=True),
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("fingerprint", sa.String(128), primary_key=True),
    sa.Column("result", Json, nullable=True),
    sa.Column("created_at_ms", Ms, nullable=False),
)

session_leases = sa.Table(
    "session_leases",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("session_id", Id, primary_key=True),
    sa.Column("holder", sa.String(256), nullable=False),
    sa.Column("fence", sa.BigInteger, nullable=False),
    sa.Column("expires_at_ms", Ms, nullable=False),
)

timers = sa.Table(
    "timers",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("session_id", Id, primary_key=True),
    sa.Column("kind", sa.String(64), primary_key=True),
    sa.Column("due_at_ms", Ms, nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Index("ix_timers_due", "tenant", "due_at_ms"),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("execution_id", Id, primary_key=True),
    sa.Column("idempotency_key", sa.String(1024), nullable=False),
    # 1 while the row holds its key, NULL once expired: NULLs never collide in the unique
    # constraint, so at most one row per key holds it.
    sa.Column("holds_key", sa.SmallInteger, nullable=True),
    sa.Column("tool", sa.String(64), nullable=False),
    sa.Column("policy", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("session_id", Id, nullable=False),
    sa.Column("group_id", Id, nullable=False),
    sa.Column("turn_id", Id, nullable=False),
    sa.Column("customer", sa.String(256), nullable=False),
    sa.Column("args", Json, nullable=False),
    sa.Column("result", Json, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("started_at_ms", Ms, nullable=False),
    sa.Column("finished_at_ms", Ms, nullable=True),
    sa.Column("expires_at_ms", Ms, nullable=True),
    sa.UniqueConstraint("tenant", "idempotency_key", "holds_key", name="ux_ledger_key"),
    sa.Index("ix_ledger_group", "tenant", "group_id"),
    sa.Index("ix_ledger_customer", "tenant", "customer", "started_at_ms"),
    sa.Index("ix_ledger_tool", "tenant", "tool", "started_at_ms"),
)

# API keys: only a SHA-256 of each key is stored. Authentication looks a key up by its hash
# (the one lookup that cannot name the tenant first: the key is what names it).
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("key_id", Id, primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("revoked_at_ms", Ms, nullable=True),
    # What the key may do: "api", "admin" (also the configuration lifecycle), "operator".
    sa.Column("scope", sa.String(16), nullable=False, server_default=sa.text("'api'")),
)

# Responses to requests sent with an Idempotency-Key header, kept for replay.
http_requests = sa.Table(
    "http_requests",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("idempotency_key", sa.String(256), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("response", Json, nullable=True),
    sa.Column("created_at_ms", Ms, nullable=False),
)

# Email threading (RFC 5322): the Message-IDs of mails in and out, per customer, so a reply
# carries In-Reply-To/References and a customer's answer to our mail finds its customer.
# Message-IDs are chosen by senders and are not unique across them, hence the key with the
# customer and the direction; ours (``out``) are made unique by us.
email_threads = sa.Table(
    "email_threads",
    metadata,
    sa.Column("row_id", AutoId, primary_key=True, autoincrement=True),
    sa.Column("tenant", Tenant, nullable=False),
    sa.Column("customer", sa.String(256), nullable=False),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("message_id", sa.String(998), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("refs", sa.Text, nullable=False),
    sa.Column("at_ms", Ms, nullable=False),
    sa.UniqueConstraint(
        "tenant", "customer", "direction", "message_id", name="ux_email_threads_mail"
    ),
    sa.Index("ix_email_threads_message", "tenant", "message_id"),
    sa.Index("ix_email_threads_latest", "tenant", "customer", "direction", "at_ms"),
)

# Cross-channel identity (DESIGN §9): the customer each channel address belongs to, one
# customer per (tenant, channel, address).
customer_identities = sa.Table(
    "customer_identities",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("channel", sa.String(32), primary_key=True),
    sa.Column("address", sa.String(256), primary_key=True),
    sa.Column("customer_id", sa.String(256), nullable=False),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Index("ix_customer_identities_customer", "tenant", "customer_id"),
)

# Conversation continuity: a message from this address on this channel, to this agent,
# joins this session (set when a reply falls back there or an operator continues there).
session_routes = sa.Table(
    "session_routes",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("agent", sa.String(256), primary_key=True),
    sa.Column("channel", sa.String(32), primary_key=True),
    sa.Column("address", sa.String(256), primary_key=True),
    sa.Column("session_id", Id, nullable=False),
    sa.Column("updated_at_ms", Ms, nullable=False),
)

# Agent sessions (DESIGN §16): which session of an external agent service a conversation
# talks to. At most one open (ACTIVE or AWAITING_USER) row per conversation.
OPEN_AGENT_SESSION = "status IN ('ACTIVE', 'AWAITING_USER')"
REPLAY_PENDING = "replay_requested_at_ms IS NOT NULL AND replayed_at_ms IS NULL"
"""A dead letter whose replay was requested and has not run (the recovery scan's)."""

agent_sessions = sa.Table(
    "agent_sessions",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("row_id", Id, primary_key=True),
    sa.Column("session_id", Id, nullable=False),
    sa.Column("agent", sa.String(256), nullable=False),
    sa.Column("profile", sa.String(256), nullable=False),
    sa.Column("agent_session_id", sa.String(256), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("pending_ask_id", sa.String(256), nullable=True),
    sa.Column("pending_question", sa.Text, nullable=True),
    sa.Column("pending_options", Json, nullable=False),
    sa.Column("asked_at_ms", Ms, nullable=True),
    sa.Column("execution_key", sa.String(256), nullable=True),
    sa.Column("execution_input", sa.String(256), nullable=True),
    sa.Column("execution_open", sa.Boolean, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("last_interaction_at_ms", Ms, nullable=False),
    sa.Index(
        "ux_agent_sessions_open",
        "tenant",
        "session_id",
        unique=True,
        sqlite_where=sa.text(OPEN_AGENT_SESSION),
        postgresql_where=sa.text(OPEN_AGENT_SESSION),
    ),
    sa.Index("ix_agent_sessions_session", "tenant", "session_id", "last_interaction_at_ms"),
    sa.Index("ix_agent_sessions_agent_session", "tenant", "agent_session_id"),
    sa.Index("ix_agent_sessions_status", "tenant", "status", "last_interaction_at_ms"),
)

# Dead letters (DESIGN §16): turns whose agent failed for good, kept to inspect and replay.
dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("dead_letter_id", Id, primary_key=True),
    sa.Column("session_id", Id, nullable=False),
    sa.Column("agent", sa.String(256), nullable=False),
    sa.Column("turn_id", Id, nullable=False),
    sa.Column("group_id", Id, nullable=False),
    sa.Column("trace_id", sa.String(64), nullable=False),
    sa.Column("pipeline", sa.String(256), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("request", Json, nullable=False),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("replay_requested_at_ms", Ms, nullable=True),
    sa.Column("replay_turn_id", Id, nullable=True),
    sa.Column("replayed_at_ms", Ms, nullable=True),
    sa.Index("ix_dead_letters_created", "tenant", "created_at_ms"),
    sa.Index("ix_dead_letters_session", "tenant", "session_id", "created_at_ms"),
    sa.Index(
        "ix_dead_letters_replay_pending",
        "tenant",
        "session_id",
        sqlite_where=sa.text(REPLAY_PENDING),
        postgresql_where=sa.text(REPLAY_PENDING),
    ),
)

# The tables of configuration versions (revision 0010) and of people in the loop (revision
# 0011) are described beside these, on the same ``metadata``: imported last, so everything
# above exists when they run.
from acf.adapters.sql import schema_config, schema_people  # noqa: E402, F401
