"""Alerts: the alert engine's firing alerts, rules, silences, history, penalties and outbox,
and the console's own checks with the control requests consoles made, a tab each.

The panes are in screens.alert_panes; the checks and requests helpers here serve an account's
Alerts tab too.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from screens.alert_panes import (
    FiringPane,
    HistoryPane,
    OutboxPane,
    PenaltiesPane,
    RulesPane,
    SilencesPane,
)
from screens.base import DataScreen
from screens.chrome import NocHeader
from screens.formats import DASH, SEVERITY_MARK, recent_time
from screens.navigation import OpenAccount, ShowMode
from screens.panes import DataPane, PaneTabs
from screens.safe_text import plain
from screens.tables import LiveTable
from store.views import Check, ConsoleData, ControlRow, FeedView
from widgets.key_bar import KeyBar
from widgets.live_table import Col

STATUS_MARK = {  # control request status -> (mark, style): readable without colour
    "pending": ("…", "yellow"),
    "sent": ("→", "yellow"),
    "acked": ("✓", "green"),
    "failed": ("✖", "bold red"),
}
FEED_SUBJECTS = {"": "feed", "gaps": "feed gaps", "quarantine": "feed quarantine"}
SEVERITY_WIDTH, SUBJECT_WIDTH = 10, 22


def subject_label(subject: tuple[str, str], names: Mapping[tuple[str, str], str]) -> str:
    kind, account = subject
    if kind == "feed":
        return FEED_SUBJECTS.get(account, f"feed {account}")
    return f"{kind} {names.get(subject, account)}"


def check_grid(severity: Text | str, subject: str, text: str) -> Table:
    """One line of the checks list (the header too, so that they align); the text wraps in its
    own column. The subject and text may hold the feed's text: never markup."""
    row = Table.grid(padding=(0, 1), expand=True)
    row.add_column(width=SEVERITY_WIDTH, no_wrap=True)
    row.add_column(width=SUBJECT_WIDTH, no_wrap=True, overflow="ellipsis")
    row.add_column(ratio=1)
    row.add_row(severity, plain(subject), plain(text))
    return row


def check_prompt(check: Check, names: Mapping[tuple[str, str], str]) -> Table:
    """`‼ critical  carrier Ember Link  2,963 consecutive failures`."""
    mark, style = SEVERITY_MARK[check.severity]
    subject = subject_label(check.subject, names)
    # The subject has a column of its own: the text need not repeat it.
    return check_grid(Text(f"{mark} {check.severity}", style=style), subject,
                      check.text.removeprefix(f"{subject}: "))


def check_lines(checks: Iterable[Check]) -> Text:
    """Checks as marked lines (for a page about one account: the subject goes without saying)."""
    lines = [Text.assemble((f"{mark} {c.severity}", style), "  ", plain(c.text))
             for c in checks for mark, style in [SEVERITY_MARK[c.severity]]]
    return Text("\n").join(lines) or Text("✓ nothing needs attention", style="green")


REQUEST_COLUMNS = (  # `drop`: the first to go when narrow is who asked
    Col("when", "When"),
    Col("action", "Action"),
    Col("subject", "Account or call"),
    Col("until", "Until", drop=1),
    Col("status", "Status"),
    Col("reason", "Reason", drop=2),
    Col("by", "Requested by", drop=3),
)


def request_rows(requests: Iterable[ControlRow], now_ms: int,
                 tz: tzinfo) -> Iterable[tuple[str, tuple]]:
    """Control requests as LiveTable rows; the status says whether a penalty still stands, and
    why a request failed."""
    for r in requests:
        mark, style = STATUS_MARK.get(r.status, ("?", ""))
        status = f"{mark} {r.status}" + (" · in force" if r.penalty else "") + (
            f": {r.error}" if r.error else "")
        yield r.id, (
            recent_time(r.created_ms, now_ms, tz),
            Text(r.action, style="bold" if r.penalty else ""),
            f"call {r.call_id}" if r.call_id else f"{r.kind} {r.name}",
            recent_time(r.until_ms, now_ms, tz) if r.until_ms is not None else DASH,
            Text(status, style=style),
            r.reason or DASH,
            r.requested_by or DASH,
        )


@dataclass(frozen=True)
class ChecksSnapshot:
    now_ms: int
    checks: tuple[Check, ...]
    names: tuple[tuple[tuple[str, str], str], ...]
    requests: tuple[ControlRow, ...]


