"""The alert engine's state as the console shows it: firing alerts, rules, silences, history,
penalties and the outbox, each a pane of the Alerts screen.

Reads go through store.alerting.AlertData. The writes (acknowledge, silence, enable, delete,
test, a rule saved) are short transactions any console may make, a viewer too: the writer's
engine picks them up at its next round. A read-only console refuses them all.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Static

from console.alerting import areas as alert_areas
from console.alerting.messages import send_test
from screens.alert_dialogs import AcknowledgeDialog, SilenceChoice, SilenceDialog
from screens.confirm import Confirm
from screens.formats import (
    DASH,
    SEVERITY_MARK,
    iso_utc,
    name_of,
    names_of,
    penalty_left,
    recent_time,
)
from screens.navigation import OpenAccount
from screens.panes import DataPane
from screens.safe_text import plain
from screens.tables import LiveTable
from store import alerting, conditions
from store.alerting import (
    AlertData,
    HistoryRow,
    OutboxRow,
    PenaltyRow,
    RuleOverview,
    Silence,
    StateRow,
)
from store.views import ConsoleData
from widgets.dialogs import ShowDialog
from widgets.export import ExportResult, ExportScreen, Scope
from widgets.export_files import ExportColumn, export_path, write_table
from widgets.filter_input import FilterInput
from widgets.live_table import Col

STATUS_LOOK = {  # a mark that reads without colour, and a colour for those who have it
    "firing": ("●", "bold red"),
    "pending": ("◐", "yellow"),
    "insufficient": ("?", "dim"),
    "silenced": ("◌", "dim"),
    "ok": ("✓", "green"),
    "disabled": ("–", "dim"),
}
STATUS_WORDS = {"insufficient": "too few calls"}
SHORT_LABELS = {"consecutive_failures": "Consec. failures", "channel_breaches": "Channel breaches",
                "quarantined": "Quarantined"}
HISTORY_PAGE = 500
HISTORY_COUNTED = 10_000  # matching rows counted at most, at each refresh
EVENT_GROUPS = {  # what `f` cycles through on the history
    "all events": None,
    "alerts": ("fired", "notified", "repeat", "resolved"),
    "deliveries": ("sent", "failed", "test", "report"),
    "penalties": ("penalty", "penalty_end", "penalty_kept"),
    "people": ("acked", "silenced", "unsilenced"),
}
EVENT_STYLE = {"fired": "bold red", "resolved": "green", "penalty": "bold", "failed": "red",
               "sent": "", "acked": "cyan", "silenced": "dim"}
EXPORT_HISTORY = tuple(ExportColumn(label) for label in (
    "time (UTC)", "event", "rule", "kind", "account", "account name", "area", "level")) + (
    ExportColumn("value", 2), ExportColumn("threshold", 2)) + tuple(
    ExportColumn(label) for label in ("detail", "recipient", "by"))


def operator_name() -> str:
    """Who is at this console, for acknowledgements and silences."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "console"


def area_value(area: str, value: float | None, unit: str | None = None) -> str:
    """A value with its unit (`29.8%`), as store.conditions writes it; a dash without one."""
    return DASH if value is None else conditions.amount(area, value, unit)


def alert_value(alert: StateRow) -> str:
    return area_value(alert.area, alert.value, alert.currency if alert.area == "balance" else None)


def status_cell(status: str, extra: str = "") -> Text:
    mark, style = STATUS_LOOK.get(status, ("?", ""))
    return Text(f"{mark} {STATUS_WORDS.get(status, status)}{extra}", style=style)


def level_cell(level: str) -> Text:
    mark, style = SEVERITY_MARK.get(level, ("?", ""))
    return Text(f"{mark} {level}", style=style)


def alert_status(alert: StateRow) -> Text:
    if alert.status == "firing" and alert.acked_by:
        return Text(f"✓ acked by {alert.acked_by}", style="cyan")
    return status_cell(alert.status)


