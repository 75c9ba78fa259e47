"""The configuration version store's write ops (both dialects): push, promote, canary
start/share/rollback, live rollback and gates, each with its audit event in the same
transaction.

Every op that changes the pointer first makes sure the tenant's row exists and then locks
it (``FOR UPDATE`` on PostgreSQL): pointer changes of one tenant are serial, and a session
open, which reads the row ``FOR SHARE`` (``sessions.assigned_version``), is ordered with
them. A push numbers its version max+1 and inserts it with ``ON CONFLICT DO NOTHING``: when
a concurrent push took that number (or the same content), it looks again.
"""

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from acf.adapters.sql.config_version_rows import (
    POINTER_COLUMNS,
    VERSION_COLUMNS,
    fetch_by_hash,
    fetch_version,
    for_update,
    pointer_of,
)
from acf.adapters.sql.database import SqlConnection
from acf.adapters.sql.events import insert_event
from acf.adapters.sql.registry import dumps, executes, require_tenant
from acf.domain.config_versions import (
    ApplyMode,
    ConfigPointer,
    ConfigVersion,
    VersionStatus,
    version_label,
)
from acf.domain.errors import Conflict, InvalidValue
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import new_trace_id
from acf.ports.config_versions import (
    PromoteVersion,
    PushResult,
    PushVersion,
    RecordGate,
    RollbackCanary,
    RollbackLive,
    SetCanaryShare,
    StartCanary,
)

_PUSH_ATTEMPTS = 5


def _locked_pointer(conn: SqlConnection, tenant: str, at_ms: int) -> ConfigPointer:
    """The tenant's pointer, locked until the transaction ends (created empty if none: an
    op that then fails rolls the empty row back with it)."""
    conn.execute(
        f"INSERT INTO config_pointers ({POINTER_COLUMNS}) VALUES (?,NULL,NULL,NULL,0,NULL,NULL,?) "
        "ON CONFLICT (tenant) DO NOTHING",
        (tenant, at_ms),
    )
    row = conn.execute(
        f"SELECT {POINTER_COLUMNS} FROM config_pointers WHERE tenant = ?" + for_update(conn),
        (tenant,),
    ).fetchone()
    return pointer_of(row)


def _save_pointer(conn: SqlConnection, p: ConfigPointer) -> ConfigPointer:
    conn.execute(
        "UPDATE config_pointers SET live = ?, previous_live = ?, canary = ?, canary_share = ?, "
        "canary_started_at_ms = ?, canary_step_at_ms = ?, updated_at_ms = ? WHERE tenant = ?",
        (
            p.live,
            p.previous_live,
            p.canary,
            p.canary_share,
            p.canary_started_at_ms,
            p.canary_step_at_ms,
            p.updated_at_ms,
            p.tenant,
        ),
    )
    return p


def _set_status(
    conn: SqlConnection,
    tenant: str,
    number: int,
    status: VersionStatus,
    at_ms: int,
    rolled_back: bool = False,
) -> None:
    conn.execute(
        "UPDATE config_versions SET status = ?, rolled_back = ?, updated_at_ms = ? "
        "WHERE tenant = ? AND number = ?",
        (status.value, rolled_back, at_ms, tenant, number),
    )


def _require_version(conn: SqlConnection, tenant: str, number: int) -> ConfigVersion:
    version = fetch_version(conn, tenant, number)
    if version is None:
        raise Conflict(f"no configuration version {version_label(number)}")
    return version


def _audit(
    conn: SqlConnection,
    tenant: str,
    kind: EventKind,
    number: int,
    at_ms: int,
    data: Mapping[str, Any],
) -> None:
    correlation = Correlation(tenant, new_trace_id(), config_version=version_label(number))
    insert_event(conn, FabricEvent(kind, at_ms, correlation, dict(data)))


def _label(number: int | None) -> str | None:
    return None if number is None else version_label(number)


def _share(share: int) -> int:
    if isinstance(share, bool) or not isinstance(share, int) or not 0 <= share <= 100:
        raise InvalidValue(f"canary share must be a whole percent from 0 to 100, not {share!r}")
    return share


def _no_canary(p: ConfigPointer, at_ms: int, **changes: Any) -> ConfigPointer:
    """``p`` with no canary (and ``changes``), updated at ``at_ms``."""
    cleared = replace(
        p,
        canary=None,
        canary_share=0,
        canary_started_at_ms=None,
        canary_step_at_ms=None,
        updated_at_ms=at_ms,
    )
    return replace(cleared, **changes)


