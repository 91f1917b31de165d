"""Penalties: a firing rule disables its account through the feed's control message for a time,
and the engine re-enables it when that time is up.

Everything is in the store, so a restart changes nothing: the engine's first round finds the
penalties that came due while it was down and re-enables their accounts at once. The switch may
honour `until` by itself too; the engine's `enable` is sent all the same, because not every
switch does. An `enable` the feed could not deliver (disconnected, refused) is asked again every
RETRY_MS until acked. Two rules' penalties on one account overlap: the account comes back when the
last one ends. If someone disabled the account by hand since, it is left disabled.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from store.alerting import ENGINE, Rule, insert_control, insert_rows
from store.models import AlertPenalty

RETRY_MS = 10_000
UNANSWERED_MS = 60_000  # a request sent this long ago with no outcome will never have one


@dataclass(frozen=True)
class Due:
    """A penalty that needs the engine: its time is up, or its re-enable is under way."""

    id: int
    rule_id: int | None
    rule_title: str
    kind: str
    account: str
    until_ms: int
    status: str
    start_ms: int
    request_status: str | None  # of the enable request, while releasing
    request_error: str
    request_done_ms: int | None


def due(db: sqlite3.Connection, now_ms: int) -> list[Due]:
    """Penalties whose time is up, and those being released (a cheap read, every round)."""
    return [Due(*row) for row in db.execute(
        "SELECT p.id, p.rule_id, p.rule_title, p.kind, p.account, p.until_ms, p.status, "
        "p.start_ms, c.status, coalesce(c.error, ''), c.done_ms FROM alert_penalty p "
        "LEFT JOIN control_request c ON c.id = p.enable_request "
        "WHERE p.status = 'releasing' OR (p.status = 'active' AND p.until_ms <= ?)", (now_ms,))]


def next_end(db: sqlite3.Connection) -> int | None:
    """When the next active penalty ends (None: none is active)."""
    return db.execute(
        "SELECT min(until_ms) FROM alert_penalty WHERE status = 'active'").fetchone()[0]


def start(db: sqlite3.Connection, rule: Rule, kind: str, account: str, now_ms: int,
          reason: str) -> dict:
    """Disable the account until now + the rule's penalty; return the history row."""
    until = now_ms + rule.penalty_s * 1000
    (standing,) = db.execute(
        "SELECT max(until_ms) FROM alert_penalty WHERE status = 'active' AND kind = ? "
        "AND account = ?", (kind, account)).fetchone()
    request = insert_control(db, action="disable", kind=kind, account=account,
                             until_ms=max(until, standing or 0), reason=reason, now_ms=now_ms)
    insert_rows(db, AlertPenalty, [AlertPenalty(
        rule_id=rule.id, rule_title=rule.title, kind=kind, account=account, start_ms=now_ms,
        until_ms=until, disable_request=request).model_dump(exclude={"id"})])
    return dict(event="penalty", rule_id=rule.id, rule_title=rule.title, kind=kind,
                account=account, area=rule.area, level=rule.level,
                detail=f"disabled until {_utc(until)} ({rule.penalty_s} s)", actor=ENGINE)


def advance(db: sqlite3.Connection, penalty: Due, now_ms: int) -> list[dict]:
    """Move a due penalty on (re-enable, confirm, retry); return history rows."""
    if penalty.status == "releasing":
        return _confirm(db, penalty, now_ms)
    history = dict(rule_id=penalty.rule_id, rule_title=penalty.rule_title, kind=penalty.kind,
                   account=penalty.account, actor=ENGINE, ts_ms=now_ms)
    (later,) = db.execute(
        "SELECT max(until_ms) FROM alert_penalty WHERE status = 'active' AND kind = ? "
        "AND account = ? AND id != ?", (penalty.kind, penalty.account, penalty.id)).fetchone()
    if later is not None and later > now_ms:
        _end(db, penalty.id, now_ms, f"another penalty keeps it disabled until {_utc(later)}")
        return []
    by_hand = _disabled_by_hand_since(db, penalty)
    if by_hand:
        _end(db, penalty.id, now_ms, f"left disabled: {by_hand} disabled it since")
        return [history | dict(event="penalty_kept", detail=f"left disabled: {by_hand} "
                               "disabled it by hand during the penalty")]
    _request_enable(db, penalty, now_ms)
    return [history | dict(event="penalty_end", detail="re-enable requested")]


def _confirm(db: sqlite3.Connection, penalty: Due, now_ms: int) -> list[dict]:
    status = penalty.request_status
    if status == "acked":
        _end(db, penalty.id, penalty.request_done_ms or now_ms, "re-enabled")
    elif status != "pending":  # failed, lost, or sent by a writer that died before the ack
        waited = now_ms - (penalty.request_done_ms or 0)
        if waited >= (UNANSWERED_MS if status == "sent" else RETRY_MS):
            _request_enable(db, penalty, now_ms,
                            retry_of=penalty.request_error or f"request {status or 'lost'}")
    return []


def _request_enable(db: sqlite3.Connection, penalty: Due, now_ms: int, *,
                    retry_of: str = "") -> None:
    reason = f"penalty of {penalty.rule_title!r} over"
    request = insert_control(db, action="enable", kind=penalty.kind, account=penalty.account,
                             until_ms=None, reason=reason, now_ms=now_ms)
    detail = f"retrying the re-enable after: {retry_of}" if retry_of else ""
    db.execute("UPDATE alert_penalty SET status = 'releasing', enable_request = ?, detail = ? "
               "WHERE id = ?", (request, detail, penalty.id))


def _end(db: sqlite3.Connection, penalty_id: int, when_ms: int, detail: str) -> None:
    db.execute("UPDATE alert_penalty SET status = 'ended', ended_ms = ?, detail = ? WHERE id = ?",
               (when_ms, detail, penalty_id))


def _disabled_by_hand_since(db: sqlite3.Connection, penalty: Due) -> str:
    """Who, if the account's latest disable or enable since the penalty began is someone's
    disable rather than the engine's."""
    row = db.execute(
        "SELECT action, requested_by FROM control_request WHERE kind = ? AND account = ? "
        "AND action IN ('disable', 'enable') AND created_ms >= ? AND status != 'failed' "
        "ORDER BY created_ms DESC, rowid DESC LIMIT 1",
        (penalty.kind, penalty.account, penalty.start_ms)).fetchone()
    if row is None or row[0] != "disable" or row[1] == ENGINE:
        return ""
    return row[1] or "someone"


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
