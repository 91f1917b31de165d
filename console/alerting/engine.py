"""The alert engine: rounds of evaluation, the outbox worker and penalty timers, in the writer.

A round (every `interval`, 1 s by default) costs, whatever the number of rules:
- one read of `config_version`; rules, templates, silences, tags and acknowledgements are cached
  and read again only when a console has changed one of them;
- one query per source of values, grouped by account; windowed totals are kept incrementally,
  so only the minutes in which calls still end are read (values.WindowSums);
- the state machine run for the (rule, account) pairs whose reading changed or that time moves
  on (pending, firing), not for every pair (watch.Watchlist; all of them after a reload);
- one write transaction, only when something changed: state transitions, history, outbox rows
  and penalties together, so a message is queued if and only if its transition is stored.
  Values that moved without a transition are written at most every VALUE_FLUSH_MS.

If that write fails, the cached states are dropped and read back from the store, so the next
round decides (and queues) the same transitions again: nothing is lost, nothing sent twice.

Rounds wait while the writer says its store is not current (`ready`: the feed down, or a backlog
being caught up after a start): values read then would be of half-stored minutes, and rules would
fire and clear on them. Deliveries go on meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from console.alerting import penalties, reports, templates
from console.alerting.areas import AREAS, SCRIPT, Area
from console.alerting.connection import EngineConnection
from console.alerting.delivery import Delivery
from console.alerting.evaluation import (
    FIRED,
    FIRING,
    NOTIFIED,
    PENDING,
    REPEAT,
    RESOLVED,
    RESOLVED_UNANNOUNCED,
    Condition,
    Policy,
    SubjectState,
    at_rest,
    step,
)
from console.alerting.messages import compose
from console.alerting.scripts import Scripts
from console.alerting.senders import Senders
from console.alerting.settings import AlertSettings
from console.alerting.values import MINUTE_MS, Needs, RoundValues, WindowSums, collect
from console.alerting.watch import Watchlist
from store import alerting as store
from store.alerting import ENGINE, FEED, Message, Rule, Silence, Template
from store.database import STORE_ERRORS
from store.health import fault_of

log = logging.getLogger(__name__)

VALUE_FLUSH_MS = 5_000
HISTORY_EVENTS = {FIRED: "fired", NOTIFIED: "notified", REPEAT: "repeat", RESOLVED: "resolved",
                  RESOLVED_UNANNOUNCED: "resolved"}
CLEARED = frozenset({RESOLVED, RESOLVED_UNANNOUNCED})
NOTES = {NOTIFIED: "; announced as its silence ended",
         RESOLVED_UNANNOUNCED: "; never announced (silenced throughout)"}
Key = tuple[int, str, str]  # rule id, kind, account
States = dict[tuple[int, str], dict[str, SubjectState]]  # (rule id, kind) -> account -> state
NOBODY: frozenset[str] = frozenset()
MOVING = frozenset({PENDING, FIRING})  # states that time alone moves on

STATE_FIELDS = ("state", "value", "sample", "detail", "since_ms", "fired_ms", "resolved_ms",
                "next_repeat_ms", "notified", "silenced")
UPSERT_STATE = (
    f"INSERT INTO alert_state (rule_id, kind, account, {', '.join(STATE_FIELDS)}, updated_ms, "
    f"acked_by, ack_comment) VALUES ({', '.join('?' * (len(STATE_FIELDS) + 4))}, '', '') "
    "ON CONFLICT(rule_id, kind, account) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in (*STATE_FIELDS, "updated_ms"))
    # An acknowledgement lasts as long as the firing it acknowledges.
    + ", acked_by = CASE WHEN excluded.state = 'firing' THEN alert_state.acked_by ELSE '' END"
    + ", acked_ms = CASE WHEN excluded.state = 'firing' THEN alert_state.acked_ms END"
    + ", ack_comment = CASE WHEN excluded.state = 'firing' THEN alert_state.ack_comment "
    "ELSE '' END"
)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule with what each round needs of it prepared once, at reload."""

    rule: Rule
    area: Area
    policy: Policy
    template: Template
    subjects: tuple[str, ...] | None  # None: every account of the kind, as of the round
    states: dict[str, SubjectState]  # its subjects' states (in the engine's map)


