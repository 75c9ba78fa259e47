"""The tool ledger: write-ahead rows of every tool execution.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = sa.JSON().with_variant(JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger",
        sa.Column("tenant", sa.String(256), primary_key=True),
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("idempotency_key", sa.String(1024), nullable=False),
        sa.Column("holds_key", sa.SmallInteger, nullable=True),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("turn_id", sa.String(64), nullable=False),
        sa.Column("customer", sa.String(256), nullable=False),
        sa.Column("args", Json, nullable=False),
        sa.Column("result", Json, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("started_at_ms", sa.BigInteger, nullable=False),
        sa.Column("finished_at_ms", sa.BigInteger, nullable=True),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("tenant", "idempotency_key", "holds_key", name="ux_ledger_key"),
    )
    op.create_index("ix_ledger_group", "ledger", ["tenant", "group_id"])
    op.create_index("ix_ledger_customer", "ledger", ["tenant", "customer", "started_at_ms"])
    op.create_index("ix_ledger_tool", "ledger", ["tenant", "tool", "started_at_ms"])


def downgrade() -> None:
    op.drop_index("ix_ledger_tool", table_name="ledger")
    op.drop_index("ix_ledger_customer", table_name="ledger")
    op.drop_index("ix_ledger_group", table_name="ledger")
    op.drop_table("ledger")