def subject_name(kind: str, account: str, names: Mapping[tuple[str, str], str]) -> str:
    if kind == alerting.FEED or not account:
        return "the feed" if kind == alerting.FEED else DASH
    return name_of(names, kind, account)


# Writes any alerts pane may make ----------------------------------------------------------------

class AlertWrites:
    """Acknowledge and silence the highlighted alert; mixed into DataPanes that list StateRows
    (their `write` runs each change on a thread)."""

    def selected_alert(self) -> StateRow | None:
        raise NotImplementedError

    def writable(self) -> bool:
        if self.app.read_only:
            self.notify("Read-only console: alerts cannot be changed here", severity="warning")
            return False
        return True

    def action_acknowledge(self) -> None:
        alert = self.selected_alert()
        if alert is None or not self.writable():
            return
        if alert.state != "firing":
            self.notify("Only a firing alert can be acknowledged", severity="warning")
            return
        what = f"{alert.title} · {alert.account_name}: {alert.condition}"

        def acknowledged(comment: str | None) -> None:
            if comment is not None:
                self.write(lambda: alerting.acknowledge(
                    self.app.options.db_path, alert.rule_id, alert.kind, alert.account,
                    by=operator_name(), comment=comment, now_ms=self.app.clock()),
                    f"Acknowledged {alert.title} for {alert.account_name}")

        self.post_message(ShowDialog(AcknowledgeDialog(what), acknowledged))

    def action_silence(self) -> None:
        alert = self.selected_alert()
        if alert is None or not self.writable():
            return
        label = alert_areas.AREAS[alert.area].label if alert.area in alert_areas.AREAS \
            else alert.area
        scopes = {"alert": f"{alert.title} for {alert.account_name}",
                  "rule": f"{alert.title}, every account"}
        if alert.kind != alerting.FEED:
            scopes |= {"account": f"Every rule for {alert.kind} {alert.account_name}",
                       "area": f"Every {label} rule, every account"}

        def chosen(choice: SilenceChoice | None) -> None:
            if choice is None:
                return
            fields = {"alert": dict(rule_id=alert.rule_id, kind=alert.kind,
                                    account=alert.account),
                      "rule": dict(rule_id=alert.rule_id),
                      "account": dict(kind=alert.kind, account=alert.account),
                      "area": dict(area=alert.area)}[choice.scope]
            self.silence(fields, choice, scopes[choice.scope])

        self.post_message(ShowDialog(SilenceDialog(scopes), chosen))

    def silence(self, fields: dict, choice: SilenceChoice, label: str) -> None:
        now = self.app.clock()
        until = now + choice.seconds * 1000
        self.write(lambda: alerting.add_silence(
            self.app.options.db_path, until_ms=until, now_ms=now, comment=choice.comment,
            created_by=operator_name(), **fields),
            f"Silenced {label} until {recent_time(until, now, self.app.display_tz, '%H:%M')}")


# Firing ---------------------------------------------------------------------------------------

FIRING_COLUMNS = (
    Col("level", "Level"),
    Col("alert", "Alert"),
    Col("account", "Account"),
    Col("value", "Value", "right"),
    Col("since", "Since", drop=2),  # the line under the list has it
    Col("status", "Status"),
    Col("repeat", "Next repeat", drop=1),
)


def alert_line(alert: StateRow | None, now_ms: int, tz: tzinfo) -> str:
    """The highlighted alert in full, under its list: `Low ASR · Swift Dialer: ASR 22.1% ≤
    30%, clears at ≥ 35% · since 11:28:30`."""
    if alert is None:
        return ""
    since = recent_time(alert.fired_ms or alert.since_ms, now_ms, tz)
    return f"{alert.title} · {alert.account_name}: {alert.condition} · since {since}"


