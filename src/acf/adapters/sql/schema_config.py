"""The tables of configuration versions (revision 0010, DESIGN §17), on
``acf.adapters.sql.schema.metadata``."""

import sqlalchemy as sa

from acf.adapters.sql.schema import Json, Ms, Tenant, metadata

# Configuration versions (DESIGN §17): each tenant's immutable configurations, numbered per
# tenant, and one pointer row per tenant (live, previous live, canary and its share).
config_versions = sa.Table(
    "config_versions",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
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
    sa.Column("created_at_ms", Ms, nullable=False),
    sa.Column("updated_at_ms", Ms, nullable=False),
    sa.UniqueConstraint("tenant", "content_hash", name="ux_config_versions_hash"),
)

config_pointers = sa.Table(
    "config_pointers",
    metadata,
    sa.Column("tenant", Tenant, primary_key=True),
    sa.Column("live", sa.Integer, nullable=True),
    sa.Column("previous_live", sa.Integer, nullable=True),
    sa.Column("canary", sa.Integer, nullable=True),
    sa.Column("canary_share", sa.Integer, nullable=False),
    sa.Column("canary_started_at_ms", Ms, nullable=True),
    sa.Column("canary_step_at_ms", Ms, nullable=True),
    sa.Column("updated_at_ms", Ms, nullable=False),
)
