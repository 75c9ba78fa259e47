"""Tool declarations as configuration: a ``ToolSpec``'s fields and an HTTP backend.

Secrets are references (``${NAME}``, read from the environment at call time), never values.
"""

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from acf.config.secrets import SECRET_REF
from acf.domain.tools import DEFAULT_TOOL_TIMEOUT_MS, DedupeScope, SideEffectPolicy, ToolSpec

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_SECRET_HINT = ("secret", "token", "password", "key", "authorization")


class ConfigModel(BaseModel):
    """Configuration: unknown keys are errors; values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
"""A name in the configuration: a tenant, an agent, a tool, a route."""


class HttpDeclaration(ConfigModel):
    method: str
    url: str
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value.upper() not in HTTP_METHODS:
            raise ValueError(f"expected one of {sorted(HTTP_METHODS)}")
        return value.upper()

    @field_validator("headers")
    @classmethod
    def _no_inline_secrets(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if any(h in name.lower() for h in _SECRET_HINT) and not SECRET_REF.search(value):
                raise ValueError(
                    f"header {name} must reference a secret as ${{NAME}} (capitals, digits, _), "
                    "not hold it"
                )
            bad = re.findall(r"\$\{([^}]*)\}", value)
            if any(not SECRET_REF.fullmatch("${" + ref + "}") for ref in bad):
                raise ValueError(f"header {name}: a secret reference is ${{NAME}} in capitals")
        return headers


class ToolSpecFields(ConfigModel):
    """The fields of a ``ToolSpec``, as configuration."""

    name: str
    policy: SideEffectPolicy
    args_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    business_key: str | None = None
    dedupe_scope: DedupeScope | None = None
    dedupe_ttl_ms: int | None = None
    compensation: str | None = None
    requires_confirmation: bool = False
    timeout_ms: int = DEFAULT_TOOL_TIMEOUT_MS
    status_text: str | None = None
    description: str | None = Field(default=None, max_length=1024)

    def to_spec(self) -> ToolSpec:
        return ToolSpec(
            self.name,
            self.policy,
            args_schema=self.args_schema,
            business_key=self.business_key,
            dedupe_scope=self.dedupe_scope,
            dedupe_ttl_ms=self.dedupe_ttl_ms,
            compensation=self.compensation,
            requires_confirmation=self.requires_confirmation,
            timeout_ms=self.timeout_ms,
            status_text=self.status_text,
            description=self.description,
        )


class ToolDeclaration(ToolSpecFields):
    """A tool served by an HTTP endpoint."""

    http: HttpDeclaration
