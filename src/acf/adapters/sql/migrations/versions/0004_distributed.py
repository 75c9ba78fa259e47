"""Distributed mode on PostgreSQL: the store's clock, commit-ordered event ids, and
row-level security by tenant. Nothing changes on SQLite.

- ``acf_now(caller)``: the time deadlines are compared with: the database's clock, or the
  caller's when the connection set ``acf.clock = 'caller'`` (tests on a virtual clock).
- ``acf_next_event_id()``: transaction id * 65536 + the event's rank in its transaction.
- Roles ``acf_tenant`` (subject to row-level security) and ``acf_scanner`` (BYPASSRLS, for
  recovery scans and API-key lookups), both NOLOGIN: the application's login role is
  granted both and switches per transaction (``SET LOCAL ROLE``). Every acf table gets a
  policy ``tenant = current_setting('acf.tenant')``, forced for the table owner too, so a
  query without a tenant sees nothing. Creating a BYPASSRLS role needs a superuser;
  roles are cluster-wide and are left in place by the downgrade.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "sessions",
    "messages",
    "turn_groups",
    "turns",
    "turn_records",
    "events",
    "outbox",
    "step_memo",
    "session_leases",
    "timers",
    "ledger",
    "api_keys",
    "http_requests",
)

_FUNCTIONS = """
CREATE OR REPLACE FUNCTION acf_now(caller bigint) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
  SELECT CASE WHEN current_setting('acf.clock', true) = 'caller' THEN caller
         ELSE (extract(epoch FROM clock_timestamp()) * 1000)::bigint END
$$;
CREATE OR REPLACE FUNCTION acf_next_event_id() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  rank integer := COALESCE(NULLIF(current_setting('acf.event_rank', true), ''), '0')::integer + 1;
BEGIN
  IF rank >= 65536 THEN
    RAISE EXCEPTION 'acf: more than 65535 events in one transaction';
  END IF;
  PERFORM set_config('acf.event_rank', rank::text, true);
  RETURN pg_current_xact_id()::text::bigint * 65536 + rank;
END
$$;
"""

_ROLES = """
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'acf_tenant') THEN
    CREATE ROLE acf_tenant NOLOGIN NOBYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'acf_scanner') THEN
    CREATE ROLE acf_scanner NOLOGIN BYPASSRLS;
  END IF;
END
$$;
GRANT acf_tenant TO CURRENT_USER;
GRANT acf_scanner TO CURRENT_USER;
"""


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(_FUNCTIONS)
    op.execute(_ROLES)
    for table in TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO acf_tenant, acf_scanner")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY acf_tenant_isolation ON {table} "
            "USING (tenant = current_setting('acf.tenant', true)) "
            "WITH CHECK (tenant = current_setting('acf.tenant', true))"
        )
    op.execute("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO acf_tenant, acf_scanner")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP POLICY IF EXISTS acf_tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"REVOKE ALL ON {table} FROM acf_tenant, acf_scanner")
    op.execute("REVOKE USAGE ON ALL SEQUENCES IN SCHEMA public FROM acf_tenant, acf_scanner")
    op.execute("DROP FUNCTION IF EXISTS acf_next_event_id()")
    op.execute("DROP FUNCTION IF EXISTS acf_now(bigint)")
