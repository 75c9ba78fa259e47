"""The tables of people in the loop (revision 0011): handoffs, operators' notes, the block
list and the firewall's per-customer counters, on ``acf.adapters.sql.schema.metadata``."""

import sqlalchemy as sa

from acf.adapters.sql.schema import Id, Ms, Tenant, metadata

handoffs = sa.Table(
    "handoffs",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("handoff_id", Id, primary_key=True),
    sa.Column("session_id", Id, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("opened_by", sa.String(128), nullable=True),
    sa.Column("opened_at_ms", Ms, nullable=False),
    sa.Column("claimed_by", sa.String(128), nullable=True),
    sa.Column("claimed_by_name", sa.String(256), nullable=True),
    sa.Column("claimed_at_ms", Ms, nullable=True),
    sa.Column("claim_expires_at_ms", Ms, nullable=True),
    sa.Column("last_operator_reply_at_ms", Ms, nullable=True),
    sa.Column("sla_breached_at_ms", Ms, nullable=True),
    sa.Column("still_waiting_at_ms", Ms, nullable=True),
    sa.Column("resolved_at_ms", Ms, nullable=True),
    sa.Column("resolved_by", sa.String(128), nullable=True),
    sa.Column("resume_note", sa.Text, nullable=True),
    # at most one open handoff per session
    sa.Index(
        "ux_handoffs_open",
        "tenant",
        "session_id",
        unique=True,
        sqlite_where=sa.text("resolved_at_ms IS NULL"),
        postgresql_where=sa.text("resolved_at_ms IS NULL"),
    ),
    sa.Index("ix_handoffs_inbox", "tenant", "resolved_at_ms", "opened_at_ms"),
    sa.Index("ix_handoffs_session", "tenant", "session_id", "opened_at_ms"),
)

operator_notes = sa.Table(
    "operator_notes",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("note_id", Id, primary_key=True),
    sa.Column("session_id", Id, nullable=False),
    sa.Column("handoff_id", Id, nullable=True),
    sa.Column("author_key_id", sa.String(128), nullable=False),
    sa.Column("author_name", sa.String(256), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Index("ix_operator_notes_session", "tenant", "session_id", "created_at_ms"),
)

customer_blocks = sa.Table(
    "customer_blocks",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("block_id", Id, primary_key=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("customer", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("expires_at_ms", Ms, nullable=True),
    sa.Column("lifted_at_ms", Ms, nullable=True),
    sa.Column("lifted_by", sa.String(128), nullable=True),
    # at most one active block per customer and channel
    sa.Index(
        "ux_customer_blocks_active",
        "tenant",
        "channel",
        "customer",
        unique=True,
        sqlite_where=sa.text("lifted_at_ms IS NULL"),
        postgresql_where=sa.text("lifted_at_ms IS NULL"),
    ),
    sa.Index("ix_customer_blocks_created", "tenant", "created_at_ms"),
)

customer_counters = sa.Table(
    "customer_counters",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("channel", sa.String(32), primary_key=True),
    sa.Column("customer", sa.String(256), primary_key=True),
    sa.Column("bucket", sa.String(8), primary_key=True),  # "minute" or "day"
    sa.Column("bucket_start_ms", Ms, primary_key=True, autoincrement=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Index("ix_customer_counters_start", "tenant", "bucket_start_ms"),
)
