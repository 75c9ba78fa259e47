"""The process settings: one typed object, read once when a process starts and passed down.

Every field is an ``ACF_*`` environment variable (``ACF_HOST``, ``ACF_DB_POOL_SIZE``, ...,
docs/deploying.md); ``acf serve``'s options give the same settings on the command line and
win over the environment. An invalid value is a ``SettingsError`` naming the variable (or
the option) and what was expected.
"""

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from acf.domain.errors import InvalidValue
from acf.service.lease_keeper import LeaseSettings
from acf.service.runtime import RuntimeSettings, SlotSettings

ENV_PREFIX = "ACF_"


class Role(StrEnum):
    """Which part of the service a process runs: ``api`` takes messages in and answers
    reads, ``worker`` runs turns and deliveries, ``all`` both."""

    API = "api"
    WORKER = "worker"
    ALL = "all"


class ConfigSource(StrEnum):
    """Where ``acf serve`` takes each tenant's live configuration from when it starts:
    ``file``: the configuration file is pushed as a version and promoted when the file
    changed since it was last pushed (a new version, or a draft never made live) or the
    tenant has no live version, so a restart never undoes a promote, canary or rollback made
    through the lifecycle; ``store``: the file is pushed, and promoted only for a tenant
    that has no live version yet."""

    FILE = "file"
    STORE = "store"


class SettingsError(InvalidValue):
    """A setting is invalid; the message names its variable or option."""


class AcfSettings(BaseSettings):
    """What a process of acf reads from its environment and command line."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path("data")
    """The folder of the embedded database (when there is no ``database_url``)."""
    config: Path | None = None
    """The configuration file; ``None``: the bundled demo configuration."""
    database_url: str | None = None
    """PostgreSQL: the distributed mode. ``None``: the embedded database in ``data_dir``."""
    redis_url: str | None = None
    log_level: str = "WARNING"
    log_locals: bool = False
    """Tracebacks in the log show each frame's local variables (redacted)."""
    tracing: str = "none"
    role: Role = Role.ALL
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    db_pool_size: int = Field(default=10, ge=1)
    lease_ttl_ms: int = Field(default=LeaseSettings().ttl_ms, gt=0)
    lease_renew_ms: int = Field(default=LeaseSettings().renew_every_ms, gt=0)
    recovery_interval_ms: int = Field(default=1_000, gt=0)
    worker_slots: int = Field(default=256, ge=1)
    tenant_slots: int = Field(default=64, ge=1)
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    config_source: ConfigSource = ConfigSource.FILE
    """``ACF_CONFIG_SOURCE``: ``file`` or ``store`` (``ConfigSource``)."""
    config_refresh_s: float = Field(default=5.0, gt=0)
    """How often each process reads its tenants' configuration pointers again (the safety
    net behind the change notifications)."""
    llm_base_url: str | None = None
    """The demo only: its agent runs on this OpenAI-compatible endpoint (``kind: llm``)."""
    llm_model: str | None = None
    """The demo only: the model to ask there (default ``gpt-4o-mini``)."""

    @field_validator("log_locals", mode="before")
    @classmethod
    def _locals_wanted(cls, value: object) -> object:
        # As ``acf.logging.locals_wanted``: 1, true or yes switch it on, anything else off.
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes")
        return value

    @field_validator("role", mode="before")
    @classmethod
    def _known_role(cls, value: object) -> object:
        if isinstance(value, str) and value not in {r.value for r in Role}:
            raise ValueError(f"expected one of {', '.join(r.value for r in Role)}")
        return value

    @field_validator("config_source", mode="before")
    @classmethod
    def _known_source(cls, value: object) -> object:
        if isinstance(value, str) and value not in {s.value for s in ConfigSource}:
            raise ValueError(f"expected one of {', '.join(s.value for s in ConfigSource)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "AcfSettings":
        if self.role is not Role.ALL and self.database_url is None:
            raise ValueError(
                f"--role {self.role.value} needs --database-url ({ENV_PREFIX}DATABASE_URL)"
            )
        if self.lease_renew_ms >= self.lease_ttl_ms:
            raise ValueError(
                f"{ENV_PREFIX}LEASE_RENEW_MS ({self.lease_renew_ms}) must be below "
                f"{ENV_PREFIX}LEASE_TTL_MS ({self.lease_ttl_ms})"
            )
        return self

    @property
    def distributed(self) -> bool:
        return self.database_url is not None

    @property
    def lease(self) -> LeaseSettings:
        return LeaseSettings(ttl_ms=self.lease_ttl_ms, renew_every_ms=self.lease_renew_ms)

    @property
    def runtime(self) -> RuntimeSettings:
        """The runtime's settings in the distributed mode (workers scan for unheld work)."""
        return RuntimeSettings(
            lease=self.lease,
            recovery_interval_ms=self.recovery_interval_ms,
            slots=SlotSettings(total=self.worker_slots, per_tenant=self.tenant_slots),
        )


# Values shown in an error are the operator's own input, except where a credential may be.
_UNSHOWN = frozenset({"database_url", "redis_url"})


def read_settings(
    options: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> AcfSettings:
    """The settings from ``environ`` (default: the process environment), ``options`` (the
    command line's, by field name) over them; raises ``SettingsError``."""
    given = dict(options or {})
    try:
        if environ is None:
            return AcfSettings(**given)
        return _from_mapping(environ, given)
    except ValidationError as exc:
        raise SettingsError(settings_problems(exc, given.keys())) from None


def _from_mapping(environ: Mapping[str, str], given: dict[str, Any]) -> AcfSettings:
    """Read ``environ`` instead of the process environment (tests, embedding)."""
    names = {ENV_PREFIX + name.upper(): name for name in AcfSettings.model_fields}
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        name = names.get(key.upper())
        if name is not None and raw != "":
            values[name] = raw
    values.update(given)
    # model_validate checks the values without reading the process environment
    return AcfSettings.model_validate(values)


def settings_problems(exc: ValidationError, options: Any = ()) -> str:
    """Each problem as ``ACF_NAME='value': what was expected`` (``--name 'value': ...`` for
    a command-line option)."""
    from_options = set(options)
    problems = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "int_parsing":
            message = "expected a whole number"
        if not error["loc"]:
            problems.append(message)
            continue
        name = str(error["loc"][0])
        shown = "" if name in _UNSHOWN else f"{error['input']!r}"
        if name in from_options:
            label = "--" + name.replace("_", "-")
            problems.append(f"{label} {shown}: {message}" if shown else f"{label}: {message}")
        else:
            label = ENV_PREFIX + name.upper()
            problems.append(f"{label}={shown}: {message}" if shown else f"{label}: {message}")
    return "; ".join(problems)
