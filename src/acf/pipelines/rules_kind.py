"""The ``rules`` pipeline kind: rules inline (``rules``) or in a file (``rules_file``,
relative to the configuration file), checked when the configuration loads and against the
agent's tools when its pipeline is built."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acf.config.kinds import LoadedFiles
from acf.config.pipelines import RulesPipelineFields
from acf.domain.errors import InvalidValue
from acf.domain.tools import ToolSpec
from acf.pipelines.rules import RulesPipeline
from acf.pipelines.rules_load import check_tools, load_rules, parse_rules
from acf.pipelines.rules_model import RulesConfig
from acf.ports.pipeline import Pipeline


class RulesKind:
    def load(self, fields: Any, where: str, base_dir: Path) -> LoadedFiles:
        assert isinstance(fields, RulesPipelineFields)
        if fields.rules is not None:
            return LoadedFiles(parse_rules(fields.rules, f"{where}.rules"))
        assert fields.rules_file is not None
        path = Path(fields.rules_file)
        if not path.is_absolute():
            path = base_dir / path
        if not path.is_file():
            raise InvalidValue(f"{where}.rules_file: no such file {path}")
        rules = load_rules(path)  # its errors name the rules file and the field
        content = path.read_bytes()
        return LoadedFiles(rules, content, {fields.rules_file: content.decode("utf-8")})

    def build(
        self, fields: Any, files: object | None, tools: Sequence[ToolSpec], where: str
    ) -> Pipeline:
        assert isinstance(files, RulesConfig)
        check_tools(files, tools, where)
        return RulesPipeline(files)


KIND = RulesKind()
