"""The ``python`` pipeline kind: your own pipeline, made by ``factory``
(``"package.module:callable"``) called with ``options`` as keyword arguments."""

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acf.config.model import PythonPipelineFields
from acf.domain.errors import InvalidValue
from acf.domain.tools import ToolSpec
from acf.ports.pipeline import Pipeline


class PythonKind:
    def load(self, fields: Any, where: str, base_dir: Path) -> None:
        return None  # the factory is imported when the pipeline is built

    def build(
        self, fields: Any, files: object | None, tools: Sequence[ToolSpec], where: str
    ) -> Pipeline:
        assert isinstance(fields, PythonPipelineFields)
        module_name, _, attribute = fields.factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
            pipeline = factory(**fields.options)
        except Exception as exc:
            raise InvalidValue(f"{where}.factory: {fields.factory}: {exc!r}") from None
        if not isinstance(pipeline, Pipeline):
            raise InvalidValue(
                f"{where}.factory: {fields.factory} returned "
                f"{type(pipeline).__name__}, not a Pipeline (name, version, async run)"
            )
        return pipeline


KIND = PythonKind()
