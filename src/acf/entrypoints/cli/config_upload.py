"""What ``acf config push`` sends: one tenant of a configuration file, with every file it
names (rules, prompts, base agents), checked here first so a mistake is told before
anything reaches acf. acf refuses YAML aliases in an upload (``&a`` … ``*a``), so a YAML
file using them is sent written out (the same configuration, the same version hash for the
configuration and its bases)."""

from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from acf.entrypoints.cli.config_remote import fail


def tenant_upload(file: Path, tenant: str | None) -> dict[str, Any]:
    """The push body for ``tenant`` of ``file`` (its only tenant by default): the YAML (the
    file itself, or just that tenant's part of a larger one), the files it names, and the
    git commit of the file's work tree. Exits 2 on an invalid file or an unknown tenant."""
    from acf.config.load import ConfigError, load_config
    from acf.config.versions_source import version_sources

    try:
        loaded = load_config(file)
        sources = version_sources(loaded)
    except ConfigError as exc:
        fail(str(exc), 2)
    tenants = sorted(sources)
    if tenant is None:
        if len(tenants) > 1:
            fail(f"{file} has tenants {', '.join(tenants)}: choose one with --tenant", 2)
        tenant = tenants[0]
    if tenant not in sources:
        fail(f"{file} has no tenant {tenant!r}; its tenants: {', '.join(tenants)}", 2)
    source = sources[tenant].source
    files = dict(source["files"])
    declared = loaded.document.get("bases") or {}
    for path in declared.values():
        files[str(path)] = _read(file.parent, str(path))
    for name in files:
        if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
            fail(
                f"{file} names {name}, outside its folder: a version embeds the files it "
                "names by their path relative to the configuration, so keep them beside it",
                2,
            )
    if len(tenants) == 1:
        text = file.read_text(encoding="utf-8")
    else:
        document: dict[str, Any] = {"version": 1}
        if declared:
            document["bases"] = dict(declared)
        document["tenants"] = {tenant: loaded.document["tenants"][tenant]}
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    files = {
        name: without_aliases(content) if name.lower().endswith((".yaml", ".yml")) else content
        for name, content in files.items()
    }
    return {
        "name": file.name,
        "yaml": without_aliases(text),
        "files": files,
        "git_commit": sources[tenant].git_commit,
    }


def _read(folder: Path, relative: str) -> str:
    try:
        return (folder / relative).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {relative}: {exc.strerror or exc}", 2)


class _Expanded(yaml.SafeDumper):
    """Writes every value out, never as an alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def without_aliases(text: str) -> str:
    """``text`` itself, or, when it uses YAML aliases, its document written out in full."""
    try:
        if not any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, yaml.SafeLoader)):
            return text
        body = yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # acf says what is wrong with it
    return yaml.dump(body, Dumper=_Expanded, sort_keys=False, allow_unicode=True)
