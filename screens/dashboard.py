"""The dashboard: the whole network at a glance, and the problems that need a person now."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from console.feed.printable import printable
from screens.base import DataScreen, live_as_of
from screens.chrome import NocHeader
from screens.formats import (
    NAME_CHARS,
    SEVERITY_MARK,
    as_of,
    cut_names,
    money,
    name_of,
    names_of,
)
from screens.navigation import OpenAccount, ShowMode
from screens.safe_text import plain
from screens.summary import SummaryPane
from store.views import ConsoleData, DashboardView, FeedView, SeriesView, SummaryRow
from widgets import LOADING
from widgets.gauge import Gauge
from widgets.key_bar import KeyBar
from widgets.series_plot import SeriesPlot

WIDE = 120  # columns from which the dashboard has the room for two graphs side by side
GRAPHS = {  # key in store.views.SERIES -> (title, unit)
    "channels": ("Live channels", ""),
    "asr": ("ASR", "%"),
    "acd": ("ACD", "s"),
    "pdd": ("PDD", "s"),
    "dtmf_pct": ("DTMF", "%"),
}


@dataclass(frozen=True)
class DashboardSnapshot:
    now_ms: int
    feed: FeedView
    view: DashboardView
    series: SeriesView
    summary: tuple[SummaryRow, ...]
    currency: str | None = None
    names: tuple[tuple[tuple[str, str], str], ...] = ()


class DashboardScreen(DataScreen):
    """Feed, channels against limits, checklist, balances, graphs and the 24 h summary."""

    TITLE = "Dashboard"
    CSS_PATH = [*DataScreen.CSS_PATH, "summary.tcss", "dashboard.tcss"]
    BINDINGS = [
        Binding("g", "next_graph", "Graph"),
        Binding("p", "per_carrier", "Per carrier"),
        Binding("enter", "open_selected", "Open"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.graph = "channels"
        self.per_carrier = False
        self.summary_mode = "live"

    def compose(self) -> ComposeResult:
        yield NocHeader("Dashboard")
        with Horizontal(id="strip"):
            yield Gauge("Channels", id="channels")
            yield Static("", id="cps")
        with Horizontal(id="middle"):
            with Vertical(id="side"):
                yield Static("Checklist", classes="section-title")
                yield OptionList(id="checks")
                yield Static("Balances", classes="section-title")
                yield OptionList(id="balances")
            yield SeriesPlot(id="graph")
            yield SeriesPlot(id="graph-next")
        yield SummaryPane("network-summary", id="summary")
        yield KeyBar()

    # Reading and showing --------------------------------------------------------------

    def gather(self, data: ConsoleData, now_ms: int) -> DashboardSnapshot:
        view = data.dashboard(now_ms)
        per = "carrier" if self.per_carrier else "total"
        return DashboardSnapshot(
            now_ms=now_ms,
            feed=view.feed,
            view=view,
            series=data.series(None, None, "hour", now_ms, per=per),
            summary=tuple(data.summary("customer", None, self.summary_mode, now_ms)),
            currency=data.currency(),
            names=tuple(names_of(data).items()),
        )

    def show(self, snapshot: DashboardSnapshot) -> None:
        view = snapshot.view
        self.query_one(NocHeader).show_feed(
            snapshot.feed, snapshot.now_ms, role=self.app.role, read_only=self.app.read_only,
            tz=self.tz,
        )
        # While the writer catches up, the live figures are those of the backlog's moment; once
        # the writer is gone, those it last saw, said so.
        live = snapshot.feed.caught_up_pct is None
        as_of_ms = live_as_of(snapshot.feed, snapshot.now_ms, self.app.role)
        when = "" if as_of_ms is None else f" {as_of(as_of_ms, snapshot.now_ms, self.tz)}"
        self.query_one("#channels", Gauge).update_value(
            view.channels if live else None, view.channel_limit, f"Channels{when} ",
            stale=bool(when))
        cps = Text(f"CPS {view.cps:,}{when}", style="dim" if when else "")
        self.query_one("#cps", Static).update(cps if live else f"CPS {LOADING}")
        self._show_checks(view)
        self._show_balances(view)
        self._show_graph(snapshot.series, dict(snapshot.names))
        self.query_one(SummaryPane).show_rows(snapshot.summary, snapshot.currency, when.strip())

    def _show_checks(self, view: DashboardView) -> None:
        checks = self.query_one("#checks", OptionList)
        options = [
            Option(Text.assemble(SEVERITY_MARK[c.severity], " ",
                                 plain(c.text, "dim" if c.muted else "")),
                   id=f"{c.subject[0]}:{c.subject[1]}:{n}")
            for n, c in enumerate(view.checks)
        ] or [Option(Text("✓ nothing needs attention", style="green"), disabled=True)]
        _replace_options(checks, options)

    def _show_balances(self, view: DashboardView) -> None:
        rows = []
        # Amounts right-aligned to one width, so that their decimal points stand in a column.
        amounts = [money(b.balance, b.currency) for b in view.balances]
        width = max(map(len, amounts), default=0)
        names = cut_names([printable(b.name) for b in view.balances])
        for b, name, amount in zip(view.balances, names, amounts, strict=True):
            line = Text.assemble(f"{name:<{NAME_CHARS}} ",
                                 plain(f"{amount:>{width}}", "bold red" if b.low else ""))
            if b.low:
                line.append(" low", style="red")
            rows.append(Option(line, id=f"customer:{b.id}"))
        _replace_options(self.query_one("#balances", OptionList), rows)

    def _show_graph(self, series: SeriesView, names: dict[tuple[str, str], str]) -> None:
        graphs = list(GRAPHS)
        after = graphs[(graphs.index(self.graph) + 1) % len(graphs)]
        for plot, graph in (("#graph", self.graph), ("#graph-next", after)):
            title, unit = GRAPHS[graph]
            if self.per_carrier and graph != "channels":
                values = {printable(name_of(names, "carrier", carrier)): points
                          for carrier, points in series.per_account.get(graph, {}).items()}
                title += " per carrier"
            else:
                values = {"total": series.series[graph]}
            self.query_one(plot, SeriesPlot).set_series(
                series.times, values, title=f"{title} · last hour", unit=unit, tz=self.tz)

    def on_resize(self) -> None:
        """A wide terminal shows the next graph beside the chosen one."""
        self.query_one("#graph-next").display = self.size.width >= WIDE

    # Actions --------------------------------------------------------------------------

    def action_next_graph(self) -> None:
        names = list(GRAPHS)
        self.graph = names[(names.index(self.graph) + 1) % len(names)]
        self.refresh_now()

    def action_per_carrier(self) -> None:
        self.per_carrier = not self.per_carrier
        self.refresh_now()

    def on_summary_pane_mode_changed(self, event: SummaryPane.ModeChanged) -> None:
        self.summary_mode = event.mode
        self.refresh_now()

    def action_open_selected(self) -> None:
        """Open what the highlighted line of the checklist or balances is about."""
        focused = self.focused
        if isinstance(focused, OptionList) and focused.highlighted is not None:
            self._open(focused.get_option_at_index(focused.highlighted))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self._open(event.option)

    def _open(self, option: Option) -> None:
        kind, _, rest = (option.id or "").partition(":")
        account = rest.split(":")[0]
        if kind in ("customer", "carrier") and account:
            self.post_message(OpenAccount(kind, account))
        elif kind == "feed":
            self.post_message(ShowMode("quarantine"))


def _replace_options(option_list: OptionList, options: list[Option]) -> None:
    """Swap the options only when they changed, keeping the highlighted line where it was."""
    current = [(str(o.prompt), o.id) for o in option_list.options]
    if current == [(str(o.prompt), o.id) for o in options]:
        return
    highlighted = option_list.highlighted or 0
    option_list.clear_options()
    option_list.add_options(options)
    if options and not options[0].disabled:  # Enter acts on a line from the start
        option_list.highlighted = min(highlighted, len(options) - 1)
