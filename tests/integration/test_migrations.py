"""The Alembic migrations against real SQLite and PostgreSQL databases.

Three promises are checked on each backend:

- ``upgrade head`` on an empty database reaches ``head_revision()`` and builds exactly the
  schema ``acf.adapters.sql.schema.metadata`` describes;
- ``downgrade base`` removes every acf table again;
- the round trip (up, down, up) works.

Alembic's ``compare_metadata`` does not compare the WHERE clause of a partial index (a
planted difference in ``ux_sessions_open_key``'s predicate goes unreported), so the schema
check also compares a full reflection of the migrated database with that of a database
built by ``metadata.create_all`` on the same server, which covers the predicates.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from acf.adapters.sql import migrate, schema
from tests.integration.services import require_postgres, temporary_database

VERSION_TABLE = "alembic_version"


@contextmanager
def _engine(url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def schema_diff(url: str) -> list[Any]:
    """Alembic's differences between the database at ``url`` and ``schema.metadata``."""
    with _engine(url) as engine, engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, schema.metadata))


def _normalise(value: Any) -> Any:
    """Make a reflection result comparable: SQL types and clauses become their text."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, sa.types.TypeEngine | sa.sql.ClauseElement):
        return str(value)
    return value


def reflect(url: str) -> dict[str, dict[str, Any]]:
    """Every acf table's columns, keys, constraints and indexes, as the server reports them."""
    with _engine(url) as engine:
        inspector = sa.inspect(engine)
        tables: dict[str, dict[str, Any]] = {}
        for table in sorted(inspector.get_table_names()):
            if table == VERSION_TABLE:
                continue
            tables[table] = _normalise(
                {
                    "columns": inspector.get_columns(table),
                    "primary_key": inspector.get_pk_constraint(table),
                    "unique": sorted(
                        inspector.get_unique_constraints(table), key=lambda c: c["name"] or ""
                    ),
                    "indexes": sorted(inspector.get_indexes(table), key=lambda i: i["name"] or ""),
                    "foreign_keys": inspector.get_foreign_keys(table),
                    "checks": inspector.get_check_constraints(table),
                }
            )
        return tables


def acf_tables(url: str) -> set[str]:
    with _engine(url) as engine:
        return set(sa.inspect(engine).get_table_names()) - {VERSION_TABLE}


def _partial_indexes(dialect: str) -> dict[str, str]:
    """Index name -> table for every index ``schema.metadata`` gives a WHERE on ``dialect``."""
    return {
        index.name: table.name
        for table in schema.metadata.tables.values()
        for index in table.indexes
        if index.name is not None and index.dialect_options[dialect]["where"] is not None
    }


def assert_schema_matches_metadata(url: str, reference_url: str) -> None:
    """The database at ``url`` is the schema of ``schema.metadata``, partial indexes included.

    ``reference_url`` is an empty database on the same server, filled here by
    ``metadata.create_all`` so both reflections are normalised by the same server.
    """
    assert schema_diff(url) == []

    with _engine(reference_url) as engine:
        schema.metadata.create_all(engine)
    migrated = reflect(url)
    assert set(migrated) == set(schema.metadata.tables)
    assert migrated == reflect(reference_url)

    # Guard the reflection itself: if this SQLAlchemy could not read index predicates, both
    # sides would show none and the comparison above would pass vacuously.
    dialect = sa.make_url(url).get_dialect().name
    partial = _partial_indexes(dialect)
    assert partial, "schema.metadata declares partial indexes; none were found"
    for name, table in partial.items():
        (index,) = [i for i in migrated[table]["indexes"] if i["name"] == name]
        assert index["dialect_options"].get(f"{dialect}_where"), (name, index)


def assert_round_trip(url: str, reference_url: str) -> None:
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    assert_schema_matches_metadata(url, reference_url)

    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None
    assert acf_tables(url) == set()

    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    assert schema_diff(url) == []
    assert reflect(url) == reflect(reference_url)


def test_sqlite_migrations_build_the_schema_and_round_trip(tmp_path: Path) -> None:
    assert_round_trip(
        _sqlite_url(tmp_path / "acf.db"), reference_url=_sqlite_url(tmp_path / "reference.db")
    )


@pytest.mark.postgres
def test_postgres_migrations_build_the_schema_and_round_trip() -> None:
    require_postgres()
    with temporary_database() as url, temporary_database() as reference_url:
        assert_round_trip(url, reference_url)