def firing_order(alert: StateRow) -> tuple:
    """Firing before pending; unacknowledged, then the most severe, then the newest."""
    return (alert.state != "firing", alert.status == "silenced", bool(alert.acked_by),
            -alerting.LEVELS.index(alert.level), -(alert.fired_ms or alert.since_ms))


def firing_rows(alerts: Iterable[StateRow], now_ms: int,
                tz: tzinfo) -> Iterable[tuple[str, tuple]]:
    for a in alerts:
        yield f"{a.rule_id}:{a.kind}:{a.account}", (
            level_cell(a.level), a.title, a.account_name, alert_value(a),
            recent_time(a.fired_ms or a.since_ms, now_ms, tz), alert_status(a),
            recent_time(a.next_repeat_ms, now_ms, tz)
            if a.next_repeat_ms and a.status == "firing" and not a.acked_by else DASH,
        )


@dataclass(frozen=True)
class FiringSnapshot:
    now_ms: int
    alerts: tuple[StateRow, ...]


class FiringPane(AlertWrites, DataPane):
    """Firing and pending alerts; `a` acknowledges, `s` silences, Enter opens the account."""

    BINDING_GROUP_TITLE = "Firing alerts"
    BINDINGS = [
        Binding("a", "acknowledge", "Acknowledge"),
        Binding("s", "silence", "Silence"),
    ]

    def __init__(self) -> None:
        super().__init__(id="firing-pane")
        self._alerts: dict[str, StateRow] = {}
        self._now_ms = 0

    def compose(self) -> ComposeResult:
        yield Static(id="firing-title", classes="pane-title")
        yield Static(id="firing-line", classes="alert-line", markup=False)
        yield LiveTable(FIRING_COLUMNS, id="firing")

    def gather(self, data: ConsoleData, now_ms: int) -> FiringSnapshot:
        alerts = [a for a in AlertData(data.path).states() if a.state in ("firing", "pending")]
        return FiringSnapshot(now_ms, tuple(sorted(alerts, key=firing_order)))

    def show(self, snapshot: FiringSnapshot) -> None:
        self._alerts = {f"{a.rule_id}:{a.kind}:{a.account}": a for a in snapshot.alerts}
        self._now_ms = snapshot.now_ms
        table = self.query_one("#firing", LiveTable)
        table.set_rows(firing_rows(snapshot.alerts, snapshot.now_ms, self.app.display_tz))
        table.display = bool(snapshot.alerts)
        self._show_line()
        firing = sum(a.state == "firing" for a in snapshot.alerts)
        pending = len(snapshot.alerts) - firing
        self.query_one("#firing-title", Static).update(
            f"{firing:,} firing · {pending:,} pending · sorted by trouble ▼ · "
            "Enter opens the account" if snapshot.alerts
            else "✓ No alert is firing or pending")

    def selected_alert(self) -> StateRow | None:
        return self._alerts.get(self.query_one("#firing", LiveTable).highlighted_key or "")

    def _show_line(self) -> None:
        line = self.query_one("#firing-line", Static)
        line.update(alert_line(self.selected_alert(), self._now_ms, self.app.display_tz))
        line.display = bool(self._alerts)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_line()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        alert = self._alerts.get(event.row_key.value or "")
        if alert is not None and alert.kind in ("customer", "carrier"):
            self.post_message(OpenAccount(alert.kind, alert.account))


# Rules ----------------------------------------------------------------------------------------

RULE_COLUMNS = (
    Col("status", "Status"),
    Col("rule", "Rule"),
    Col("condition", "Condition", fill=True, keeps_whole=True),  # cut at a word, if at all
    Col("value", "Value (worst)", "right", drop=1),
    Col("fired", "Last fired", drop=2),
    Col("scope", "Applies to", drop=3),
    Col("level", "Level", drop=4),
    Col("repeat", "Next repeat", drop=5),
)


