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
from pydantic import ValidationError

from acf.adapters.tools.http import HttpToolConfig, http_tool
from acf.config.tools import ConfigModel, ToolDeclaration
from acf.domain.errors import InvalidValue
from acf.ports.tool_backend import Tool


class ToolsDocument(ConfigModel):
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
