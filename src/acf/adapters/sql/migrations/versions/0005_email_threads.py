"""Email threading: the Message-IDs of mails in and out, per customer (``email_threads``).

On PostgreSQL the table gets the row-level security of revision 0004: granted to
``acf_tenant`` and ``acf_scanner``, the ``acf_tenant_isolation`` policy forced for the
owner too, and its id sequence usable by both roles.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLE = "email_threads"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("row_id", AutoId, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("customer", sa.String(256), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("message_id", sa.String(998), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("refs", sa.Text, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            "tenant", "customer", "direction", "message_id", name="ux_email_threads_mail"
        ),
    )
    op.create_index("ix_email_threads_message", TABLE, ["tenant", "message_id"])
    op.create_index("ix_email_threads_latest", TABLE, ["tenant", "customer", "direction", "at_ms"])
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {TABLE} TO acf_tenant, acf_scanner")
    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY acf_tenant_isolation ON {TABLE} "
        "USING (tenant = current_setting('acf.tenant', true)) "
        "WITH CHECK (tenant = current_setting('acf.tenant', true))"
    )
    op.execute(f"GRANT USAGE ON SEQUENCE {TABLE}_row_id_seq TO acf_tenant, acf_scanner")


def downgrade() -> None:
    # The policy, the grants and the sequence go with the table.
    op.drop_index("ix_email_threads_latest", table_name=TABLE)
    op.drop_index("ix_email_threads_message", table_name=TABLE)
    op.drop_table(TABLE)
