"""A configuration pushed over the API: YAML text plus the files it names (prompts, rules,
base agents), turned into a validated ``LoadedConfig`` without trusting its paths.

The upload is written to a private temporary folder and read back with the file loader, so
an uploaded configuration is checked exactly as ``acf config validate`` checks a file. A
file name that is absolute or climbs out of the folder (``..``) is refused before anything
is written, and so is a path that would read outside the upload (``rules_file``,
``system_prompt_file``, a base agent's file), in the YAML and in every base agent's file:
a tenant's admin key reads nothing of the server's disk. After loading, every file the
load read is checked once more to resolve (symbolic links followed) inside the folder.
YAML aliases are refused (``&a`` … ``*a`` expands exponentially) before any YAML is
parsed into objects, in every file read as YAML, and so is an upload of more than
``MAX_NODES`` YAML nodes. Python files are refused too: code is pinned by the agent version
installed with acf, never uploaded. Errors name the upload's own paths (``acf.yaml:
tenants.acme.…``), never the temporary folder, and never a file's content.
"""

import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

import yaml

from acf.config.load import ConfigError, LoadedConfig, load_config
from acf.domain.errors import FieldProblem
from acf.service.config_lifecycle import Upload

UPLOAD_NAME = "acf.yaml"
"""What the uploaded YAML is called when the upload names no file."""
FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.ya?ml$")
MAX_FILES = 200
MAX_PATH = 500
MAX_NODES = 200_000
"""YAML nodes (scalars, mappings, sequences) in all of an upload's YAML together."""
_PART = re.compile(r"[\w][\w.\- ]{0,199}")
"""One folder or file name: no ``..``, no control characters, no drive letter."""
CODE_SUFFIXES = frozenset({".py", ".pyc", ".pyo", ".pyd", ".pyw", ".so", ".pth", ".dll", ".dylib"})
"""Files Python could import or run: never accepted in an upload."""


def safe_relpath(name: str) -> PurePosixPath:
    """``name`` as a relative path that stays inside its folder, of plain names (letters,
    digits, ``_ . -`` and spaces); ``ConfigError`` otherwise."""
    path = PurePosixPath(name.replace("\\", "/"))
    if (
        not name
        or len(name) > MAX_PATH
        or path.is_absolute()
        or not all(_PART.fullmatch(part) for part in path.parts)
    ):
        raise ConfigError(f"files: {name!r}: expected a relative path inside the upload")
    if path.suffix.lower() in CODE_SUFFIXES or "__pycache__" in path.parts:
        raise ConfigError(
            f"files: {name!r}: code is not uploaded (a python pipeline's module is installed "
            "with acf and pinned by its agent version)"
        )
    return path


def named_paths(body: object, where: str = "") -> list[tuple[str, str]]:
    """(field path, value) of every file the parsed YAML names: a ``…_file`` field at any
    depth and each base agent's file (``bases.<name>``)."""
    found: list[tuple[str, str]] = []
    if isinstance(body, Mapping):
        for key, value in body.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(value, str) and (str(key).endswith("_file") or where == "bases"):
                found.append((path, value))
            elif (
                isinstance(value, Mapping)
                and where == "bases"
                and isinstance(value.get("path", value.get("file")), str)
            ):
                found.append((path, str(value.get("path", value.get("file")))))
            else:
                found.extend(named_paths(value, path))
    elif isinstance(body, list):
        for index, item in enumerate(body):
            found.extend(named_paths(item, f"{where}.{index}"))
    return found


def yaml_nodes(text: str, name: str) -> int:
    """How many YAML nodes ``text`` holds, read as events (linear time, nothing expanded);
    ``ConfigError`` at an alias. A YAML error is left to the loader (it says where)."""
    nodes = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise ConfigError(
                    f"{name} (line {line}): YAML aliases are not accepted in an upload: "
                    "write the value out (`acf config push` does)"
                )
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
    except yaml.YAMLError:
        pass
    return nodes


def _parsed(text: str) -> object:
    """``text`` parsed (alias-free, checked first), or None when it is not YAML."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _refuse_outside(where: str, value: str, name: str) -> None:
    try:
        safe_relpath(value)
    except ConfigError:
        raise ConfigError(
            f"{name}: {where}: expected a path relative to the configuration, "
            f"inside the upload (its file sent in `files`), got {value!r}"
        ) from None


def check_named_paths(text: str, name: str = UPLOAD_NAME) -> None:
    """Refuse YAML naming a file outside the upload; ``ConfigError`` naming the field. A
    YAML error is left to the loader (it says where). Check the text's aliases first."""
    for where, value in named_paths(_parsed(text)):
        _refuse_outside(where, value, name)


