"""Alerting in the store: the rules, their evaluation state, silences, history, penalties and
the outbox (their tables are in store.models, with the rest of the schema), with the reads the
console shows and the small writes any console may make.

The alert engine (console.alerting) runs in the writer process and is the only one to change
states, penalties and the outbox status. Any console (a viewer too) may acknowledge, silence,
tag, edit templates and rules (validated by console.alerting.rules) and queue messages: each such
write is one short transaction that also bumps `config_version`, which is how the engine learns,
with one tiny read per round, that it must reload what it caches.

Times are integer ms UTC. Subjects are (kind, account): a customer or a carrier, or ("feed", "")
for what concerns the feed as a whole (quarantined events).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

from sqlmodel import SQLModel

from store import conditions, models
from store.database import NO_LIMIT, STORE_ERRORS, StoreError, connect, locate
from store.health import fault_of
from store.models import (
    AlertOutbox,
)
from store.transactions import transaction

ENGINE = "alerts"  # `requested_by` of the engine's control requests, `actor` of its history rows
FEED = "feed"  # the kind of the feed's own subject
STATES = ("ok", "pending", "firing", "insufficient")
LEVELS = ("info", "warning", "error", "critical")  # least to most severe
HISTORY_EVENTS = ("fired", "notified", "repeat", "resolved", "acked", "silenced", "unsilenced",
                  "penalty", "penalty_end", "penalty_kept", "sent", "failed", "test", "report")


# Views ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    id: int | None
    title: str
    kind: str
    scope: str
    company: str
    recipients: tuple[str, ...]
    area: str
    operator: str
    threshold: float
    reset_threshold: float | None
    sample_period_s: int | None
    minimum_sample: int
    pending_s: int
    penalty_s: int
    template: str
    script: str
    repeat_s: int
    level: str
    enabled: bool
    created_ms: int = 0
    updated_ms: int = 0

    @property
    def scope_label(self) -> str:
        """`customer acme`, `carriers tagged gold`, `all carriers`, `the feed`."""
        if self.kind == FEED:
            return "the feed"
        if self.scope == "all":
            return f"all {self.kind}s"
        if self.scope == "tag":
            return f"{self.kind}s tagged {self.company}"
        return f"{self.kind} {self.company}"

    @property
    def condition(self) -> str:
        """`ASR ≤ 30%, clears at ≥ 35%`."""
        return conditions.rule_condition(self.area, self.operator, self.threshold,
                                         self.reset_threshold)

    def describe(self, value: float | None, *, firing: bool, unit: str | None = None) -> str:
        """A value read against this rule (store.conditions.describe)."""
        return conditions.describe(self.area, value, self.operator, self.threshold,
                                   self.reset_threshold, firing=firing, unit=unit)


RULE_COLUMNS = tuple(f.name for f in fields(Rule))


@dataclass(frozen=True)
class StateRow:
    """One rule for one subject: what the alerts screens list."""

    rule_id: int
    title: str
    area: str
    level: str
    kind: str
    account: str
    account_name: str
    state: str  # one of STATES
    value: float | None
    sample: int | None
    detail: str
    since_ms: int
    fired_ms: int | None
    resolved_ms: int | None
    next_repeat_ms: int | None
    notified: bool
    silenced: bool
    acked_by: str
    acked_ms: int | None
    ack_comment: str
    updated_ms: int
    operator: str = ">="
    threshold: float = 0.0
    reset_threshold: float | None = None
    currency: str | None = None  # the account's: a balance's unit

    @property
    def status(self) -> str:
        """What to show: `silenced` over any state but ok, else the state."""
        return "silenced" if self.silenced and self.state != "ok" else self.state

    @property
    def condition(self) -> str:
        """Its value read against its rule: `ASR 29.8% ≤ 30%, clears at ≥ 31%`."""
        return conditions.describe(
            self.area, self.value, self.operator, self.threshold, self.reset_threshold,
            firing=self.state == "firing", unit=self.currency if self.area == "balance" else None)


STATE_COLUMNS = ("rule_id", "kind", "account", "state", "value", "sample", "detail", "since_ms",
                 "fired_ms", "resolved_ms", "next_repeat_ms", "notified", "silenced", "acked_by",
                 "acked_ms", "ack_comment", "updated_ms")


@dataclass(frozen=True)
class RuleOverview:
    """A rule and the worst of its subjects' states, for the global alerts list."""

    rule: Rule
    status: str  # disabled, or the worst state: firing, pending, insufficient, silenced, ok
    subjects: int
    firing: int
    value: float | None  # of the worst subject
    account: str  # the worst subject
    fired_ms: int | None  # the latest firing of any subject
    next_repeat_ms: int | None


