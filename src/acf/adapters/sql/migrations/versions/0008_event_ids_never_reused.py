"""Event ids are never given twice on SQLite: ``events`` becomes an AUTOINCREMENT table.

A plain SQLite rowid is the largest id + 1, so once the newest events were deleted (by an
operator's retention job, say) their ids would be given again, and a stream resuming after
one of them would skip the new events. With AUTOINCREMENT SQLite remembers the largest id
ever given (``sqlite_sequence``). SQLite cannot change that on a table in place: the table
is rebuilt (create, copy, drop, rename) with its rows and indexes; copying the rows sets
the remembered id to the largest one copied. The downgrade rebuilds it without.

Nothing changes on PostgreSQL: its ids come from ``acf_next_event_id()`` (revision 0004),
the transaction id times 65536 plus the event's rank, never reused.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild(autoincrement: bool) -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "events", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