def _heads(url: str) -> set[str]:
    with _engine(url) as engine, engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def _as_set(revisions: str | tuple[str, ...] | None) -> set[str]:
    if revisions is None:
        return set()
    if isinstance(revisions, str):
        return {revisions}
    return set(revisions)


def test_every_revision_has_a_working_downgrade(tmp_path: Path) -> None:
    """Step down from head one revision at a time; each step must undo exactly its upgrade."""
    url = _sqlite_url(tmp_path / "acf.db")
    script = ScriptDirectory.from_config(migrate.alembic_config(url))
    revisions = list(script.walk_revisions())  # head first, base last
    assert revisions, "no migration scripts found"
    assert revisions[0].revision == migrate.head_revision()
    for revision in revisions:
        assert callable(getattr(revision.module, "downgrade", None)), (
            f"revision {revision.revision} ({revision.path}) has no downgrade()"
        )

    migrate.upgrade(url)
    for revision in revisions:
        assert _heads(url) == {revision.revision}
        at_revision = reflect(url)

        migrate.downgrade(url, "-1")
        assert _heads(url) == _as_set(revision.down_revision), revision.revision
        # A downgrade that leaves anything behind makes re-applying the upgrade fail (or
        # build something else); one that removes too much shows up as a different schema.
        migrate.upgrade(url, revision.revision)
        assert reflect(url) == at_revision, revision.revision
        migrate.downgrade(url, "-1")

    assert migrate.current_revision(url) is None
    assert acf_tables(url) == set()


@contextmanager
def _statements() -> Iterator[list[str]]:
    """Every statement any engine sends meanwhile, its spaces collapsed."""
    sent: list[str] = []

    def record(conn: sa.Connection, cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split()))

    sa.event.listen(sa.Engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", record)


def _typing_index_valid(url: str) -> bool | None:
    with _engine(url) as engine, engine.connect() as conn:
        valid: bool | None = conn.execute(
            sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
            {"name": "ix_events_typing"},
        ).scalar_one_or_none()
        return valid


@pytest.mark.postgres
def test_postgres_builds_the_typing_index_concurrently_over_a_failed_builds_leftover() -> None:
    """0012 builds ``ix_events_typing`` with CREATE INDEX CONCURRENTLY (writes to ``events``
    go on meanwhile); a build that failed half-way leaves an INVALID
    index of that name, which the next run replaces; its downgrade drops it concurrently."""
    require_postgres()
    with temporary_database() as url, temporary_database() as reference_url:
        migrate.upgrade(url, "0011")
        with _engine(url) as engine, engine.begin() as conn:
            # What a failed CREATE INDEX CONCURRENTLY leaves: the index, marked invalid.
            conn.execute(sa.text("CREATE INDEX ix_events_typing ON events (tenant)"))
            conn.execute(
                sa.text(
                    "UPDATE pg_index SET indisvalid = false "
                    "WHERE indexrelid = 'ix_events_typing'::regclass"
                )
            )
        with _statements() as sent:
            migrate.upgrade(url)
        # (PostgreSQL refuses CONCURRENTLY inside a transaction block: that it ran says where)
        built = [s.split(" ON ")[0] for s in sent if s.startswith("CREATE INDEX")]
        assert built == ["CREATE INDEX CONCURRENTLY ix_events_typing"]
        assert "DROP INDEX CONCURRENTLY ix_events_typing" in sent
        assert _typing_index_valid(url) is True
        assert_schema_matches_metadata(url, reference_url)

        with _statements() as sent:
            migrate.downgrade(url, "0011")
        assert "DROP INDEX CONCURRENTLY ix_events_typing" in sent
        assert _typing_index_valid(url) is None


@pytest.mark.postgres
def test_postgres_keeps_a_valid_typing_index_built_ahead() -> None:
    """An operator who built the index ahead of the upgrade keeps it: no drop, no rebuild."""
    require_postgres()
    with temporary_database() as url:
        migrate.upgrade(url, "0011")
        with _engine(url) as engine, engine.begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE INDEX ix_events_typing ON events (tenant, session_id, event_id) "
                    "WHERE kind IN ('typing.started', 'typing.stopped')"
                )
            )
        with _statements() as sent:
            migrate.upgrade(url)
        assert not [s for s in sent if s.startswith(("CREATE INDEX", "DROP INDEX"))]
        assert _typing_index_valid(url) is True
        assert migrate.current_revision(url) == migrate.head_revision()
