"""The HTTP API: hashed API keys, stored responses of idempotent requests, and the trace
id a session's next turn inherits from its oldest unconsumed message.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = sa.JSON().with_variant(JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("pending_trace_id", sa.String(64), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("trace_id", sa.String(64), nullable=True))
    op.create_table(
        "api_keys",
        sa.Column("tenant", sa.String(256), primary_key=True),
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("revoked_at_ms", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "http_requests",
        sa.Column("tenant", sa.String(256), primary_key=True),
        sa.Column("idempotency_key", sa.String(256), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("response", Json, nullable=True),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("http_requests")
    op.drop_table("api_keys")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("trace_id")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("pending_trace_id")
