"""Output files of the replay tools, checked before a long replay rather than after it.

A replay of a whole log takes minutes; a ``--json`` or ``--plot`` path that cannot be
written must be refused before it starts, not found out at the end. ``unwritable`` tries
what writing will do (creating a file where the path's directories will be made, or
opening the existing file for appending) without changing anything; the tools still catch
an ``OSError`` when they write, for what changed in between (a full disk, say).
"""

import os
import tempfile
from pathlib import Path


def unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be written as an output file, or None when it can. Directories
    missing on its way may be created by the writer: the nearest existing one must take a
    new file."""
    if path.is_dir():
        return "it is a directory"
    if path.exists():
        try:
            with path.open("ab"):
                pass
        except OSError as exc:
            return exc.strerror or str(exc)
        return None
    existing = path.absolute().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    try:
        handle, probe = tempfile.mkstemp(prefix=".acf-write-check-", dir=existing)
    except OSError as exc:
        return f"cannot create a file in {existing}: {exc.strerror or exc}"
    os.close(handle)
    os.unlink(probe)
    return None