def condition_text(overview: RuleOverview) -> str:
    rule = overview.rule
    if rule.area == "no_traffic":
        window = alert_areas.window_minutes(rule.sample_period_s or 0)
        return f"no attempt in {window} min"
    return conditions.rule_condition(rule.area, rule.operator, rule.threshold,
                                     rule.reset_threshold, name=SHORT_LABELS.get(rule.area))


@dataclass(frozen=True)
class RulesSnapshot:
    now_ms: int
    rules: tuple[RuleOverview, ...]
    names: tuple[tuple[tuple[str, str], str], ...]


class RulesPane(AlertWrites, DataPane):
    """Every rule with the worst state of its accounts; create, edit, enable, delete, test."""

    BINDING_GROUP_TITLE = "Alert rules"
    BINDINGS = [
        Binding("n", "new", "New rule"),
        Binding("e", "edit", "Edit"),
        Binding("c", "copy", "Copy", show=False),
        Binding("space", "toggle", "On/off"),
        Binding("d,delete", "delete", "Delete"),
        Binding("t", "test", "Test"),
        Binding("s", "silence", "Silence", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="rules-pane")
        self._rules: dict[str, RuleOverview] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="rules-title", classes="pane-title")
        yield LiveTable(RULE_COLUMNS, id="rules")

    def gather(self, data: ConsoleData, now_ms: int) -> RulesSnapshot:
        return RulesSnapshot(now_ms, tuple(AlertData(data.path).overview()),
                             tuple(names_of(data).items()))

    def show(self, snapshot: RulesSnapshot) -> None:
        names = dict(snapshot.names)
        tz = self.app.display_tz
        self._rules = {str(o.rule.id): o for o in snapshot.rules}
        rows = []
        for key, o in self._rules.items():
            worst = DASH
            # Of many accounts the one shown is the worst: only telling when one is not ok.
            if o.value is not None and (o.subjects == 1 or o.status not in ("ok", "insufficient")):
                who = subject_name(o.rule.kind, o.account, names)
                worst = f"{area_value(o.rule.area, o.value)} {who}" if o.subjects > 1 \
                    else area_value(o.rule.area, o.value)
            firing = f" {o.firing}" if o.firing > 1 else ""
            rows.append((key, (
                status_cell(o.status, firing), Text(o.rule.title, style="bold"),
                condition_text(o), worst,
                recent_time(o.fired_ms, snapshot.now_ms, tz) if o.fired_ms else DASH,
                o.rule.scope_label, level_cell(o.rule.level),
                recent_time(o.next_repeat_ms, snapshot.now_ms, tz) if o.next_repeat_ms
                else DASH,
            )))
        self.query_one("#rules", LiveTable).set_rows(rows)  # shown empty too: it takes `n`
        firing = sum(o.status == "firing" for o in snapshot.rules)
        self.query_one("#rules-title", Static).update(
            f"{len(rows):,} rules · {firing:,} firing · n new · Enter edit · c copy · "
            "s silence" if rows else "No alert rules yet · n creates one (or noc alerts import)")

    def selected(self) -> RuleOverview | None:
        return self._rules.get(self.query_one("#rules", LiveTable).highlighted_key or "")

    def selected_alert(self) -> None:
        return None  # a rule's accounts are on the Firing tab

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_edit()

    def action_new(self) -> None:
        self._edit(None)

    def action_edit(self) -> None:
        if (overview := self.selected()) is not None:
            self._edit(overview, copy=False)

    def action_copy(self) -> None:
        if (overview := self.selected()) is not None:
            self._edit(overview, copy=True)

    def _edit(self, overview: RuleOverview | None, *, copy: bool = False) -> None:
        from screens.rule_editor import RuleEditor

        if not self.writable():
            return
        path = self.app.options.db_path
        editor = RuleEditor(path, rule=overview.rule if overview else None,
                            accounts=self.app.data.account_names(),
                            templates=[t.name for t in AlertData(path).templates()],
                            now_ms=self.app.clock(), copy=copy)

        def saved(rule) -> None:
            if rule is not None:
                self.notify(f"Saved rule {rule.title}")
                self.refresh_now()

        self.post_message(ShowDialog(editor, saved))

    def action_toggle(self) -> None:
        overview = self.selected()
        if overview is None or not self.writable():
            return
        rule = overview.rule
        self.write(lambda: alerting.set_rule_enabled(
            self.app.options.db_path, rule.id, not rule.enabled, now_ms=self.app.clock()),
            f"Rule {rule.title} {'disabled' if rule.enabled else 'enabled'}")

    def action_delete(self) -> None:
        overview = self.selected()
        if overview is None or not self.writable():
            return
        rule = overview.rule

        def answered(yes: bool | None) -> None:
            if yes:
                self.write(lambda: alerting.delete_rule(self.app.options.db_path, rule.id),
                           f"Deleted rule {rule.title}")

        self.post_message(ShowDialog(Confirm(f"Delete the rule “{rule.title}”? Its history stays.",
                                             yes="Delete"), answered))

    def action_test(self) -> None:
        overview = self.selected()
        if overview is None or not self.writable():
            return
        rule = overview.rule
        if not rule.recipients:
            self.notify(f"Rule {rule.title} has no recipients to test", severity="warning")
            return
        to = ", ".join(rule.recipients)

        def answered(yes: bool | None) -> None:
            if yes:
                self.write(lambda: send_test(self.app.options.db_path, rule.title,
                                             now_ms=self.app.clock(), zone=self.app.display_tz,
                                             by=operator_name()),
                           f"Test message of {rule.title} queued for {to}: the writer sends "
                           "it now (see Outbox)")

        self.post_message(ShowDialog(Confirm(f"Send the message of “{rule.title}” to {to} now, "
                                             "marked as a test?", yes="Send", title="Test"),
                                     answered))

    def action_silence(self) -> None:
        overview = self.selected()
        if overview is None or not self.writable():
            return
        rule = overview.rule

        def chosen(choice: SilenceChoice | None) -> None:
            if choice is not None:
                self.silence({"rule_id": rule.id}, choice, rule.title)

        self.post_message(ShowDialog(SilenceDialog({"rule": f"{rule.title}, every account"}),
                                     chosen))


