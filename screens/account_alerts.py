"""One account's Alerts tab (a customer's or a carrier's): its open checks, the alert rules that
watch it with their state (`a` acknowledges, `s` silences), its penalty, the control requests
that concern it, and its latest alert history. The same state as the dashboard's checklist and
the Alerts screen, read from the same tables."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from screens.alert_panes import (
    AlertWrites,
    alert_status,
    alert_value,
    history_lines,
    level_cell,
    penalty_status,
)
from screens.alerts import REQUEST_COLUMNS, check_lines, request_rows
from screens.formats import DASH, penalty_until, recent_time
from screens.panes import DataPane
from screens.safe_text import plain
from screens.tables import LiveTable
from store.alerting import AlertData, HistoryRow, PenaltyRow, StateRow
from store.views import Check, ConsoleData, ControlRow
from widgets.live_table import Col

HISTORY_LINES = 8
RULE_COLUMNS = (
    Col("status", "Status"),
    Col("rule", "Rule"),
    Col("value", "Value", "right"),
    Col("since", "Since"),
    Col("level", "Level", drop=1),
)


@dataclass(frozen=True)
class AccountAlertsSnapshot:
    now_ms: int
    checks: tuple[Check, ...]
    alerts: tuple[StateRow, ...]
    penalties: tuple[PenaltyRow, ...]
    requests: tuple[ControlRow, ...]
    history: tuple[HistoryRow, ...]


class AccountAlertsPane(AlertWrites, DataPane):
    BINDING_GROUP_TITLE = "Alerts of this account"
    BINDINGS = [
        ("a", "acknowledge", "Acknowledge"),
        ("s", "silence", "Silence"),
    ]

    def __init__(self, kind: str, account: str) -> None:
        super().__init__(id="alerts-pane")
        self.kind = kind
        self.account = account
        self._alerts: dict[str, StateRow] = {}

    def for_account(self, account: str) -> None:
        super().for_account(account)
        self._alerts = {}

    def compose(self) -> ComposeResult:
        yield Static("Open checks", classes="section-title", id="account-checks-title")
        yield Static(id="account-checks")
        yield Static(id="account-penalty")
        yield Static("Alert rules watching it", classes="section-title",
                     id="account-rules-title")
        yield LiveTable(RULE_COLUMNS, id="account-rules")
        yield Static("Control requests", classes="section-title", id="account-requests-title")
        yield LiveTable(REQUEST_COLUMNS, id="account-requests")
        yield Static("Alert history", classes="section-title", id="account-history-title")
        yield Static(id="account-history")

    def gather(self, data: ConsoleData, now_ms: int) -> AccountAlertsSnapshot:
        subject = (self.kind, self.account)
        alerts = AlertData(data.path)
        return AccountAlertsSnapshot(
            now_ms,
            tuple(c for c in data.dashboard(now_ms).checks if c.subject == subject),
            tuple(alerts.states(kind=self.kind, account=self.account)),
            tuple(p for p in alerts.penalties(now_ms)
                  if (p.kind, p.account) == subject),
            tuple(r for r in data.control_requests(now_ms)
                  if r.kind == self.kind and r.account == self.account),
            tuple(alerts.history(kind=self.kind, account=self.account, limit=HISTORY_LINES)),
        )

    def show(self, snapshot: AccountAlertsSnapshot) -> None:
        tz, now_ms = self.app.display_tz, snapshot.now_ms
        self.query_one("#account-checks", Static).update(check_lines(snapshot.checks))
        penalty = self.query_one("#account-penalty", Static)
        penalty.display = bool(snapshot.penalties)
        if snapshot.penalties:
            p = snapshot.penalties[-1]  # the one that ends last
            penalty.update(Text.assemble(
                penalty_status(p, now_ms), f" · in penalty {penalty_until(p.until_ms, now_ms, tz)}"
                " · rule ", plain(p.rule_title or DASH)))
        self._show_rules(snapshot)
        requests = self.query_one("#account-requests", LiveTable)
        requests.set_rows(request_rows(snapshot.requests, now_ms, tz))
        requests.display = bool(snapshot.requests)
        self.query_one("#account-requests-title", Static).update(
            "Control requests · last 24 h and any still standing" if snapshot.requests
            else "Control requests · none in the last 24 h")
        self.query_one("#account-history", Static).update(
            history_lines(snapshot.history, now_ms, tz) if snapshot.history
            else Text("Nothing yet.", style="dim"))

    def _show_rules(self, snapshot: AccountAlertsSnapshot) -> None:
        tz = self.app.display_tz
        self._alerts = {str(a.rule_id): a for a in snapshot.alerts}
        table = self.query_one("#account-rules", LiveTable)
        table.set_rows((key, (
            alert_status(a), Text(a.title, style="bold"), alert_value(a),
            recent_time(a.fired_ms if a.state == "firing" else a.since_ms, snapshot.now_ms, tz),
            level_cell(a.level),
        )) for key, a in self._alerts.items())
        table.display = bool(self._alerts)
        firing = sum(a.state == "firing" for a in snapshot.alerts)
        self.query_one("#account-rules-title", Static).update(
            f"Alert rules watching it · {len(self._alerts):,} · {firing:,} firing · "
            "a acknowledge · s silence" if self._alerts
            else f"Alert rules watching it · none (4 → Rules adds one for this {self.kind})")

    def selected_alert(self) -> StateRow | None:
        return self._alerts.get(self.query_one("#account-rules", LiveTable).highlighted_key or "")