@executes(PushVersion)
def _push(conn: SqlConnection, tenant: str, op: PushVersion) -> PushResult:
    require_tenant(tenant, op.tenant)
    for _ in range(_PUSH_ATTEMPTS):
        existing = fetch_by_hash(conn, tenant, op.content_hash)
        if existing is not None:
            return PushResult(existing, created=False)
        (number,) = conn.execute(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM config_versions WHERE tenant = ?",
            (tenant,),
        ).fetchone()
        row = conn.execute(
            f"INSERT INTO config_versions ({VERSION_COLUMNS}) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,FALSE,?,?,?) "
            "ON CONFLICT DO NOTHING RETURNING number",
            (
                tenant,
                int(number),
                op.content_hash,
                dumps(dict(op.source)),
                dumps(dict(op.resolved)),
                dumps(dict(op.provenance)),
                op.author,
                op.message,
                op.git_commit,
                ApplyMode(op.apply).value,
                VersionStatus.DRAFT.value,
                dumps({}),
                op.at_ms,
                op.at_ms,
            ),
        ).fetchone()
        if row is None:  # a concurrent push took the number or the content: look again
            continue
        version = _require_version(conn, tenant, int(row[0]))
        _audit(
            conn,
            tenant,
            EventKind.CONFIG_PUSHED,
            version.number,
            op.at_ms,
            {
                "version": version.label,
                "content_hash": version.content_hash,
                "author": op.author,
                "message": op.message,
                "git_commit": op.git_commit,
                "apply": version.apply.value,
                "actor": op.actor,
            },
        )
        return PushResult(version, created=True)
    raise Conflict("concurrent pushes kept taking the next version number; push again")


@executes(PromoteVersion)
def _promote(conn: SqlConnection, tenant: str, op: PromoteVersion) -> ConfigPointer:
    require_tenant(tenant, op.tenant)
    p = _locked_pointer(conn, tenant, op.at_ms)
    version = _require_version(conn, tenant, op.number)
    label = version.label
    if version.rolled_back:
        raise Conflict(f"{label} was rolled back and cannot be promoted; push a new version")
    if op.canary_only and p.canary != op.number:
        raise Conflict(f"{label} is no longer the canary")
    if p.live == op.number:
        raise Conflict(f"{label} is already live")
    if p.live is not None:
        _set_status(conn, tenant, p.live, VersionStatus.RETIRED, op.at_ms)
    cancelled = p.canary if p.canary is not None and p.canary != op.number else None
    if cancelled is not None:
        _set_status(conn, tenant, cancelled, VersionStatus.RETIRED, op.at_ms)
    _set_status(conn, tenant, op.number, VersionStatus.LIVE, op.at_ms)
    pointer = _save_pointer(conn, _no_canary(p, op.at_ms, live=op.number, previous_live=p.live))
    _audit(
        conn,
        tenant,
        EventKind.CONFIG_PROMOTED,
        op.number,
        op.at_ms,
        {
            "version": label,
            "previous": _label(p.live),
            "from_canary": p.canary == op.number,
            "cancelled_canary": _label(cancelled),
            "actor": op.actor,
            "forced": op.forced,
        },
    )
    return pointer


@executes(StartCanary)
def _start_canary(conn: SqlConnection, tenant: str, op: StartCanary) -> ConfigPointer:
    require_tenant(tenant, op.tenant)
    share = _share(op.share)
    p = _locked_pointer(conn, tenant, op.at_ms)
    version = _require_version(conn, tenant, op.number)
    label = version.label
    if p.live is None:
        raise Conflict(f"{label} cannot go on canary: the tenant has no live version")
    if p.canary is not None:
        raise Conflict(f"{version_label(p.canary)} is already on canary; roll it back first")
    startable = version.status is VersionStatus.DRAFT or (
        version.status is VersionStatus.RETIRED and not version.rolled_back
    )
    if not startable:
        state = "rolled back" if version.rolled_back else version.status.value
        raise Conflict(f"{label} is {state}: only a draft or retired version can go on canary")
    _set_status(conn, tenant, op.number, VersionStatus.CANARY, op.at_ms)
    pointer = _save_pointer(
        conn,
        _no_canary(
            p,
            op.at_ms,
            canary=op.number,
            canary_share=share,
            canary_started_at_ms=op.at_ms,
            canary_step_at_ms=op.at_ms,
        ),
    )
    _audit(
        conn,
        tenant,
        EventKind.CONFIG_CANARY_STARTED,
        op.number,
        op.at_ms,
        {
            "version": label,
            "live": _label(p.live),
            "share": share,
            "actor": op.actor,
            "forced": op.forced,
        },
    )
    return pointer


