"""A tenant's configuration as a version's source (DESIGN §17): everything needed to load
it again anywhere, byte for byte: the tenant's part of the file as written, the base agents
it uses, and the text of every file its pipelines name (rules, prompts). Secrets stay
``${NAME}`` references. Python code is not embedded: it is pinned by the agent's version.

```
{"format": 1, "tenant": "demo", "file": "acf.yaml",
 "body": {...the tenant as written...},
 "bases": {"support": {"path": "bases/support.yaml", "body": {...}}},
 "files": {"support_rules.yaml": "...text..."}}
```

``content_hash`` is ``"sha256:"`` and 16 hex digits of the source's canonical JSON (keys
sorted, no spaces): the same configuration gives the same hash wherever it is loaded.
``load_version`` writes a source's files under ``workdir/<hash>/`` and loads it there.
"""

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from acf.config.errors import ConfigError
from acf.config.layers import provenance
from acf.config.load import LoadedConfig, load_config

FORMAT = 1
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True, slots=True)
class VersionSource:
    """One tenant's configuration, ready to be pushed as a version."""

    tenant: str
    source: dict[str, Any]
    content_hash: str
    resolved: dict[str, Any]
    """The tenant's validated configuration, agents resolved, as JSON."""
    provenance: dict[str, Any]
    """Dotted key → ``{"layer", "source", "value"}`` (``acf.config.layers.provenance``)."""
    apply: str
    git_commit: str | None


def jsonable(value: Any) -> Any:
    """``value`` as JSON can hold it: mapping keys as strings, tuples as lists, dates in
    ISO 8601 (YAML reads ``2024-05-01`` as a date), anything else unknown as its text."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    return str(value)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(source: Mapping[str, Any]) -> str:
    """``"sha256:"`` and the first 16 hex digits of the source's canonical JSON."""
    return "sha256:" + hashlib.sha256(canonical_json(source)).hexdigest()[:16]


def git_commit(path: Path) -> str | None:
    """The commit checked out in the git work tree holding ``path``; None when it is in
    none, git is missing or anything else fails (never raises)."""
    folder = path.parent if path.suffix or not path.is_dir() else path
    if not folder.is_dir():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and _COMMIT.match(commit) else None


def version_sources(loaded: LoadedConfig) -> dict[str, VersionSource]:
    """Each tenant of ``loaded`` as a version source, by tenant name."""
    commit = git_commit(Path(loaded.source))
    tenants = loaded.document.get("tenants") or {}
    out: dict[str, VersionSource] = {}
    for tenant, fields in loaded.config.tenants.items():
        resolution = loaded.resolutions.get(tenant)
        used = resolution.bases if resolution else ()
        source = {
            "format": FORMAT,
            "tenant": tenant,
            "file": loaded.label,
            "body": jsonable(tenants.get(tenant) or {}),
            "bases": {
                name: {"path": loaded.bases[name].path, "body": jsonable(loaded.bases[name].body)}
                for name in used
            },
            "files": dict(sorted((resolution.files if resolution else {}).items())),
        }
        out[tenant] = VersionSource(
            tenant=tenant,
            source=source,
            content_hash=content_hash(source),
            resolved=fields.model_dump(mode="json"),
            provenance=provenance(loaded, tenant),
            apply=fields.apply.value,
            git_commit=commit,
        )
    return out