# Silences -------------------------------------------------------------------------------------

SILENCE_COLUMNS = (
    Col("until", "Until"),
    Col("rule", "Rule"),
    Col("account", "Account"),
    Col("area", "Area"),
    Col("comment", "Comment"),
    Col("by", "By", drop=1),
    Col("since", "Since", drop=2),
)


@dataclass(frozen=True)
class SilencesSnapshot:
    now_ms: int
    silences: tuple[Silence, ...]
    titles: tuple[tuple[int, str], ...]
    names: tuple[tuple[tuple[str, str], str], ...]


class SilencesPane(AlertWrites, DataPane):
    BINDING_GROUP_TITLE = "Silences"

    BINDINGS = [Binding("d,delete", "end", "End silence")]

    def __init__(self) -> None:
        super().__init__(id="silences-pane")
        self._silences: dict[str, Silence] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="silences-title", classes="pane-title")
        yield LiveTable(SILENCE_COLUMNS, id="silences")

    def gather(self, data: ConsoleData, now_ms: int) -> SilencesSnapshot:
        alerts = AlertData(data.path)
        return SilencesSnapshot(now_ms, tuple(alerts.silences(now_ms)),
                                tuple((r.id, r.title) for r in alerts.rules()),
                                tuple(names_of(data).items()))

    def show(self, snapshot: SilencesSnapshot) -> None:
        titles, names, tz = dict(snapshot.titles), dict(snapshot.names), self.app.display_tz
        self._silences = {str(s.id): s for s in snapshot.silences}
        table = self.query_one("#silences", LiveTable)
        table.set_rows((key, (
            Text(recent_time(s.until_ms, snapshot.now_ms, tz), style="bold"),
            titles.get(s.rule_id, "(deleted rule)") if s.rule_id is not None else "every rule",
            f"{s.kind} {subject_name(s.kind, s.account, names)}" if s.account
            else f"every {s.kind}" if s.kind else "every account",
            alert_areas.AREAS[s.area].label if s.area in alert_areas.AREAS else s.area or DASH,
            s.comment or DASH, s.created_by or DASH,
            recent_time(s.created_ms, snapshot.now_ms, tz),
        )) for key, s in self._silences.items())
        table.display = bool(self._silences)
        self.query_one("#silences-title", Static).update(
            f"{len(self._silences):,} {'silence' if len(self._silences) == 1 else 'silences'} "
            "in force · d ends one" if self._silences
            else "No silence in force · s on a firing alert or a rule silences it")

    def selected_alert(self) -> None:
        return None

    def action_end(self) -> None:
        silence = self._silences.get(self.query_one("#silences", LiveTable).highlighted_key
                                     or "")
        if silence is None or not self.writable():
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.write(lambda: alerting.end_silence(
                    self.app.options.db_path, silence.id, now_ms=self.app.clock(),
                    by=operator_name()), "Silence ended: its alerts notify again")

        self.post_message(ShowDialog(Confirm("End this silence now? Alerts it muted notify again.",
                                             yes="End it"), answered))