def _require_canary(p: ConfigPointer, number: int) -> None:
    if p.canary != number:
        running = (
            "no canary is running" if p.canary is None else f"the canary is {_label(p.canary)}"
        )
        raise Conflict(f"{version_label(number)} is not on canary ({running})")


@executes(SetCanaryShare)
def _set_share(conn: SqlConnection, tenant: str, op: SetCanaryShare) -> ConfigPointer:
    require_tenant(tenant, op.tenant)
    share = _share(op.share)
    p = _locked_pointer(conn, tenant, op.at_ms)
    _require_canary(p, op.number)
    if op.from_share is not None and p.canary_share != op.from_share:
        raise Conflict(
            f"{version_label(op.number)} runs at {p.canary_share} %, not {op.from_share} %"
        )
    pointer = _save_pointer(
        conn, replace(p, canary_share=share, canary_step_at_ms=op.at_ms, updated_at_ms=op.at_ms)
    )
    _audit(
        conn,
        tenant,
        EventKind.CONFIG_CANARY_ADVANCED,
        op.number,
        op.at_ms,
        {
            "version": version_label(op.number),
            "from_share": p.canary_share,
            "share": share,
            "reason": op.reason,
        },
    )
    return pointer


@executes(RollbackCanary)
def _rollback_canary(conn: SqlConnection, tenant: str, op: RollbackCanary) -> ConfigPointer:
    require_tenant(tenant, op.tenant)
    p = _locked_pointer(conn, tenant, op.at_ms)
    _require_canary(p, op.number)
    _set_status(conn, tenant, op.number, VersionStatus.RETIRED, op.at_ms, rolled_back=True)
    pointer = _save_pointer(conn, _no_canary(p, op.at_ms))
    _audit(
        conn,
        tenant,
        EventKind.CONFIG_CANARY_ROLLED_BACK,
        op.number,
        op.at_ms,
        {
            "version": version_label(op.number),
            "live": _label(p.live),
            "share": p.canary_share,
            "reason": op.reason,
            "stats": dict(op.stats),
            "actor": op.actor,
        },
    )
    return pointer


@executes(RollbackLive)
def _rollback_live(conn: SqlConnection, tenant: str, op: RollbackLive) -> ConfigPointer:
    require_tenant(tenant, op.tenant)
    p = _locked_pointer(conn, tenant, op.at_ms)
    if p.live is None or p.previous_live is None:
        raise Conflict("there is no previous live version to roll back to")
    _set_status(conn, tenant, p.live, VersionStatus.RETIRED, op.at_ms, rolled_back=True)
    if p.canary is not None:  # nobody judges it any more: its sessions re-pin too
        _set_status(conn, tenant, p.canary, VersionStatus.RETIRED, op.at_ms, rolled_back=True)
    _set_status(conn, tenant, p.previous_live, VersionStatus.LIVE, op.at_ms)
    pointer = _save_pointer(conn, _no_canary(p, op.at_ms, live=p.previous_live, previous_live=None))
    _audit(
        conn,
        tenant,
        EventKind.CONFIG_ROLLED_BACK,
        p.previous_live,
        op.at_ms,
        {
            "version": version_label(p.previous_live),
            "rolled_back": version_label(p.live),
            "cancelled_canary": _label(p.canary),
            "reason": op.reason,
            "actor": op.actor,
        },
    )
    return pointer


@executes(RecordGate)
def _record_gate(conn: SqlConnection, tenant: str, op: RecordGate) -> ConfigVersion:
    require_tenant(tenant, op.tenant)
    version = fetch_version(conn, tenant, op.number, lock=True)
    if version is None:
        raise Conflict(f"no configuration version {version_label(op.number)}")
    gate = {"passed": op.passed, "at_ms": op.at_ms, "summary": dict(op.summary)}
    gates = {**version.gates, op.name: gate}
    conn.execute(
        "UPDATE config_versions SET gates = ?, updated_at_ms = ? WHERE tenant = ? AND number = ?",
        (dumps(gates), op.at_ms, tenant, op.number),
    )
    _audit(
        conn,
        tenant,
        EventKind.CONFIG_GATE_RECORDED,
        op.number,
        op.at_ms,
        {"version": version.label, "gate": op.name, "passed": op.passed},
    )
    return _require_version(conn, tenant, op.number)