class ChecksPane(DataPane):
    """Every open check, the alert engine's and the console's own (Enter opens the account, or
    the quarantine for feed checks), and the control requests with the penalties they impose."""

    def __init__(self) -> None:
        super().__init__(id="checks-pane")
        self._subjects: dict[str, tuple[str, str]] = {}
        self._checks_shown: tuple = ()

    def compose(self) -> ComposeResult:
        yield Static("Open checks", id="checks-title", classes="pane-title")
        # "Level", the word of every alert list for a severity.
        yield Static(check_grid("Level", "Subject", "Check"), id="checks-head")
        yield OptionList(id="checks")
        yield Static("Control requests and penalties", id="requests-title",
                     classes="pane-title")
        yield LiveTable(REQUEST_COLUMNS, id="requests")

    def gather(self, data: ConsoleData, now_ms: int) -> ChecksSnapshot:
        return ChecksSnapshot(
            now_ms=now_ms, checks=data.dashboard(now_ms).checks,
            names=tuple(((kind, id_), name) for kind, id_, name in data.account_names()),
            requests=tuple(data.control_requests(now_ms)),
        )

    def show(self, snapshot: ChecksSnapshot) -> None:
        self._show_checks(snapshot.checks, dict(snapshot.names))
        requests = self.query_one("#requests", LiveTable)
        requests.set_rows(request_rows(snapshot.requests, snapshot.now_ms, self.app.display_tz))
        requests.display = bool(snapshot.requests)
        count = len(snapshot.requests)
        self.query_one("#requests-title", Static).update(
            f"Control requests and penalties · {count:,} in the last 24 h or still standing"
            if count else "Control requests and penalties · none in the last 24 h")

    def _show_checks(self, checks: Sequence[Check], names: Mapping[tuple[str, str], str]) -> None:
        options = self.query_one("#checks", OptionList)
        if (checks, names) != self._checks_shown:
            self._checks_shown = (checks, names)
            # Keyed by subject and place among the subject's checks (the text holds counts that
            # move), so that the highlight stays on its check when others come and go.
            keyed, seen = {}, {}
            for check in checks:
                n = seen[check.subject] = seen.get(check.subject, -1) + 1
                keyed[f"{check.subject[0]}:{check.subject[1]}:{n}"] = check
            self._subjects = {key: check.subject for key, check in keyed.items()}
            was = options.highlighted_option.id if options.highlighted_option else None
            options.clear_options()
            options.add_options(Option(check_prompt(check, names), id=key)
                                for key, check in keyed.items())
            if keyed:
                options.highlighted = list(keyed).index(was) if was in keyed else 0
        self.query_one("#checks-title", Static).update(
            f"Open checks · {len(checks):,} · Enter opens one" if checks
            else "Open checks · ✓ nothing needs attention")
        options.display = self.query_one("#checks-head").display = bool(checks)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        kind, account = self._subjects.get(event.option.id or "", ("", ""))
        if kind in ("customer", "carrier"):
            self.post_message(OpenAccount(kind, account))
        elif kind == "feed":
            self.post_message(ShowMode("quarantine"))


@dataclass(frozen=True)
class AlertsSnapshot:
    now_ms: int
    feed: FeedView
    tab: str
    pane: Hashable


TABS = {"firing": "Firing", "rules": "Rules", "silences": "Silences", "history": "History",
        "penalties": "Penalties", "outbox": "Outbox", "checks": "Checks"}


class AlertsScreen(PaneTabs, DataScreen):
    """The alerts' tabs; `<` `>` (or ctrl+PgUp/PgDn, or ←/→ on the tab bar) switch them."""

    TITLE = "Alerts"
    PANE_PREFIX = "tab-"  # the panes' own lists use the bare names
    FOCUS = "LiveTable, OptionList"
    CSS_PATH = [*DataScreen.CSS_PATH, "alerts.tcss"]
    BINDINGS = [
        Binding("greater_than_sign,ctrl+pagedown", "switch_tab(1)", "Next tab", key_display=">"),
        Binding("less_than_sign,ctrl+pageup", "switch_tab(-1)", "Previous tab",
                key_display="<", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.panes: dict[str, DataPane] = {
            "firing": FiringPane(), "rules": RulesPane(), "silences": SilencesPane(),
            "history": HistoryPane(), "penalties": PenaltiesPane(), "outbox": OutboxPane(),
            "checks": ChecksPane(),
        }
        self.active = "firing"  # read by gather on the worker thread: kept in a plain attribute

    def compose(self) -> ComposeResult:
        yield NocHeader("Alerts")
        with TabbedContent(initial=f"tab-{self.active}"):
            for tab, label in TABS.items():
                with TabPane(label, id=f"tab-{tab}"):
                    yield self.panes[tab]
        yield KeyBar()

    def gather(self, data: ConsoleData, now_ms: int) -> AlertsSnapshot:
        tab = self.active
        return AlertsSnapshot(now_ms, data.feed(), tab, self.panes[tab].gather(data, now_ms))

    def show(self, snapshot: AlertsSnapshot) -> None:
        self.query_one(NocHeader).show_feed(snapshot.feed, snapshot.now_ms, role=self.app.role,
                                            read_only=self.app.read_only, tz=self.tz)
        if snapshot.tab == self.active:
            self.panes[snapshot.tab].show(snapshot.pane)
