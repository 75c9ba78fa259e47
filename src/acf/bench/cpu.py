"""CPU time per process from ``/proc`` (Linux), to say where a run's CPU went.

``CpuMeter`` reads the user + system time of named processes (by pid) and of every
PostgreSQL server process on the machine (``comm`` = ``postgres``: the bench's database is
the only busy one while it runs; backends that exited count through the postmaster)
before and after a measurement; ``per_turn_ms`` divides
the difference by the turns of that measurement.
"""

import os
from collections.abc import Mapping
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
POSTGRES = "postgresql (all server processes)"


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU seconds of ``pid`` so far (0 if it is gone); ``children``: with
    those of its children that exited and were waited for."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    # after "pid (comm) ": state is field 3, utime 14, stime 15, cutime 16, cstime 17
    own = int(fields[11]) + int(fields[12])
    return (own + (int(fields[13]) + int(fields[14]) if children else 0)) / _TICKS


def postgres_seconds() -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
        except OSError:
            continue
        # With exited children: the postmaster's count those of backends that ended.
        total += cpu_seconds(int(entry.name), children=True)
    return total


class CpuMeter:
    """CPU seconds of ``pids`` (label → pid) and of PostgreSQL, between two readings."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self._pids = dict(pids)
        self._start: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        out = {label: cpu_seconds(pid) for label, pid in self._pids.items()}
        out[POSTGRES] = postgres_seconds()
        return out

    def start(self) -> None:
        self._start = self._read()

    def per_turn_ms(self, turns: int) -> dict[str, float]:
        """Milliseconds of CPU per turn since ``start``, per process, and their total."""
        end = self._read()
        out = {k: (end[k] - self._start.get(k, 0.0)) * 1000 / turns for k in end}
        out["total"] = sum(out.values())
        return out