# History --------------------------------------------------------------------------------------

HISTORY_COLUMNS = (
    Col("time", "Time"),
    Col("event", "Event"),
    Col("rule", "Rule"),
    Col("account", "Account"),
    Col("value", "Value", "right"),  # whole at any width: the detail may be shortened
    Col("by", "To or by", drop=1),
    Col("detail", "Detail", fill=True),
)


@dataclass(frozen=True)
class HistorySnapshot:
    now_ms: int
    search: str
    group: str
    total: int
    rows: tuple[HistoryRow, ...]
    names: tuple[tuple[tuple[str, str], str], ...]


class HistoryPane(DataPane):
    """Every firing, clearing, delivery, penalty and human action, newest first: `/` searches,
    `f` picks a kind of event, `e` exports what matches."""

    BINDING_GROUP_TITLE = "Alert history"
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("f", "next_group", "Events"),
        Binding("e", "export", "Export"),
    ]

    def __init__(self) -> None:
        super().__init__(id="history-pane")
        self.search = ""  # read by gather on the worker thread: plain attributes
        self.group = "all events"

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pane-bar"):
            yield FilterInput("/ search", id="history-search")
            yield Static(id="history-count")
        yield LiveTable(HISTORY_COLUMNS, id="history")

    def gather(self, data: ConsoleData, now_ms: int) -> HistorySnapshot:
        alerts, events = AlertData(data.path), EVENT_GROUPS[self.group]
        return HistorySnapshot(
            now_ms, self.search, self.group,
            alerts.history_count(search=self.search, events=events, at_most=HISTORY_COUNTED),
            tuple(alerts.history(search=self.search, events=events, limit=HISTORY_PAGE)),
            tuple(names_of(data).items()))

    def show(self, snapshot: HistorySnapshot) -> None:
        names, tz = dict(snapshot.names), self.app.display_tz
        table = self.query_one("#history", LiveTable)
        table.set_rows((str(h.id), (
            recent_time(h.ts_ms, snapshot.now_ms, tz),
            Text(h.event, style=EVENT_STYLE.get(h.event, "")),
            h.rule_title or DASH,
            subject_name(h.kind, h.account, names) if h.kind else DASH,
            area_value(h.area, h.value),
            h.recipient or h.actor or DASH,
            h.detail or DASH,
        )) for h in snapshot.rows)
        shown = len(snapshot.rows)
        total = (f"{HISTORY_COUNTED:,}+" if snapshot.total > HISTORY_COUNTED
                 else f"{snapshot.total:,}")
        more = f", newest {shown:,}" if shown < snapshot.total else ""
        self.query_one("#history-count", Static).update(
            f"{snapshot.group} · {total}{more} · f events · e export")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.search = event.value.strip()
        self.refresh_now()

    def action_search(self) -> None:
        self.query_one("#history-search", FilterInput).focus()

    def action_next_group(self) -> None:
        groups = list(EVENT_GROUPS)
        self.group = groups[(groups.index(self.group) + 1) % len(groups)]
        self.refresh_now()

    def action_export(self) -> None:
        search, events = self.search, EVENT_GROUPS[self.group]
        stamp = datetime.fromtimestamp(self.app.clock() / 1000, UTC).strftime("%Y%m%d-%H%M%S")
        path = self.app.options.db_path
        described = self.group + (f" matching “{search}”" if search else "")

        def export(target: Path, _scope: Scope) -> int:
            rows = AlertData(path).history(search=search, events=events, limit=None)
            names = names_of(self.app.data)
            write_table(target, EXPORT_HISTORY, [
                (iso_utc(h.ts_ms, "seconds"), h.event, h.rule_title, h.kind, h.account,
                 subject_name(h.kind, h.account, names) if h.kind else "", h.area, h.level,
                 h.value, h.threshold, h.detail, h.recipient, h.actor) for h in rows])
            return len(rows)

        def exported(result: ExportResult | None) -> None:
            if result is not None:
                self.notify(f"Exported {result.rows:,} history rows to {result.path}")

        self.post_message(ShowDialog(ExportScreen(
            "Export the alert history",
            str(export_path(self.app.options.exports, "alert-history", stamp)), export,
            selection_label=None, all_label=f"Every row: {described}"), exported))