def _checked(source: Mapping[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, str]]:
    """The tenant, file name, bases and files of a source, its shape checked."""
    if source.get("format") != FORMAT:
        raise ConfigError(f"version source: format {source.get('format')!r}, expected {FORMAT}")
    tenant, name = source.get("tenant"), source.get("file", "acf.yaml")
    if not isinstance(tenant, str) or not isinstance(source.get("body"), Mapping):
        raise ConfigError("version source: expected a tenant name and its body, a mapping")
    if not isinstance(name, str) or not _FILE_NAME.match(name) or name in (".", ".."):
        raise ConfigError(f"version source: file {name!r} is not a plain file name")
    bases = source.get("bases") or {}
    files = source.get("files") or {}
    if not isinstance(bases, Mapping) or not all(
        isinstance(b, Mapping)
        and isinstance(b.get("path"), str)
        and isinstance(b.get("body"), Mapping)
        for b in bases.values()
    ):
        raise ConfigError("version source: bases: expected name -> {path, body}")
    if not isinstance(files, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise ConfigError("version source: files: expected path -> text")
    return tenant, name, dict(bases), dict(files)


def _ups(path: str) -> int:
    """How many folders above the configuration's ``path`` (relative) reaches."""
    parts = PurePosixPath(os.path.normpath(path.replace("\\", "/"))).parts
    return next((i for i, part in enumerate(parts) if part != ".."), len(parts))


def _write(root: Path, top: Path, relative: str, text: str) -> None:
    target = Path(os.path.normpath(root / relative))
    if top != target and top not in target.parents:
        raise ConfigError(f"version source: {relative!r} is outside the version's folder")
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, target)  # a concurrent writer writes the same text


def _same_on_disk(path: str, text: str, what: str) -> None:
    """An absolute path is read where it is: only when it still holds what the version
    embeds (relative paths are what make a version portable)."""
    try:
        current = Path(path).read_text(encoding="utf-8")
    except OSError:
        current = None
    if current != text:
        raise ConfigError(
            f"version source: {what} {path} is absolute and no longer holds what the version "
            "embeds; name files relative to the configuration file"
        )


def load_version(source: Mapping[str, Any], workdir: Path) -> LoadedConfig:
    """Load a stored version's ``source``: its files are written under
    ``workdir/<hash>/`` (idempotent; concurrent callers write the same bytes) and loaded
    as a configuration of that one tenant, whose ``version`` is the source's content hash.
    Raises ``ConfigError``."""
    tenant, name, bases, files = _checked(source)
    digest = content_hash(source)
    named = _named_files(source["body"]) | {
        p for b in bases.values() for p in _named_files(b["body"])
    }
    missing = sorted(named - set(files))
    if missing:
        raise ConfigError(f"version source: names files it does not embed: {missing}")
    relative = [p for p in [*files, *(b["path"] for b in bases.values())] if not os.path.isabs(p)]
    top = Path(os.path.normpath(workdir / digest.removeprefix("sha256:")))
    root = top.joinpath(*["_"] * max([0, *map(_ups, relative)]))
    for path, text in files.items():
        if os.path.isabs(path):
            _same_on_disk(path, text, "file")
        else:
            _write(root, top, path, text)
    for base in bases.values():
        text = yaml.safe_dump(dict(base["body"]), sort_keys=False, allow_unicode=True)
        if os.path.isabs(base["path"]):
            _same_base(base)
        else:
            _write(root, top, base["path"], text)
    document: dict[str, Any] = {"version": 1}
    if bases:
        document["bases"] = {n: b["path"] for n, b in bases.items()}
    document["tenants"] = {tenant: source["body"]}
    _write(root, top, name, yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    loaded = load_config(root / name)
    return dataclasses.replace(loaded, version=digest)


def _named_files(value: Any) -> set[str]:
    """The paths a body names (the values of its ``*_file`` keys: rules, prompts)."""
    if isinstance(value, Mapping):
        found = set()
        for key, item in value.items():
            if str(key).endswith("_file") and isinstance(item, str):
                found.add(item)
            else:
                found |= _named_files(item)
        return found
    if isinstance(value, list):
        return set().union(*map(_named_files, value)) if value else set()
    return set()


def _same_base(base: Mapping[str, Any]) -> None:
    try:
        current = yaml.safe_load(Path(base["path"]).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        current = None
    if jsonable(current) != jsonable(base["body"]):
        raise ConfigError(
            f"version source: base {base['path']} is absolute and no longer holds what the "
            "version embeds; name bases relative to the configuration file"
        )
