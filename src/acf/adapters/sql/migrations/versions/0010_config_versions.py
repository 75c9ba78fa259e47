"""Configuration versions and session lifecycle (DESIGN §17).

- ``config_versions``: each tenant's immutable configurations, numbered per tenant; a
  content hash is unique per tenant (pushing the same content again finds its version).
- ``config_pointers``: one row per tenant: the live version, the previous live one, the
  canary and its share. A session open reads it in the transaction that opens the session.
- ``sessions``: the version a session is pinned to, whether it is in the canary's arm, and
  when it closed.
- ``turn_records``: the version label, outcome, category, fallback and hand-off flags and
  duration copied out of the record, indexed for the canary's comparison.
- ``api_keys.scope``: "api" (as before), "admin", "operator".

On PostgreSQL the new tables get the row-level security of revision 0004.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# On SQLite, JSON is stored as TEXT (see revision 0001).
Json = sa.JSON().with_variant(JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")
TABLES = ("config_versions", "config_pointers")


def _ms(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "config_versions",
        sa.Column("tenant", sa.String(256), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("content_hash", sa.String(80), nullable=False),
        sa.Column("source", Json, nullable=False),
        sa.Column("resolved", Json, nullable=False),
        sa.Column("provenance", Json, nullable=False),
        sa.Column("author", sa.String(256), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("apply", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rolled_back", sa.Boolean, nullable=False),
        sa.Column("gates", Json, nullable=False),
        _ms("created_at_ms"),
        _ms("updated_at_ms"),
        sa.UniqueConstraint("tenant", "content_hash", name="ux_config_versions_hash"),
    )
    op.create_table(
        "config_pointers",
        sa.Column("tenant", sa.String(256), primary_key=True),
        sa.Column("live", sa.Integer, nullable=True),
        sa.Column("previous_live", sa.Integer, nullable=True),
        sa.Column("canary", sa.Integer, nullable=True),
        sa.Column("canary_share", sa.Integer, nullable=False),
        _ms("canary_started_at_ms", nullable=True),
        _ms("canary_step_at_ms", nullable=True),
        _ms("updated_at_ms"),
    )
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("config_version", sa.Integer, nullable=True))
        batch.add_column(
            sa.Column("canary", sa.Boolean, nullable=False, server_default=sa.text("false"))
        )
        batch.add_column(_ms("closed_at_ms", nullable=True))
    op.create_index(
        "ix_sessions_config_version", "sessions", ["tenant", "config_version", "status"]
    )
    # the idle-close sweep's cross-tenant scan: open sessions by their last activity
    op.create_index(
        "ix_sessions_open_idle",
        "sessions",
        ["updated_at_ms"],
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    with op.batch_alter_table("turn_records") as batch:
        batch.add_column(sa.Column("config_version", sa.String(128), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(16), nullable=True))
        batch.add_column(sa.Column("category", sa.String(64), nullable=True))
        batch.add_column(sa.Column("fallback", sa.Boolean, nullable=True))
        batch.add_column(sa.Column("handoff", sa.Boolean, nullable=True))
        batch.add_column(_ms("duration_ms", nullable=True))
    op.create_index(
        "ix_turn_records_config_version",
        "turn_records",
        ["tenant", "config_version", "created_at_ms"],
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("scope", sa.String(16), nullable=False, server_default=sa.text("'api'"))
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
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("scope")
    op.drop_index("ix_turn_records_config_version", table_name="turn_records")
    with op.batch_alter_table("turn_records") as batch:
        for column in ("duration_ms", "handoff", "fallback", "category", "outcome"):
            batch.drop_column(column)
        batch.drop_column("config_version")
    op.drop_index("ix_sessions_open_idle", table_name="sessions")
    op.drop_index("ix_sessions_config_version", table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("closed_at_ms")
        batch.drop_column("canary")
        batch.drop_column("config_version")
    op.drop_table("config_pointers")
    op.drop_table("config_versions")