# Penalties ------------------------------------------------------------------------------------

PENALTY_COLUMNS = (
    Col("account", "Account"),
    Col("status", "Status"),
    Col("from", "From"),
    Col("until", "Until"),
    Col("rule", "Rule"),
    Col("detail", "Detail", drop=1),
)


def penalty_status(p: PenaltyRow, now_ms: int) -> Text:
    if p.status == "active":
        return Text(f"● disabled, {penalty_left(p.until_ms, now_ms)}", style="bold red")
    if p.status == "releasing":
        return Text("↻ re-enabling", style="yellow")
    return Text("✓ back", style="green")


def penalty_rows(penalties: Iterable[PenaltyRow], names: Mapping[tuple[str, str], str],
                 now_ms: int, tz: tzinfo) -> Iterable[tuple[str, tuple]]:
    for p in penalties:
        yield str(p.id), (
            f"{p.kind} {subject_name(p.kind, p.account, names)}", penalty_status(p, now_ms),
            recent_time(p.start_ms, now_ms, tz),
            recent_time(p.ended_ms or p.until_ms, now_ms, tz),
            p.rule_title or DASH, p.detail or DASH,
        )


@dataclass(frozen=True)
class PenaltiesSnapshot:
    now_ms: int
    penalties: tuple[PenaltyRow, ...]  # standing first, then the latest ended
    names: tuple[tuple[tuple[str, str], str], ...]


class PenaltiesPane(DataPane):
    """Who is disabled by an alert and until when; then the penalties that ended."""

    def __init__(self) -> None:
        super().__init__(id="penalties-pane")

    def compose(self) -> ComposeResult:
        yield Static(id="penalties-title", classes="pane-title")
        yield LiveTable(PENALTY_COLUMNS, id="penalties")

    def gather(self, data: ConsoleData, now_ms: int) -> PenaltiesSnapshot:
        alerts = AlertData(data.path)
        standing = alerts.penalties(now_ms)
        ended = [p for p in alerts.penalty_history(100) if p.status == "ended"]
        return PenaltiesSnapshot(now_ms, (*standing, *ended), tuple(names_of(data).items()))

    def show(self, snapshot: PenaltiesSnapshot) -> None:
        table = self.query_one("#penalties", LiveTable)
        table.set_rows(penalty_rows(snapshot.penalties, dict(snapshot.names), snapshot.now_ms,
                                    self.app.display_tz))
        table.display = bool(snapshot.penalties)
        standing = sum(p.status != "ended" for p in snapshot.penalties)
        self.query_one("#penalties-title", Static).update(
            f"{standing:,} in penalty now · {len(snapshot.penalties) - standing:,} ended "
            "(the latest 100)" if snapshot.penalties
            else "No penalty yet: a rule with a penalty disables its account while it fires")