@dataclass(frozen=True)
class Silence:
    id: int
    rule_id: int | None
    kind: str
    account: str
    area: str
    until_ms: int
    comment: str
    created_by: str
    created_ms: int

    def matches(self, rule_id: int, kind: str, account: str, area: str) -> bool:
        return ((self.rule_id is None or self.rule_id == rule_id)
                and (not self.kind or self.kind == kind)
                and (not self.account or self.account == account)
                and (not self.area or self.area == area))


@dataclass(frozen=True)
class HistoryRow:
    id: int
    ts_ms: int
    event: str
    rule_id: int | None
    rule_title: str
    kind: str
    account: str
    area: str
    level: str
    value: float | None
    threshold: float | None
    detail: str
    recipient: str
    message_id: str
    actor: str


HISTORY_COLUMNS = tuple(f.name for f in fields(HistoryRow))


@dataclass(frozen=True)
class PenaltyRow:
    id: int
    rule_id: int | None
    rule_title: str
    kind: str
    account: str
    start_ms: int
    until_ms: int
    status: str  # active, releasing (enable sent, not yet acked), ended
    disable_request: str
    enable_request: str
    ended_ms: int | None
    detail: str


PENALTY_COLUMNS = tuple(f.name for f in fields(PenaltyRow))


@dataclass(frozen=True)
class OutboxRow:
    id: int
    message_id: str
    rule_id: int | None
    rule_title: str
    kind: str
    account: str
    event: str
    level: str
    channel: str
    recipient: str
    subject: str
    body: str
    created_ms: int
    attempts: int
    next_attempt_ms: int
    status: str
    last_error: str
    sent_ms: int | None


OUTBOX_COLUMNS = tuple(f.name for f in fields(OutboxRow))


@dataclass(frozen=True)
class Template:
    name: str
    subject: str
    body: str
    updated_ms: int = 0


@dataclass(frozen=True)
class Message:
    """A message to queue for one recipient."""

    rule_id: int | None
    rule_title: str
    kind: str
    account: str
    event: str
    level: str
    channel: str
    recipient: str
    subject: str
    body: str
    message_id: str = ""


# Connections ------------------------------------------------------------------------------------

@contextmanager
def writing(path: str | Path) -> Iterator[sqlite3.Connection]:
    """One short write transaction on `path` (what a console's action is)."""
    with closing(connect(path, mode="rw")) as db:
        try:
            with transaction(db):
                yield db
        except STORE_ERRORS as error:
            raise StoreError(f"cannot write to {path}: {fault_of(error)}") from error


@contextmanager
def reading(path: str | Path) -> Iterator[sqlite3.Connection]:
    """One consistent snapshot of `path`."""
    with closing(connect(path)) as db:
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")


def bump_config(db: sqlite3.Connection) -> None:
    """Tell the engine that rules, templates, tags, silences or acknowledgements changed."""
    db.execute("INSERT INTO alert_meta (key, value) VALUES ('config_version', 1) "
               "ON CONFLICT(key) DO UPDATE SET value = alert_meta.value + 1")


