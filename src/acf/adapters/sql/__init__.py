"""The one relational schema (SQLAlchemy Core) and its Alembic migrations, for both dialects."""
