"""Agent sessions and dead letters (DESIGN §16).

- ``agent_sessions``: which session of an external agent service a conversation talks
  to, its status, the question it asked and the key of its current execution. At most one
  row per conversation is open (ACTIVE or AWAITING_USER): a unique partial index.
- ``dead_letters``: turns whose agent failed for good (what was asked, the error, the
  attempts, the trace id) and their replay: requested at most once, then the REPLAY turn
  that ran it.

On PostgreSQL both tables get the row-level security of revision 0004.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-14
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# On SQLite, JSON is stored as TEXT (see revision 0001).
Json = sa.JSON().with_variant(JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")
OPEN = sa.text("status IN ('ACTIVE', 'AWAITING_USER')")
TABLES = ("agent_sessions", "dead_letters")


def _ms(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "agent_sessions",
        sa.Column("tenant", sa.String(256), primary_key=True),
        sa.Column("row_id", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(256), nullable=False),
        sa.Column("profile", sa.String(256), nullable=False),
        sa.Column("agent_session_id", sa.String(256), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("pending_ask_id", sa.String(256), nullable=True),
        sa.Column("pending_question", sa.Text, nullable=True),
        sa.Column("pending_options", Json, nullable=False),
        _ms("asked_at_ms", nullable=True),
        sa.Column("execution_key", sa.String(256), nullable=True),
        sa.Column("execution_input", sa.String(256), nullable=True),
        sa.Column("execution_open", sa.Boolean, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        _ms("created_at_ms"),
        _ms("last_interaction_at_ms"),
    )
    op.create_index(
        "ux_agent_sessions_open",
        "agent_sessions",
        ["tenant", "session_id"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_index(
        "ix_agent_sessions_session",
        "agent_sessions",
        ["tenant", "session_id", "last_interaction_at_ms"],
    )
    op.create_index(
        "ix_agent_sessions_agent_session", "agent_sessions", ["tenant", "agent_session_id"]
    )
    op.create_index(
        "ix_agent_sessions_status",
        "agent_sessions",
        ["tenant", "status", "last_interaction_at_ms"],
    )

    op.create_table(
        "dead_letters",
        sa.Column("tenant", sa.String(256), primary_key=True),
        sa.Column("dead_letter_id", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(256), nullable=False),
        sa.Column("turn_id", sa.String(64), nullable=False),
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("pipeline", sa.String(256), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("request", Json, nullable=False),
        _ms("created_at_ms"),
        _ms("replay_requested_at_ms", nullable=True),
        sa.Column("replay_turn_id", sa.String(64), nullable=True),
        _ms("replayed_at_ms", nullable=True),
    )
    op.create_index("ix_dead_letters_created", "dead_letters", ["tenant", "created_at_ms"])
    op.create_index(
        "ix_dead_letters_session", "dead_letters", ["tenant", "session_id", "created_at_ms"]
    )
    pending = sa.text("replay_requested_at_ms IS NOT NULL AND replayed_at_ms IS NULL")
    op.create_index(
        "ix_dead_letters_replay_pending",
        "dead_letters",
        ["tenant", "session_id"],
        sqlite_where=pending,
        postgresql_where=pending,
    )

    if op.get_context().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO acf_tenant, acf_scanner")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY acf_tenant_isolation ON {table} "
            "USING (tenant = current_setting('acf.tenant', true)) "
            "WITH CHECK (tenant = current_setting('acf.tenant', true))"
        )


def downgrade() -> None:
    # The policies and grants go with the tables.
    op.drop_index("ix_dead_letters_replay_pending", table_name="dead_letters")
    op.drop_index("ix_dead_letters_session", table_name="dead_letters")
    op.drop_index("ix_dead_letters_created", table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_index("ix_agent_sessions_status", table_name="agent_sessions")
    op.drop_index("ix_agent_sessions_agent_session", table_name="agent_sessions")
    op.drop_index("ix_agent_sessions_session", table_name="agent_sessions")
    op.drop_index("ux_agent_sessions_open", table_name="agent_sessions")
    op.drop_table("agent_sessions")