def config_version(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM alert_meta WHERE key = 'config_version'").fetchone()
    return row[0] if row else 0


# Rows <-> views ---------------------------------------------------------------------------------

def rule_from_row(row: Sequence) -> Rule:
    values = dict(zip(RULE_COLUMNS, row, strict=True))
    values["recipients"] = tuple(json.loads(values["recipients"]))
    values["enabled"] = bool(values["enabled"])
    return Rule(**values)


def rule_to_row(rule: Rule) -> dict:
    row = {name: getattr(rule, name) for name in RULE_COLUMNS}
    row["recipients"] = json.dumps(list(rule.recipients))
    return row


def load_rules(db: sqlite3.Connection) -> list[Rule]:
    return [rule_from_row(row) for row in db.execute(
        f"SELECT {', '.join(RULE_COLUMNS)} FROM alert_rule ORDER BY title")]


def load_templates(db: sqlite3.Connection) -> dict[str, Template]:
    return {name: Template(name, subject, body, updated) for name, subject, body, updated in
            db.execute("SELECT name, subject, body, updated_ms FROM alert_template")}


def load_silences(db: sqlite3.Connection, now_ms: int) -> list[Silence]:
    return [Silence(*row) for row in db.execute(
        "SELECT id, rule_id, kind, account, area, until_ms, comment, created_by, created_ms "
        "FROM alert_silence WHERE until_ms > ? ORDER BY until_ms", (now_ms,))]


def load_tags(db: sqlite3.Connection) -> dict[tuple[str, str], tuple[str, ...]]:
    """(kind, tag) -> the accounts of that kind with that tag."""
    tagged: dict[tuple[str, str], list[str]] = {}
    for kind, account, tag in db.execute(
            "SELECT kind, account, tag FROM account_tag ORDER BY kind, tag, account"):
        tagged.setdefault((kind, tag), []).append(account)
    return {key: tuple(accounts) for key, accounts in tagged.items()}


# Reads for the console --------------------------------------------------------------------------

class AlertData:
    """The alert engine's state as the console shows it; each call is one consistent read."""

    def __init__(self, path: str | Path) -> None:
        self.path = locate(path)

    def rules(self) -> list[Rule]:
        with reading(self.path) as db:
            return load_rules(db)

    def rule(self, title: str) -> Rule | None:
        with reading(self.path) as db:
            row = db.execute(f"SELECT {', '.join(RULE_COLUMNS)} FROM alert_rule WHERE title = ?",
                             (title,)).fetchone()
        return rule_from_row(row) if row else None

    def templates(self) -> list[Template]:
        with reading(self.path) as db:
            return sorted(load_templates(db).values(), key=lambda t: t.name)

    def tags(self, kind: str | None = None,
             account: str | None = None) -> list[tuple[str, str, str]]:
        """(kind, account, tag) rows, optionally of one kind or one account."""
        where, params = _where(kind=kind, account=account)
        with reading(self.path) as db:
            return db.execute(f"SELECT kind, account, tag FROM account_tag {where} "
                              "ORDER BY kind, account, tag", params).fetchall()

    def states(self, *, rule_id: int | None = None, kind: str | None = None,
               account: str | None = None, state: str | None = None) -> list[StateRow]:
        """Every (rule, subject) the engine has evaluated, firing first, then by title."""
        where, params = _where(**{"s.rule_id": rule_id, "s.kind": kind, "s.account": account,
                                  "s.state": state})
        columns = ", ".join(f"s.{name}" for name in STATE_COLUMNS)
        with reading(self.path) as db:
            rows = db.execute(
                f"SELECT {columns}, r.title, r.area, r.level, coalesce(a.name, s.account), "
                "r.operator, r.threshold, r.reset_threshold, a.currency "
                "FROM alert_state s JOIN alert_rule r ON r.id = s.rule_id "
                "LEFT JOIN account a ON a.kind = s.kind AND a.id = s.account "
                f"{where} ORDER BY s.state != 'firing', r.title, s.kind, s.account", params,
            ).fetchall()
        return [_state_row(row) for row in rows]

    def firing(self) -> list[StateRow]:
        """Firing alerts, unacknowledged first, then the most severe, then the newest."""
        rows = self.states(state="firing")
        return sorted(rows, key=lambda s: (s.acked_ms is not None, -LEVELS.index(s.level),
                                           -(s.fired_ms or 0)))

    def overview(self) -> list[RuleOverview]:
        """Every rule with the worst state among its subjects."""
        by_rule: dict[int, list[StateRow]] = {}
        for row in self.states():
            by_rule.setdefault(row.rule_id, []).append(row)
        return [_overview(rule, by_rule.get(rule.id, [])) for rule in self.rules()]

    def silences(self, now_ms: int, *, include_ended: bool = False) -> list[Silence]:
        with reading(self.path) as db:
            return load_silences(db, -1 if include_ended else now_ms)

    def history(self, *, search: str = "", event: str | None = None,
                events: Sequence[str] | None = None, rule_id: int | None = None,
                kind: str | None = None, account: str | None = None,
                since_ms: int | None = None, until_ms: int | None = None,
                limit: int | None = 500) -> list[HistoryRow]:
        """Newest first. `search` matches title, account, detail and recipient (substring,
        case-insensitive); `events` keeps those events only; `until_ms` is exclusive.
        `limit=None` returns everything (export)."""
        sql, params = _history_filter(search=search, event=event, events=events,
                                      rule_id=rule_id, kind=kind, account=account,
                                      since_ms=since_ms, until_ms=until_ms)
        params["limit"] = NO_LIMIT if limit is None else limit
        with reading(self.path) as db:
            rows = db.execute(
                f"SELECT {', '.join(HISTORY_COLUMNS)} FROM alert_history {sql} "
                "ORDER BY ts_ms DESC, id DESC LIMIT :limit", params).fetchall()
        return [HistoryRow(*row) for row in rows]

    def history_count(self, *, search: str = "", events: Sequence[str] | None = None,
                      at_most: int | None = None) -> int:
        """How many rows `history` would return with no limit; counting stops past `at_most`
        (a search through years of history need not be counted to the last row each second)."""
        sql, params = _history_filter(search=search, events=events)
        params["at_most"] = NO_LIMIT if at_most is None else at_most + 1
        with reading(self.path) as db:
            return db.execute(f"SELECT count(*) FROM (SELECT 1 FROM alert_history {sql} "
                              "LIMIT :at_most) AS found", params).fetchone()[0]

    def penalties(self, now_ms: int) -> list[PenaltyRow]:
        """Who is in penalty at `now_ms` and until when, soonest end first: penalties begun and
        not yet released (one past its end shows until the engine has re-enabled the account,
        a second or so; status `releasing` while the switch has not acknowledged it)."""
        with reading(self.path) as db:
            rows = db.execute(f"SELECT {', '.join(PENALTY_COLUMNS)} FROM alert_penalty "
                              "WHERE status != 'ended' AND start_ms <= ? ORDER BY until_ms",
                              (now_ms,)).fetchall()
        return [PenaltyRow(*row) for row in rows]

    def penalty_history(self, limit: int = 200) -> list[PenaltyRow]:
        with reading(self.path) as db:
            rows = db.execute(f"SELECT {', '.join(PENALTY_COLUMNS)} FROM alert_penalty "
                              "ORDER BY start_ms DESC LIMIT ?", (limit,)).fetchall()
        return [PenaltyRow(*row) for row in rows]

    def outbox(self, *, status: str | None = None, limit: int = 200) -> list[OutboxRow]:
        where, params = _where(status=status)
        params["limit"] = limit
        with reading(self.path) as db:
            rows = db.execute(f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM alert_outbox {where} "
                              "ORDER BY id DESC LIMIT :limit", params).fetchall()
        return [OutboxRow(*row) for row in rows]

    def outbox_counts(self) -> dict[str, int]:
        """Messages by status (pending, sent, failed)."""
        with reading(self.path) as db:
            return dict(db.execute("SELECT status, count(*) FROM alert_outbox GROUP BY status"))


def _where(**filters: object) -> tuple[str, dict]:
    """`WHERE a = :a AND ...` for the filters that are not None."""
    given = {name: value for name, value in filters.items() if value is not None}
    params = {name.replace(".", "_"): value for name, value in given.items()}
    clauses = [f"{name} = :{name.replace('.', '_')}" for name in given]
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _history_filter(*, search: str = "", event: str | None = None,
                    events: Sequence[str] | None = None, rule_id: int | None = None,
                    kind: str | None = None, account: str | None = None,
                    since_ms: int | None = None, until_ms: int | None = None) -> tuple[str, dict]:
    where, params = _where(event=event, rule_id=rule_id, kind=kind, account=account)
    clauses = [where.removeprefix("WHERE ")] if where else []
    if events is not None:
        names = {f"event{index}": name for index, name in enumerate(events)}
        params |= names
        clauses.append(f"event IN ({', '.join(':' + key for key in names) or 'NULL'})")
    if search:
        params["search"] = f"%{search}%"
        # lower(): case-blind in both engines (SQLite's LIKE is, PostgreSQL's is not).
        clauses.append("(" + " OR ".join(f"lower({column}) LIKE lower(:search)" for column in (
            "rule_title", "account", "detail", "recipient")) + ")")
    if since_ms is not None:
        params["since"] = since_ms
        clauses.append("ts_ms >= :since")
    if until_ms is not None:
        params["until"] = until_ms
        clauses.append("ts_ms < :until")
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _state_row(row: Sequence) -> StateRow:
    state = dict(zip(STATE_COLUMNS, row, strict=False))
    title, area, level, account_name, operator, threshold, reset, currency = row[
        len(STATE_COLUMNS):]
    state["notified"], state["silenced"] = bool(state["notified"]), bool(state["silenced"])
    return StateRow(title=title, area=area, level=level, account_name=account_name,
                    operator=operator, threshold=threshold, reset_threshold=reset,
                    currency=currency, **state)


STATUS_ORDER = ("firing", "pending", "insufficient", "silenced", "ok")  # worst first


def _overview(rule: Rule, states: list[StateRow]) -> RuleOverview:
    if not states:
        return RuleOverview(rule, "ok" if rule.enabled else "disabled", 0, 0, None, "", None,
                            None)
    worst = min(states, key=lambda s: STATUS_ORDER.index(s.status))
    fired = [s.fired_ms for s in states if s.fired_ms is not None]
    repeats = [s.next_repeat_ms for s in states if s.next_repeat_ms is not None]
    return RuleOverview(
        rule, worst.status if rule.enabled else "disabled", len(states),
        sum(s.state == "firing" for s in states), worst.value, worst.account,
        max(fired, default=None), min(repeats, default=None))


# Writes any console may make --------------------------------------------------------------------

def write_rule(db: sqlite3.Connection, rule: Rule) -> int:
    """Insert or replace a (validated) rule by id; return its id. The caller's transaction."""
    row = rule_to_row(rule)
    if rule.id is None:
        del row["id"]
    columns = ", ".join(row)
    updates = ", ".join(f"{name} = excluded.{name}" for name in row if name != "id")
    (rule_id,) = db.execute(
        f"INSERT INTO alert_rule ({columns}) VALUES ({', '.join(':' + n for n in row)}) "
        f"ON CONFLICT(id) DO UPDATE SET {updates} RETURNING id", row).fetchone()
    bump_config(db)
    return rule_id


def delete_rule(path: str | Path, rule_id: int) -> None:
    """Delete a rule and its states (its history and standing penalties stay)."""
    with writing(path) as db:
        db.execute("DELETE FROM alert_rule WHERE id = ?", (rule_id,))
        db.execute("DELETE FROM alert_state WHERE rule_id = ?", (rule_id,))
        db.execute("DELETE FROM alert_silence WHERE rule_id = ?", (rule_id,))
        bump_config(db)


def set_rule_enabled(path: str | Path, rule_id: int, enabled: bool, *, now_ms: int) -> None:
    """Enable or disable a rule. Disabling forgets its states: it is no longer evaluated."""
    with writing(path) as db:
        db.execute("UPDATE alert_rule SET enabled = ?, updated_ms = ? WHERE id = ?",
                   (enabled, now_ms, rule_id))
        if not enabled:
            db.execute("DELETE FROM alert_state WHERE rule_id = ?", (rule_id,))
        bump_config(db)


def acknowledge(path: str | Path, rule_id: int, kind: str, account: str, *, by: str,
                comment: str = "", now_ms: int) -> bool:
    """Acknowledge a firing alert (it stops repeating until it resolves); False if not firing."""
    with writing(path) as db:
        changed = db.execute(
            "UPDATE alert_state SET acked_by = ?, acked_ms = ?, ack_comment = ? "
            "WHERE rule_id = ? AND kind = ? AND account = ? AND state = 'firing'",
            (by, now_ms, comment, rule_id, kind, account)).rowcount
        if changed:
            _record_subject_event(db, "acked", rule_id, kind, account, now_ms, detail=comment,
                                  actor=by)
            bump_config(db)
    return bool(changed)


def add_silence(path: str | Path, *, until_ms: int, now_ms: int, rule_id: int | None = None,
                kind: str = "", account: str = "", area: str = "", comment: str = "",
                created_by: str = "") -> int:
    """Silence what matches every given field until `until_ms`; return the silence's id."""
    if rule_id is None and not account and not area:
        raise ValueError("a silence needs a rule, an account or an area")
    if account and not kind:
        raise ValueError("a silence of an account needs its kind (customer or carrier)")
    if until_ms <= now_ms:
        raise ValueError("a silence must end in the future")
    with writing(path) as db:
        silence_id = db.execute(
            "INSERT INTO alert_silence (rule_id, kind, account, area, until_ms, comment, "
            "created_by, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (rule_id, kind, account, area, until_ms, comment, created_by, now_ms)).fetchone()[0]
        title = _title(db, rule_id)
        record_history(db, [dict(ts_ms=now_ms, event="silenced", rule_id=rule_id,
                                 rule_title=title, kind=kind, account=account, area=area,
                                 detail=comment, actor=created_by)])
        bump_config(db)
    return silence_id


def end_silence(path: str | Path, silence_id: int, *, now_ms: int, by: str = "") -> None:
    with writing(path) as db:
        row = db.execute("SELECT rule_id, kind, account, area FROM alert_silence WHERE id = ?",
                         (silence_id,)).fetchone()
        if row is None:
            return
        db.execute("UPDATE alert_silence SET until_ms = ? WHERE id = ? AND until_ms > ?",
                   (now_ms, silence_id, now_ms))
        rule_id, kind, account, area = row
        record_history(db, [dict(ts_ms=now_ms, event="unsilenced", rule_id=rule_id,
                                 rule_title=_title(db, rule_id), kind=kind, account=account,
                                 area=area, actor=by)])
        bump_config(db)


def set_tags(path: str | Path, kind: str, account: str, tags: Iterable[str]) -> None:
    """Replace an account's tags."""
    with writing(path) as db:
        db.execute("DELETE FROM account_tag WHERE kind = ? AND account = ?", (kind, account))
        db.executemany("INSERT INTO account_tag (kind, account, tag) VALUES (?, ?, ?)",
                       [(kind, account, tag) for tag in sorted(set(tags)) if tag])
        bump_config(db)


def write_tag(db: sqlite3.Connection, kind: str, tag: str, accounts: Iterable[str]) -> None:
    """Make `accounts` the members of one tag of a kind. The caller's transaction."""
    db.execute("DELETE FROM account_tag WHERE kind = ? AND tag = ?", (kind, tag))
    db.executemany("INSERT INTO account_tag (kind, account, tag) VALUES (?, ?, ?)",
                   [(kind, account, tag) for account in sorted(set(accounts))])
    bump_config(db)


def write_template(db: sqlite3.Connection, template: Template) -> None:
    """Insert or replace a (validated) template. The caller's transaction."""
    db.execute("INSERT INTO alert_template (name, subject, body, updated_ms) VALUES (?, ?, ?, ?) "
               "ON CONFLICT(name) DO UPDATE SET subject = excluded.subject, "
               "body = excluded.body, updated_ms = excluded.updated_ms",
               (template.name, template.subject, template.body, template.updated_ms))
    bump_config(db)


def delete_template(path: str | Path, name: str) -> None:
    """Delete a template no rule uses (else ValueError naming the rules)."""
    with writing(path) as db:
        users = [title for title, in db.execute(
            "SELECT title FROM alert_rule WHERE template = ? ORDER BY title", (name,))]
        if users:
            raise ValueError(f"template {name!r} is used by {', '.join(users)}")
        db.execute("DELETE FROM alert_template WHERE name = ?", (name,))
        bump_config(db)


# Writes of the engine (and of send_test), in the caller's transaction ---------------------------

HISTORY_FIELDS = tuple(f.name for f in fields(HistoryRow) if f.name != "id")


def record_history(db: sqlite3.Connection, rows: Iterable[dict]) -> None:
    """History rows as dicts of HISTORY_FIELDS (missing ones empty)."""
    defaults = {name: "" for name in HISTORY_FIELDS} | {
        "rule_id": None, "value": None, "threshold": None}
    db.executemany(
        f"INSERT INTO alert_history ({', '.join(HISTORY_FIELDS)}) "
        f"VALUES ({', '.join(':' + n for n in HISTORY_FIELDS)})",
        [defaults | row for row in rows])


def queue_messages(db: sqlite3.Connection, messages: Iterable[Message], now_ms: int) -> list[str]:
    """Put messages in the outbox, due now; return their message ids."""
    rows = [dict(message_id=m.message_id or uuid.uuid4().hex, rule_id=m.rule_id,
                 rule_title=m.rule_title, kind=m.kind, account=m.account, event=m.event,
                 level=m.level, channel=m.channel, recipient=m.recipient, subject=m.subject,
                 body=m.body, created_ms=now_ms, attempts=0, next_attempt_ms=now_ms,
                 status="pending", last_error="", sent_ms=None) for m in messages]
    insert_rows(db, AlertOutbox, rows)
    return [row["message_id"] for row in rows]


def insert_rows(db: sqlite3.Connection, model: type[SQLModel], rows: list[dict]) -> None:
    """Rows given as model_dump() dicts (every column: the schema has no SQL defaults)."""
    if rows:
        columns = list(rows[0])
        db.executemany(f"INSERT INTO {model.__tablename__} ({', '.join(columns)}) "
                       f"VALUES ({', '.join(':' + name for name in columns)})", rows)


def insert_control(db: sqlite3.Connection, *, action: str, kind: str, account: str,
                   until_ms: int | None, reason: str, now_ms: int) -> str:
    """A control request for the writer to send on the feed (the engine's penalties)."""
    request = models.ControlRequest(
        id=uuid.uuid4().hex, created_ms=now_ms, action=action, kind=kind, account=account,
        until_ms=until_ms, reason=reason, requested_by=ENGINE).model_dump()
    db.execute(f"INSERT INTO control_request ({', '.join(request)}) "
               f"VALUES ({', '.join(':' + n for n in request)})", request)
    return request["id"]


def _title(db: sqlite3.Connection, rule_id: int | None) -> str:
    if rule_id is None:
        return ""
    row = db.execute("SELECT title FROM alert_rule WHERE id = ?", (rule_id,)).fetchone()
    return row[0] if row else ""


def _record_subject_event(db: sqlite3.Connection, event: str, rule_id: int, kind: str,
                          account: str, now_ms: int, **extra: object) -> None:
    row = db.execute("SELECT title, area, level FROM alert_rule WHERE id = ?",
                     (rule_id,)).fetchone() or ("", "", "")
    record_history(db, [dict(ts_ms=now_ms, event=event, rule_id=rule_id, rule_title=row[0],
                             kind=kind, account=account, area=row[1], level=row[2], **extra)])
