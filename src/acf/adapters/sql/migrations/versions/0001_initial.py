"""Initial schema: sessions, messages, turns, groups, records, events, outbox, memo, leases,
timers.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# On SQLite, JSON is stored as TEXT: a column declared JSON gets NUMERIC affinity there,
# which would turn the JSON text "1" into the integer 1.
Json = sa.JSON().with_variant(JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LIVE = sa.text("phase IN ('accumulating', 'running')")
OPEN = sa.text("status = 'open'")


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant", sa.String(256), primary_key=True)


def _ms(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "sessions",
        _tenant(),
        sa.Column("session_id", sa.String(64), primary_key=True),
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
        _ms("created_at_ms"),
        _ms("updated_at_ms"),
    )
    op.create_index(
        "ux_sessions_open_key",
        "sessions",
        ["tenant", "agent", "customer", "channel"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_index("ix_sessions_activity", "sessions", ["tenant", "updated_at_ms"])

    op.create_table(
        "messages",
        _tenant(),
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("provider_message_id", sa.String(256), nullable=False),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("button_id", sa.String(256), nullable=True),
        sa.Column("button_title", sa.Text, nullable=True),
        sa.Column("media", Json, nullable=False),
        _ms("provider_timestamp_ms", nullable=True),
        sa.Column("sender_name", sa.Text, nullable=True),
        _ms("received_at_ms"),
        sa.UniqueConstraint(
            "tenant", "channel", "provider_message_id", name="ux_messages_provider"
        ),
        sa.UniqueConstraint("tenant", "session_id", "seq", name="ux_messages_seq"),
    )

    op.create_table(
        "turn_groups",
        _tenant(),
        sa.Column("group_id", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("restarts", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        _ms("created_at_ms"),
        _ms("updated_at_ms"),
    )

    op.create_table(
        "turns",
        _tenant(),
        sa.Column("turn_id", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("from_seq", sa.BigInteger, nullable=False),
        sa.Column("to_seq", sa.BigInteger, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("fence", sa.BigInteger, nullable=False),
        sa.Column("irreversible_started", sa.Boolean, nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=False),
        _ms("created_at_ms"),
        _ms("updated_at_ms"),
    )
    op.create_index(
        "ux_turns_live",
        "turns",
        ["tenant", "session_id"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )
    op.create_index("ix_turns_session", "turns", ["tenant", "session_id", "created_at_ms"])

    op.create_table(
        "turn_records",
        _tenant(),
        sa.Column("turn_id", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("record", Json, nullable=False),
        _ms("created_at_ms"),
    )

    op.create_table(
        "events",
        sa.Column("event_id", AutoId, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        _ms("at_ms"),
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("turn_id", sa.String(64), nullable=True),
        sa.Column("group_id", sa.String(64), nullable=True),
        sa.Column("agent_version", sa.String(128), nullable=True),
        sa.Column("config_version", sa.String(128), nullable=True),
        sa.Column("data", Json, nullable=False),
    )
    op.create_index("ix_events_tenant", "events", ["tenant", "event_id"])
    op.create_index("ix_events_session", "events", ["tenant", "session_id", "event_id"])

    op.create_table(
        "outbox",
        sa.Column("outbox_id", AutoId, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("turn_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("provider_message_id", sa.String(256), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        _ms("created_at_ms"),
        _ms("updated_at_ms"),
    )
    op.create_index("ix_outbox_session", "outbox", ["tenant", "session_id", "status", "outbox_id"])
    op.create_index("ix_outbox_provider", "outbox", ["tenant", "provider_message_id"])

    op.create_table(
        "step_memo",
        _tenant(),
        sa.Column("group_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("fingerprint", sa.String(128), primary_key=True),
        sa.Column("result", Json, nullable=True),
        _ms("created_at_ms"),
    )

    op.create_table(
        "session_leases",
        _tenant(),
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(256), nullable=False),
        sa.Column("fence", sa.BigInteger, nullable=False),
        _ms("expires_at_ms"),
    )

    op.create_table(
        "timers",
        _tenant(),
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(64), primary_key=True),
        _ms("due_at_ms"),
        sa.Column("payload", Json, nullable=False),
    )
    op.create_index("ix_timers_due", "timers", ["tenant", "due_at_ms"])


def downgrade() -> None:
    op.drop_index("ix_timers_due", table_name="timers")
    op.drop_table("timers")
    op.drop_table("session_leases")
    op.drop_table("step_memo")
    op.drop_index("ix_outbox_provider", table_name="outbox")
    op.drop_index("ix_outbox_session", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_events_session", table_name="events")
    op.drop_index("ix_events_tenant", table_name="events")
    op.drop_table("events")
    op.drop_table("turn_records")
    op.drop_index("ix_turns_session", table_name="turns")
    op.drop_index("ux_turns_live", table_name="turns")
    op.drop_table("turns")
    op.drop_table("turn_groups")
    op.drop_table("messages")
    op.drop_index("ix_sessions_activity", table_name="sessions")
    op.drop_index("ux_sessions_open_key", table_name="sessions")
    op.drop_table("sessions")
