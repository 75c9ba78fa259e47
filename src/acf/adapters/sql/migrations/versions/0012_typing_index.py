"""A partial index on the customer's typing signals: a session's latest one in one read.

A turn's window and its typing hold read the session's latest ``typing.started`` /
``typing.stopped`` event (in distributed mode the signal reached an API process, which
stored it). Through ``ix_events_session`` that read walks the session's events backwards,
filtering the kind row by row: all of them when the session never had a typing signal.
``ix_events_typing`` holds only those two kinds, so the read is one index probe whatever
the session holds. The query names the kinds as literals, as the predicate does
(``acf.adapters.sql.events.kinds_predicate``): SQLite and PostgreSQL then use the index.
On PostgreSQL the index is built ``CONCURRENTLY``, so writes to ``events`` go on meanwhile.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TYPING_EVENTS = "kind IN ('typing.started', 'typing.stopped')"
"""As ``acf.adapters.sql.schema.TYPING_EVENTS`` says it (a migration keeps its own copy:
it describes the schema as it was at this revision)."""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(
            "ix_events_typing",
            "events",
            ["tenant", "session_id", "event_id"],
            sqlite_where=sa.text(TYPING_EVENTS),
        )
        return
    # CONCURRENTLY: a large events table keeps taking writes while the index is built. It
    # cannot run in a transaction, hence the autocommit block (the revisions before this one
    # are committed first). A valid index of this name (built ahead by an operator) is kept;
    # an invalid one, what a build that failed half-way leaves, is dropped and built again.
    with op.get_context().autocommit_block():
        valid = (
            op.get_bind()
            .execute(
                sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
                {"name": "ix_events_typing"},
            )
            .scalar_one_or_none()
        )
        if valid:
            return
        if valid is not None:
            op.drop_index("ix_events_typing", table_name="events", postgresql_concurrently=True)
        op.create_index(
            "ix_events_typing",
            "events",
            ["tenant", "session_id", "event_id"],
            postgresql_where=sa.text(TYPING_EVENTS),
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index("ix_events_typing", table_name="events")
        return
    with op.get_context().autocommit_block():
        op.drop_index("ix_events_typing", table_name="events", postgresql_concurrently=True)
