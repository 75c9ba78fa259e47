"""Tools declared in configuration (YAML): HTTP tools, validated with pydantic.

```yaml
tools:
  - name: refund
    policy: irreversible
    business_key: "order-{order_id}"
    args_schema: {type: object, required: [order_id], properties: {order_id: {type: integer}}}
    timeout_ms: 5000
    status_text: Refunding your order...
    http:
      method: POST
      url: https://payments.example.com/orders/{order_id}/refund
      headers: {Authorization: "Bearer ${PAYMENTS_TOKEN}"}
```

Secrets are references (``${NAME}``, read from the environment at call time), never values.
Errors name the source (the file), the path of the field and what was expected.
"""

from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from acf.adapters.tools.http import METHODS, HttpToolConfig, http_tool
from acf.domain.errors import InvalidValue
from acf.domain.tools import DEFAULT_TOOL_TIMEOUT_MS, DedupeScope, SideEffectPolicy, ToolSpec
from acf.ports.tool_backend import Tool

_SECRET_HINT = ("secret", "token", "password", "key", "authorization")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpDeclaration(_Model):
    method: str
    url: str
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value.upper() not in METHODS:
            raise ValueError(f"expected one of {sorted(METHODS)}")
        return value.upper()

    @field_validator("headers")
    @classmethod
    def _no_inline_secrets(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if any(h in name.lower() for h in _SECRET_HINT) and "${" not in value:
                raise ValueError(f"header {name} must reference a secret as ${{NAME}}, not hold it")
        return headers


class ToolSpecFields(_Model):
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
        )


class ToolDeclaration(ToolSpecFields):
    http: HttpDeclaration


class ToolsDocument(_Model):
    tools: list[ToolDeclaration]


def parse(body: Any, source: str) -> list[ToolDeclaration]:
    """Validate a ``{"tools": [...]}`` mapping; errors name ``source`` and the field path."""
    try:
        declarations = ToolsDocument.model_validate(body).tools
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidValue(f"{source}: {problems}") from None
    for index, d in enumerate(declarations):
        try:
            d.to_spec()
            HttpToolConfig(d.http.method, d.http.url, d.http.headers)
        except InvalidValue as exc:
            raise InvalidValue(f"{source}: tools.{index}: {exc}") from None
    return declarations


def load(path: Path) -> list[ToolDeclaration]:
    try:
        body = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidValue(f"{path}: {exc}") from None
    return parse(body, str(path))


def build(declarations: list[ToolDeclaration], client: httpx.AsyncClient) -> list[Tool]:
    """The declared tools, ready for a ``ToolRegistry``."""
    return [
        http_tool(d.to_spec(), HttpToolConfig(d.http.method, d.http.url, d.http.headers), client)
        for d in declarations
    ]