def check_upload(upload: Upload) -> None:
    """Everything checked before the upload is written out or loaded: no YAML alias and at
    most ``MAX_NODES`` nodes in any file read as YAML (the configuration, its base agents'
    files, rules files, any ``.yaml``), and every path named by the configuration or a base
    agent's file inside the upload. ``ConfigError`` naming the file and field."""
    nodes = yaml_nodes(upload.yaml, upload.name)
    body = _parsed(upload.yaml)
    named = named_paths(body)
    for where, value in named:
        _refuse_outside(where, value, upload.name)
    files = {str(safe_relpath(n)): text for n, text in upload.files.items()}
    bases = {str(PurePosixPath(v)) for w, v in named if w.startswith("bases.")}
    for base in sorted(bases & set(files)):
        nodes += yaml_nodes(files[base], base)
        for where, value in named_paths(_parsed(files[base])):
            _refuse_outside(where, value, base)
            named.append((f"{base}: {where}", value))
    as_yaml = {  # every file a loader may parse as YAML (a prompt is read as text)
        str(PurePosixPath(v)) for w, v in named if not w.endswith("system_prompt_file")
    } | {n for n in files if n.lower().endswith((".yaml", ".yml"))}
    for path in sorted((as_yaml - bases) & set(files)):
        nodes += yaml_nodes(files[path], path)
    if nodes > MAX_NODES:
        raise ConfigError(
            f"{upload.name}: the upload holds {nodes} YAML nodes; at most {MAX_NODES}"
        )


def load_upload(
    upload: Upload, check: Callable[[LoadedConfig], None] | None = None
) -> LoadedConfig:
    """Validate ``upload`` as the file loader would a file: ``ConfigError`` naming the
    upload's paths when it is invalid. ``check`` runs on the loaded configuration while its
    files are still there (its errors lose the temporary folder too). Blocking (file I/O):
    call it on a worker thread."""
    try:
        return _load_upload(upload, check)
    except RecursionError:
        raise ConfigError(f"{upload.name}: nested too deeply to be a configuration") from None


def _load_upload(upload: Upload, check: Callable[[LoadedConfig], None] | None) -> LoadedConfig:
    if len(upload.files) > MAX_FILES:
        raise ConfigError(f"files: at most {MAX_FILES} files, got {len(upload.files)}")
    if not FILE_NAME.match(upload.name):
        raise ConfigError(f"name: {upload.name!r}: expected a plain file name ending in .yaml")
    relpaths = {name: safe_relpath(name) for name in upload.files}
    if any(str(p) == upload.name for p in relpaths.values()):
        raise ConfigError(f"files: {upload.name!r} is the configuration's own name")
    check_upload(upload)
    with tempfile.TemporaryDirectory(prefix="acf-upload-") as folder:
        root = Path(folder)
        main = root / upload.name
        try:
            for name, relpath in relpaths.items():
                target = root.joinpath(*relpath.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(upload.files[name], encoding="utf-8")
            main.write_text(upload.yaml, encoding="utf-8")
        except (OSError, UnicodeError, ValueError) as exc:  # two names for one path, …
            problem = _without_folder(str(exc), root)
            raise ConfigError(f"the upload cannot be written out as files: {problem}") from None
        try:
            loaded = load_config(main)
            check_files_read(loaded, root, upload.name)
            if check is not None:
                check(loaded)
        except ConfigError as exc:
            raise ConfigError(_without_folder(str(exc), root)) from None
        return loaded


def files_read(loaded: LoadedConfig) -> list[tuple[str, str]]:
    """(what, path as named) of every file loading ``loaded`` read: base agents' files and
    each tenant's rules and prompt files."""
    read = [(f"bases.{name}", base.path) for name, base in loaded.bases.items()]
    for tenant, resolution in loaded.resolutions.items():
        read += [(f"tenants.{tenant}", path) for path in resolution.files]
    return read


def check_files_read(loaded: LoadedConfig, root: Path, name: str = UPLOAD_NAME) -> None:
    """``ConfigError`` naming the path (never its content) of a file the load read that
    does not resolve, symbolic links followed, inside ``root``."""
    top = root.resolve()
    for where, path in files_read(loaded):
        target = Path(path) if Path(path).is_absolute() else root / path
        resolved = target.resolve()
        if resolved != top and top not in resolved.parents:
            raise ConfigError(
                f"{name}: {where}: {path!r} is outside the upload: an uploaded configuration "
                "reads only the files sent with it"
            )


def _without_folder(message: str, root: Path) -> str:
    return message.replace(f"{root}/", "").replace(str(root), ".")


_PROBLEM = re.compile(r"^(?P<field>[A-Za-z0-9_.\-\[\]]+): (?P<message>.+)$", re.DOTALL)


def config_problems(message: str) -> list[FieldProblem]:
    """Each problem of a ``ConfigError`` message as (field path, what is wrong): the
    message's ``file: path: problem; path: problem`` split up. A part without a field path
    keeps the whole text with the file as its field."""
    source, sep, rest = message.partition(": ")
    if not sep:
        return [FieldProblem("", message)]
    source = source.split(" (line")[0]
    problems = []
    for part in rest.split("; "):
        found = _PROBLEM.match(part)
        if found is None or " " in found["field"]:
            problems.append(FieldProblem(source, part))
        else:
            problems.append(FieldProblem(found["field"], found["message"]))
    return problems