# Outbox ---------------------------------------------------------------------------------------

OUTBOX_COLUMNS = (
    Col("queued", "Queued"),
    Col("status", "Status"),
    Col("to", "To"),
    Col("tries", "Tries", "right", drop=2),
    Col("error", "Last error", drop=1),
    Col("subject", "Subject", fill=True),  # shortened at a word, never cut inside one
)


def outbox_status(m: OutboxRow, now_ms: int, tz: tzinfo) -> Text:
    if m.status == "sent":
        return Text(f"✓ sent {recent_time(m.sent_ms, now_ms, tz)}", style="green")
    if m.status == "failed":
        return Text("✖ failed", style="bold red")
    if m.attempts:
        return Text(f"↻ retry {recent_time(m.next_attempt_ms, now_ms, tz)}", style="yellow")
    return Text("… waiting", style="yellow")


@dataclass(frozen=True)
class OutboxSnapshot:
    now_ms: int
    counts: tuple[tuple[str, int], ...]
    messages: tuple[OutboxRow, ...]


class OutboxPane(DataPane):
    """Every message the alerts sent or will send, newest first; Enter reads one whole."""

    def __init__(self) -> None:
        super().__init__(id="outbox-pane")
        self._messages: dict[str, OutboxRow] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="outbox-title", classes="pane-title")
        yield LiveTable(OUTBOX_COLUMNS, id="outbox")

    def gather(self, data: ConsoleData, now_ms: int) -> OutboxSnapshot:
        alerts = AlertData(data.path)
        return OutboxSnapshot(now_ms, tuple(sorted(alerts.outbox_counts().items())),
                              tuple(alerts.outbox(limit=200)))

    def show(self, snapshot: OutboxSnapshot) -> None:
        tz = self.app.display_tz
        self._messages = {str(m.id): m for m in snapshot.messages}
        table = self.query_one("#outbox", LiveTable)
        table.set_rows((key, (
            recent_time(m.created_ms, snapshot.now_ms, tz), outbox_status(m, snapshot.now_ms, tz),
            m.recipient, f"{m.attempts:,}", m.last_error or DASH, m.subject,
        )) for key, m in self._messages.items())
        table.display = bool(self._messages)
        counts = dict(snapshot.counts)
        self.query_one("#outbox-title", Static).update(
            f"{counts.get('pending', 0):,} waiting · {counts.get('sent', 0):,} sent · "
            f"{counts.get('failed', 0):,} failed · Enter reads one" if counts
            else "No message yet: alerts with recipients send here")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        from screens.alert_message import MessageModal

        message = self._messages.get(event.row_key.value or "")
        if message is not None:
            self.post_message(ShowDialog(MessageModal(message, self.app.display_tz)))


def history_lines(rows: Sequence[HistoryRow], now_ms: int, tz: tzinfo) -> Text:
    """A few history rows as lines (an account's Alerts tab)."""
    lines = [Text.assemble((recent_time(h.ts_ms, now_ms, tz), "dim"), "  ",
                           (f"{h.event:<11}", EVENT_STYLE.get(h.event, "")),
                           plain(f"{h.rule_title or DASH}: {h.detail or h.recipient}"))
             for h in rows]
    return Text("\n").join(lines)
