"""People in the loop: session modes, human handoff, operators' notes, the abuse firewall.

- ``sessions``: ``mode`` (agent | human | cooldown | blocked), its reason, since and until
  (a cool-down's end), and the count of fallback answers (the tenant's handoff rule).
- ``turns.kind``: agent | human (an operator's reply) | drop (a blocked customer's messages).
- ``handoffs``, ``operator_notes``, ``customer_blocks``, ``customer_counters``.

On PostgreSQL the new tables get the row-level security of revision 0004; the columns added
to existing tables are under those tables' policies.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("handoffs", "operator_notes", "customer_blocks", "customer_counters")


def _ms(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=nullable)


def _partial(name: str, table: str, columns: list[str], condition: str, unique: bool) -> None:
    op.create_index(
        name,
        table,
        columns,
        unique=unique,
        sqlite_where=sa.text(condition),
        postgresql_where=sa.text(condition),
    )


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(
            sa.Column("mode", sa.String(16), nullable=False, server_default=sa.text("'agent'"))
        )
        batch.add_column(sa.Column("mode_reason", sa.Text, nullable=True))
        batch.add_column(_ms("mode_since_ms", nullable=True))
        batch.add_column(_ms("mode_until_ms", nullable=True))
        batch.add_column(
            sa.Column("fallbacks", sa.Integer, nullable=False, server_default=sa.text("0"))
        )
    _partial(
        "ix_sessions_mode",
        "sessions",
        ["tenant", "mode", "mode_since_ms"],
        "mode <> 'agent'",
        unique=False,
    )
    with op.batch_alter_table("turns") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(16), nullable=False, server_default=sa.text("'agent'"))
        )
    op.create_table(
        "handoffs",
        sa.Column("tenant", sa.String(256), primary_key=True),
        sa.Column("handoff_id", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("opened_by", sa.String(128), nullable=True),
        _ms("opened_at_ms"),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("claimed_by_name", sa.String(256), nullable=True),
        _ms("claimed_at_ms", nullable=True),
        _ms("claim_expires_at_ms", nullable=True),
        _ms("last_operator_reply_at_ms", nullable=True),
        _ms("sla_breached_at_ms", nullable=True),
        _ms("still_waiting_at_ms", nullable=True),
        _ms("resolved_at_ms", nullable=True),
        sa.Column("resolved_by", sa.String(128), nullable=True),
        sa.Column("resume_note", sa.Text, nullable=True),
    )
    _partial(
        "ux_handoffs_open",
        "handoffs",
        ["tenant", "session_id"],
        "resolved_at_ms IS NULL",
        unique=True,
    )
    op.create_index("ix_handoffs_inbox", "handoffs", ["tenant", "resolved_at_ms", "opened_at_ms"])
    op.create_index("ix_handoffs_session", "handoffs", ["tenant", "session_id", "opened_at_ms"])
    op.create_table(
        "operator_notes",
        sa.Column("tenant", sa.String(256), primary_key=True),
        sa.Column("note_id", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("handoff_id", sa.String(64), nullable=True),
        sa.Column("author_key_id", sa.String(128), nullable=False),
        sa.Column("author_name", sa.String(256), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        _ms("created_at_ms"),
    )
    op.create_index(
        "ix_operator_notes_session", "operator_notes", ["tenant", "session_id", "created_at_ms"]
    )
    op.create_table(
        "customer_blocks",
        sa.Column("tenant", sa.String(256), primary_key=True),
        sa.Column("block_id", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("customer", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        _ms("created_at_ms"),
        _ms("expires_at_ms", nullable=True),
        _ms("lifted_at_ms", nullable=True),
        sa.Column("lifted_by", sa.String(128), nullable=True),
    )
    _partial(
        "ux_customer_blocks_active",
        "customer_blocks",
        ["tenant", "channel", "customer"],
        "lifted_at_ms IS NULL",
        unique=True,
    )
    op.create_index("ix_customer_blocks_created", "customer_blocks", ["tenant", "created_at_ms"])
    op.create_table(
        "customer_counters",
        sa.Column("tenant", sa.String(256), primary_key=True),
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("customer", sa.String(256), primary_key=True),
        sa.Column("bucket", sa.String(8), primary_key=True),
        sa.Column("bucket_start_ms", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_customer_counters_start", "customer_counters", ["tenant", "bucket_start_ms"]
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
    for table in reversed(TABLES):
        op.drop_table(table)
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("kind")
    op.drop_index("ix_sessions_mode", table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        for column in ("fallbacks", "mode_until_ms", "mode_since_ms", "mode_reason", "mode"):
            batch.drop_column(column)
