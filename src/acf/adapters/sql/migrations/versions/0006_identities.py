"""Cross-channel customers and the fallback ladder (DESIGN §9).

- ``customer_identities``: which customer each channel address belongs to (at most one
  per tenant and channel).
- ``session_routes``: an address on a channel that answers into a given session (after a
  fallback or an operator's ``continue``), so the customer's reply there joins it.
- ``messages.address``: who sent the message, on its channel (the session's customer
  unless the message came through a route).
- ``outbox.fallback_of`` (unique per tenant: a row falls back at most once),
  ``outbox.sort_id`` (a fallback copy takes its original's place in the order) and
  ``outbox.channel`` / ``outbox.address`` (where the row was, or is to be, sent).

On PostgreSQL the new tables get the row-level security of revision 0004.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("customer_identities", "session_routes")


def upgrade() -> None:
    op.create_table(
        "customer_identities",
        sa.Column("tenant", sa.String(256), primary_key=True),
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("address", sa.String(256), primary_key=True),
        sa.Column("customer_id", sa.String(256), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_customer_identities_customer", "customer_identities", ["tenant", "customer_id"]
    )
    op.create_table(
        "session_routes",
        sa.Column("tenant", sa.String(256), primary_key=True),
        sa.Column("agent", sa.String(256), primary_key=True),
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("address", sa.String(256), primary_key=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("address", sa.String(256), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("fallback_of", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("sort_id", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("channel", sa.String(32), nullable=True))
        batch.add_column(sa.Column("address", sa.String(256), nullable=True))
    op.create_index("ux_outbox_fallback", "outbox", ["tenant", "fallback_of"], unique=True)
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
    op.drop_index("ux_outbox_fallback", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("address")
        batch.drop_column("channel")
        batch.drop_column("sort_id")
        batch.drop_column("fallback_of")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("address")
    op.drop_table("session_routes")
    op.drop_index("ix_customer_identities_customer", table_name="customer_identities")
    op.drop_table("customer_identities")