@dataclass(frozen=True)
class RoundReport:
    """What one round did (for tests, the benchmark and logs)."""

    rules: int
    subjects: int  # (rule, account) pairs watched
    evaluated: int  # ... of which evaluated: changed, moving with time, or all after a reload
    events: int
    messages: int
    penalties: int
    wrote: bool
    # Until when nothing but a change in the store can move anything (None: time moves some
    # subject, penalty or value on, so the next round is at the interval).
    rest_until_ms: int | None = None


@dataclass
class _Work:
    """What a round decided, written together at its end."""

    changed: set[Key] = field(default_factory=set)
    history: list[dict] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    penalties: list[tuple[Rule, str, str, str]] = field(default_factory=list)


class AlertEngine:
    """Evaluates the alert rules of the database at `db_path`; runs in its writer only."""

    def __init__(self, db_path: str | Path, settings: AlertSettings | None = None, *,
                 clock: Callable[[], int] = wall_clock_ms, senders: Senders | None = None) -> None:
        self.settings = settings or AlertSettings()
        self.clock = clock
        self.database = EngineConnection(db_path)
        self.delivery = Delivery(self.database, senders or Senders(self.settings), self.settings,
                                 clock)
        self.scripts = Scripts(self.settings.script_module, db_path,
                               seconds=self.settings.script_timeout)
        self._version: int | None = None
        self._rules: list[CompiledRule] = []
        self._needs = Needs()
        self._templates: dict[str, Template] = {}
        self._silences: list[Silence] = []
        self._tags: dict[tuple[str, str], tuple[str, ...]] = {}
        self._states: States | None = None
        self._value_dirty: set[Key] = set()
        self.watch = Watchlist([])
        self._active: dict[tuple[int, str], tuple[CompiledRule, str]] = {}  # pending, firing
        self._last_value_flush = 0
        self._report_runs: dict[str, int] = {}
        self._windows = WindowSums()
        self.ready: Callable[[], bool] = lambda: True  # the writer's: is the store current?
        self.health = self.delivery.health  # the writer's: who is told of store trouble
        self._held = False
        # True when whoever runs the engine calls `store_changed` at every change of the store
        # (the writer does): rounds then rest while nothing changes, rather than poll.
        self.told_of_changes = False
        self._changed = asyncio.Event()

    # Running -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Rounds every `interval` and deliveries, until cancelled (then closes)."""
        self.delivery.health = self.health
        self.delivery.poll = not self.told_of_changes
        delivery = asyncio.create_task(self.delivery.run(), name="alert delivery")
        try:
            while True:
                started = time.monotonic()
                rest_until_ms = None
                if self._may_evaluate():
                    self._changed.clear()  # a change from now on calls for another round
                    try:
                        report = await self.database.call(self.evaluate_round, self.clock())
                    except STORE_ERRORS as error:  # the next round decides it all again
                        self.health.failed("alert engine", fault_of(error),
                                           self.settings.interval)
                    except Exception:  # logged; the next round tries again from the store
                        log.exception("alert evaluation round failed")
                    else:
                        self.health.recovered("alert engine")
                        if report.messages:
                            self.delivery.wake.set()
                        rest_until_ms = report.rest_until_ms
                elapsed = time.monotonic() - started
                await asyncio.sleep(max(0.0, self.settings.interval - elapsed))
                if self.told_of_changes and rest_until_ms is not None:
                    await self._rest(rest_until_ms)
        finally:
            delivery.cancel()
            await asyncio.gather(delivery, return_exceptions=True)
            await self.close()

    def store_changed(self) -> None:
        """Something was committed to the store: the next round is due at the interval."""
        self._changed.set()
        self.delivery.wake.set()

    async def _rest(self, until_ms: int) -> None:
        """Wait for a change in the store, or until time alone moves something on."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, (until_ms - self.clock()) / 1000)):
                await self._changed.wait()

    def _may_evaluate(self) -> bool:
        ready = self.ready()
        if ready == self._held:  # a change: say so once
            self._held = not ready
            log.info("alert rounds %s", "wait: the store is not current (feed down or catching "
                     "up)" if self._held else "resume: the store is current")
        return ready

    async def deliver_due(self) -> int:
        """Send the messages due now (tests call it; `run` does it by itself)."""
        return await self.delivery.deliver_due()

    async def close(self) -> None:
        await self.database.call(self.scripts.close)
        await self.database.close()

    # A round ------------------------------------------------------------------------------

    def evaluate_round(self, now_ms: int | None = None) -> RoundReport:
        """Evaluate the enabled rules at `now_ms` (default: the clock) and store the outcome."""
        now_ms = self.clock() if now_ms is None else now_ms
        db = self.database.connection
        if self._states is None:
            self._load_states(db)
        self._reload_if_changed(db)
        values = collect(db, now_ms, self._needs, self._windows)
        work = _Work()
        full = self.watch.full
        muted: dict[int, tuple[bool, frozenset[str]]] = {}
        evaluated = 0
        for compiled, account in self.watch.due(values, list(self._active.values())):
            self._evaluate(compiled, account, values, now_ms, work, muted, full)
            evaluated += 1
        due_penalties = penalties.due(db, now_ms)
        due_reports = reports.due(self.settings.report, self._report_runs, now_ms)
        flush_values = bool(self._value_dirty) and (
            now_ms - self._last_value_flush >= VALUE_FLUSH_MS)
        wrote = bool(work.changed or work.history or due_penalties or due_reports
                     or flush_values)
        if wrote:
            self._write(db, work, due_penalties, due_reports, flush_values, now_ms)
        return RoundReport(len(self._rules), self.watch.count(values), evaluated,
                           len(work.history), len(work.messages), len(work.penalties), wrote,
                           self._rest_until(db, now_ms, due_penalties))

    def _rest_until(self, db: sqlite3.Connection, now_ms: int,
                    due_penalties: list[penalties.Due]) -> int | None:
        """When time alone next moves something on, if no change in the store comes first:
        the next minute (windows of minutes slide, quarantine windows with them, reports are
        due at a minute), or a penalty's end; None while subjects are pending or firing, a
        script gives values, penalties are being released or values wait to be written."""
        if (self._active or self._value_dirty or due_penalties
                or any(compiled.area.source == SCRIPT for compiled in self._rules)):
            return None
        next_minute = now_ms - now_ms % MINUTE_MS + MINUTE_MS
        return min(next_minute, penalties.next_end(db) or next_minute)

    def _evaluate(self, compiled: CompiledRule, account: str, values: RoundValues,
                  now_ms: int, work: _Work, muted: dict[int, tuple[bool, frozenset[str]]],
                  full: bool) -> None:
        """One rule for one account: step its state machine, act on what happened."""
        rule = compiled.rule
        s = compiled.states.get(account)
        if s is None:
            s = compiled.states[account] = SubjectState(since_ms=now_ms, changed=True)
        detail = ""
        if compiled.area.source == SCRIPT:
            value, detail = self.scripts.value(rule, rule.kind, account, now_ms)
            sample = None
        else:
            table, default = values.table(rule.area, rule.kind, rule.sample_period_s)
            value, sample = table.get(account, default)
        silenced = False
        if self._silences:
            if rule.id not in muted:
                muted[rule.id] = self._silenced(rule, now_ms)
            silenced_all, accounts = muted[rule.id]
            silenced = silenced_all or account in accounts
        if not full and not s.changed and at_rest(s, value, sample, silenced):
            return
        events = step(compiled.policy, s, value, sample, now_ms, silenced=silenced)
        if detail:
            s.detail = detail
        if events:
            self._act(compiled, account, s, events, values, now_ms, work)
        key = (rule.id, rule.kind, account)
        if s.changed:
            work.changed.add(key)
        elif s.value_changed:
            self._value_dirty.add(key)
        if s.state in MOVING:
            self._active[(rule.id, account)] = (compiled, account)
        else:
            self._active.pop((rule.id, account), None)

    def _silenced(self, rule: Rule, now_ms: int) -> tuple[bool, frozenset[str]]:
        """(the whole rule is silenced, the accounts of it that are)."""
        matching = [s for s in self._silences if s.until_ms > now_ms
                    and (s.rule_id is None or s.rule_id == rule.id)
                    and (not s.area or s.area == rule.area)
                    and (not s.kind or s.kind == rule.kind)]
        if any(not s.account for s in matching):
            return True, NOBODY
        return False, frozenset(s.account for s in matching)

    def _act(self, compiled: CompiledRule, account: str, s: SubjectState, events: list[str],
             values: RoundValues, now_ms: int, work: _Work) -> None:
        """Record what happened to a subject, compose its messages, decide its penalty."""
        rule = compiled.rule
        name = "the feed" if rule.kind == FEED else values.name(rule.kind, account)
        for event in events:
            announced = event in (NOTIFIED, REPEAT, RESOLVED) or (event == FIRED and s.notified)
            note = "" if announced or event != FIRED else "; silenced, not announced"
            condition = rule.describe(s.value, firing=event not in CLEARED)
            work.history.append(dict(
                ts_ms=now_ms, event=HISTORY_EVENTS[event], rule_id=rule.id,
                rule_title=rule.title, kind=rule.kind, account=account, area=rule.area,
                level=rule.level, value=s.value, threshold=rule.threshold,
                detail=condition + (note or NOTES.get(event, "")), actor=ENGINE))
            if not announced:
                continue
            context = templates.alert_context(
                rule, kind=rule.kind, account=account, account_name=name, value=s.value,
                sample=s.sample, state="resolved" if event == RESOLVED else "firing",
                event=event, now_ms=now_ms, zone=self.settings.zone)
            work.messages += compose(rule, compiled.template, context, kind=rule.kind,
                                     account=account, event=event)
            if event in (FIRED, NOTIFIED) and rule.penalty_s and rule.kind != FEED:
                work.penalties.append((rule, rule.kind, account,
                                       f"alert {rule.title!r}: {condition}"))

    # Writing -------------------------------------------------------------------------------

    def _write(self, db: sqlite3.Connection, work: _Work, due_penalties: list[penalties.Due],
               due_reports: list, flush_values: bool, now_ms: int) -> None:
        keys = work.changed | self._value_dirty if flush_values else work.changed
        written = [(key, self._state(key)) for key in keys]
        rows = [(*key, *(getattr(s, name) for name in STATE_FIELDS), now_ms)
                for key, s in written if s is not None]
        today = now_ms - now_ms % reports.DAY_MS
        try:
            with store.transaction(db):
                db.executemany(UPSERT_STATE, rows)
                history = list(work.history)
                for rule, kind, account, reason in work.penalties:
                    history.append(penalties.start(db, rule, kind, account, now_ms, reason))
                for penalty in due_penalties:
                    history += penalties.advance(db, penalty, now_ms)
                messages = list(work.messages)
                for report in due_reports:
                    queued = reports.compose(db, report, self._templates, self._tags, now_ms)
                    messages += queued
                    history.append(dict(event="report", rule_title=report.title,
                                        kind=report.kind, actor=ENGINE,
                                        detail=f"{len(queued)} messages queued"))
                    db.execute("INSERT INTO alert_report_run (report, day_ms) VALUES (?, ?) "
                               "ON CONFLICT(report) DO UPDATE SET day_ms = excluded.day_ms",
                               (report.title, today))
                store.queue_messages(db, messages, now_ms)
                store.record_history(db, [{"ts_ms": now_ms} | row for row in history])
        except STORE_ERRORS:
            self._states = None  # read back next round, which then decides all this again
            self._value_dirty.clear()
            raise
        for _, s in written:
            if s is not None:
                s.changed = s.value_changed = False
        if flush_values:
            self._value_dirty.clear()
            self._last_value_flush = now_ms
        else:
            self._value_dirty -= work.changed
        for report in due_reports:
            self._report_runs[report.title] = today

    # Loading -------------------------------------------------------------------------------

    def _state(self, key: Key) -> SubjectState | None:
        return self._states.get(key[:2], {}).get(key[2])

    def _load_states(self, db: sqlite3.Connection) -> None:
        states: States = {}
        for rule_id, kind, account, *rest in db.execute(
                f"SELECT rule_id, kind, account, {', '.join(STATE_FIELDS)}, acked_ms "
                "FROM alert_state"):
            fields = dict(zip(STATE_FIELDS, rest, strict=False))
            fields["notified"], fields["silenced"] = bool(fields["notified"]), \
                bool(fields["silenced"])
            states.setdefault((rule_id, kind), {})[account] = SubjectState(
                **fields, acked=rest[-1] is not None)
        self._states = states
        self._report_runs = dict(db.execute("SELECT report, day_ms FROM alert_report_run"))
        self._version = None  # acknowledgements are applied with the configuration

    def _reload_if_changed(self, db: sqlite3.Connection) -> None:
        version = store.config_version(db)
        if version == self._version:
            return
        db.execute("BEGIN")
        try:
            version = store.config_version(db)
            rules = [rule for rule in store.load_rules(db) if rule.enabled]
            self._templates = store.load_templates(db)
            self._silences = store.load_silences(db, 0)
            self._tags = store.load_tags(db)
            acked = set(db.execute(
                "SELECT rule_id, kind, account FROM alert_state WHERE acked_ms IS NOT NULL"))
        finally:
            db.execute("COMMIT")
        self._rules = [self._compile(rule) for rule in rules]
        self._needs = Needs()
        for rule in rules:
            self._needs.add(rule.area, rule.kind, rule.sample_period_s)
        for (rule_id, kind), states in self._states.items():
            for account, s in states.items():
                s.acked = (rule_id, kind, account) in acked
        self._forget_stale(db, {rule.id: rule for rule in rules})
        self._version = version
        self.watch = Watchlist(self._rules)  # its first round evaluates every pair
        self._active = {}

    def _compile(self, rule: Rule) -> CompiledRule:
        condition = Condition(rule.operator, rule.threshold, rule.reset_threshold)
        policy = Policy(condition, rule.minimum_sample, rule.pending_s * 1000,
                        rule.repeat_s * 1000)
        template = templates.resolve(rule.template, self._templates, templates.DEFAULTS[rule.area])
        if rule.kind == FEED:
            subjects: tuple[str, ...] | None = ("",)
        elif rule.scope == "account":
            subjects = (rule.company,)
        elif rule.scope == "tag":
            subjects = self._tags.get((rule.kind, rule.company), ())
        else:
            subjects = None
        states = self._states.setdefault((rule.id, rule.kind), {})
        return CompiledRule(rule, AREAS[rule.area], policy, template, subjects, states)

    def _forget_stale(self, db: sqlite3.Connection, rules: dict[int, Rule]) -> None:
        """Drop the states of rules deleted or disabled, and of subjects a rule no longer
        watches (its kind, company or tag changed)."""

        def watched(rule_id: int, kind: str, account: str) -> bool:
            rule = rules.get(rule_id)
            if rule is None or rule.kind != kind:
                return False
            if rule.scope == "account":
                return account == rule.company
            if rule.scope == "tag":
                return account in self._tags.get((kind, rule.company), ())
            return True

        stale = [(rule_id, kind, account) for (rule_id, kind), states in self._states.items()
                 for account in states if not watched(rule_id, kind, account)]
        if not stale:
            return
        with store.transaction(db):
            db.executemany("DELETE FROM alert_state WHERE rule_id = ? AND kind = ? "
                           "AND account = ?", stale)
        for key in stale:
            del self._states[key[:2]][key[2]]
            self._value_dirty.discard(key)
