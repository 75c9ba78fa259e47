"""The ``python`` pipeline kind: your own pipeline, made by ``factory``
(``"package.module:callable"``) called with ``options`` as keyword arguments.

The module is looked up next to the configuration file: ``agents.desk:build`` finds
``agents/desk.py`` (or ``agents/desk/__init__.py``) in the configuration file's folder,
which is then added at the end of ``sys.path`` (so the module's own imports of its
neighbours work, and a folder there never shadows an installed package acf imports). No
``PYTHONPATH`` is needed. A module not found there is imported as usual (an installed
package). The module file's bytes count in the configuration's version.
"""

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acf.config.kinds import LoadedFiles
from acf.config.pipelines import PythonPipelineFields
from acf.domain.errors import InvalidValue
from acf.domain.tools import ToolSpec
from acf.ports.pipeline import Pipeline


def module_file(module_name: str, base_dir: Path) -> Path | None:
    """The file of ``module_name`` (dotted) under ``base_dir``, if there is one."""
    relative = Path(*module_name.split("."))
    for candidate in (base_dir / relative.with_suffix(".py"), base_dir / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _check_origin(module_name: str, origin: str | None, folder: Path) -> None:
    """The module imported must be the one beside the configuration file, not an installed
    module of the same name."""
    expected = module_file(module_name, folder)
    if expected is not None and (origin is None or Path(origin).resolve() != expected.resolve()):
        raise InvalidValue(
            f"{module_name} beside the configuration file is shadowed by the installed module "
            f"at {origin}: rename yours"
        )


class PythonKind:
    def load(self, fields: Any, where: str, base_dir: Path) -> LoadedFiles | None:
        assert isinstance(fields, PythonPipelineFields)
        module_name = fields.factory.partition(":")[0]
        found = module_file(module_name, base_dir)
        if found is None:
            return None  # an installed module, imported when the pipeline is built
        return LoadedFiles(base_dir.resolve(), found.read_bytes())

    def build(
        self, fields: Any, files: object | None, tools: Sequence[ToolSpec], where: str
    ) -> Pipeline:
        assert isinstance(fields, PythonPipelineFields)
        if isinstance(files, Path) and str(files) not in sys.path:
            sys.path.append(str(files))
        module_name, _, attribute = fields.factory.partition(":")
        try:
            module = importlib.import_module(module_name)
            if isinstance(files, Path):
                _check_origin(module_name, module.__file__, files)
            factory = getattr(module, attribute)
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
