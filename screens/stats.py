"""An account's graphs (or all accounts' of a kind) over an hour, a day, a week or a month,
and its final SIP codes; the series on screen can be exported."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from screens.formats import local_time, sip_code
from screens.panes import DataPane
from screens.tables import LiveTable
from store.metrics import LOST_CODE
from store.views import CodeCount, ConsoleData
from widgets.dialogs import ShowDialog
from widgets.export import ExportResult, ExportScreen
from widgets.export_files import ExportColumn, export_path, write_table
from widgets.live_table import Col
from widgets.series_plot import SeriesPlot

CODES = "codes"


@dataclass(frozen=True)
class Metric:
    key: str  # a series of store.views.SERIES, or CODES
    title: str
    short: str  # its name in the pane's bar
    unit: str = ""
    decimals: int = 0
    customers_only: bool = False
    sum_so_far: bool = False  # a sum of what ended: its newest bucket, not over, is partial


METRICS = (
    Metric("attempts", "Attempts", "Attempts", sum_so_far=True),
    Metric("channels", "Channels, peak", "Channels"),
    Metric("asr", "ASR", "ASR", "%", 1),
    Metric("acd", "ACD", "ACD", "s", 1),
    Metric("pdd", "PDD", "PDD", "s", 1),
    Metric("cps", "CPS, peak", "CPS"),
    Metric("dtmf_pct", "DTMF", "DTMF", "%", 1, customers_only=True),
    Metric(CODES, "SIP codes", "Codes"),
)
SEGMENTS = {  # store segment -> (key, its label, as a title)
    "hour": ("h", "hour", "last hour"),
    "day": ("d", "day", "last 24 h"),
    "week": ("w", "week", "last 7 days"),
    "month": ("o", "month", "last 30 days"),
}
SIP_PHRASES = {
    LOST_CODE: "no final reply (lost)",
    200: "OK", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    408: "Request Timeout", 480: "Temporarily Unavailable", 484: "Address Incomplete",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    500: "Server Internal Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 600: "Busy Everywhere", 603: "Decline",
}
BAR_CELLS = 20


@dataclass(frozen=True)
class StatsSnapshot:
    segment: str
    metric: Metric
    times: tuple[int, ...] = ()
    values: tuple[float | int | None, ...] = ()
    codes: tuple[CodeCount, ...] = ()


def share(share_pct: float) -> str:
    return "<0.1%" if 0 < share_pct < 0.05 else f"{share_pct:.1f}%"


def share_bar(share_pct: float) -> str:
    eighths = round(share_pct / 100 * BAR_CELLS * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")


class StatsPane(DataPane):
    """Graphs of one account (None: every account of the kind). The pane takes the focus
    itself, so its keys work whether it shows a graph or the codes."""

    BINDINGS = [
        Binding("h", "segment('hour')", "Hour", show=False),
        Binding("d", "segment('day')", "24 h", show=False),
        Binding("w", "segment('week')", "7 days", show=False),
        Binding("o", "segment('month')", "30 days", show=False),
        Binding("right_square_bracket,g", "metric(1)", "Next graph", key_display="]/g"),
        Binding("left_square_bracket", "metric(-1)", "Previous graph", show=False),
        Binding("x", "export", "Export CSV"),
    ]
    can_focus = True

    def __init__(self, kind: str, account: str | None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.kind = kind
        self.account = account
        self.metrics = [m for m in METRICS if kind == "customer" or not m.customers_only]
        self.segment = "hour"
        self.metric = self.metrics[0]
        self._snapshot: StatsSnapshot | None = None

    def for_account(self, account: str) -> None:
        super().for_account(account)
        self._snapshot = None

    def watch_has_focus(self, has_focus: bool) -> None:
        """Nothing in the pane is styled by its focus, so nothing is restyled when it changes:
        Textual restyles the pane and all it holds each time a tab key gives or takes its focus
        (in a profile of bench/keys.py, with the other focus changes, 6 % of the event loop)."""

    def compose(self) -> ComposeResult:
        yield Static(id="stats-bar")
        plot = SeriesPlot()
        plot.can_focus = False  # the pane holds the focus (the plot is hidden for the codes)
        yield plot
        counted = "Calls" if self.kind == "customer" else "Attempts"
        codes = LiveTable([Col("code", "Code"), Col("meaning", "Meaning", drop=1),
                           Col("count", counted, "right"), Col("share", "Share", "right"),
                           Col("bar", "", drop=2)], id="stats-codes")
        codes.can_focus = codes.show_cursor = False
        yield codes

    # Reading and showing --------------------------------------------------------------

    def gather(self, data: ConsoleData, now_ms: int) -> StatsSnapshot:
        segment, metric = self.segment, self.metric
        if metric.key == CODES:
            codes = data.codes(self.kind, self.account, segment, now_ms)
            return StatsSnapshot(segment, metric, codes=tuple(codes))
        series = data.series(self.kind, self.account, segment, now_ms)
        return StatsSnapshot(segment, metric, series.times, series.series[metric.key])

    def show(self, snapshot: StatsSnapshot) -> None:
        self._snapshot = snapshot
        metric = snapshot.metric
        self.set_class(metric.key == CODES, "-codes")
        if metric.key == CODES:
            self.query_one(LiveTable).set_rows(
                (str(c.code), (sip_code(c.code),
                               SIP_PHRASES.get(c.code, ""), f"{c.count:,}",
                               share(c.share_pct), share_bar(c.share_pct)))
                for c in snapshot.codes)
        else:
            unit = f" ({metric.unit})" if metric.unit else ""  # before the period, not after
            title = f"{metric.title}{unit} · {SEGMENTS[snapshot.segment][2]}"
            self.query_one(SeriesPlot).set_series(snapshot.times, {"total": snapshot.values},
                                                  title=title, tz=self.app.display_tz,
                                                  open_last=metric.sum_so_far)

    def on_resize(self) -> None:
        self._show_bar()

    def _show_bar(self) -> None:
        """`hour day week month │ [ Attempts Channels ASR … Codes ]`: the chosen ones lit, the
        keys underlined; only the chosen graph between ◂ ▸ where the whole list does not fit."""
        lit = "reverse bold"
        bar = Text(no_wrap=True, overflow="ellipsis")
        for segment, (key, label, _) in SEGMENTS.items():
            item = Text(f" {label} ", style=lit if segment == self.segment else "")
            at = label.index(key) + 1
            item.stylize("underline bold", at, at + 1)
            bar.append_text(item)
        bar.append("  │  [", style="dim")
        names = Text()
        for metric in self.metrics:
            names.append(f" {metric.short} ", style=lit if metric is self.metric else "")
        if bar.cell_len + names.cell_len + 2 > self.size.width - 2:
            position = f" {self.metrics.index(self.metric) + 1}/{len(self.metrics)}"
            names = Text.assemble(" ◂", (f" {self.metric.short} ", lit), "▸", (position, "dim"))
        bar.append_text(names)
        bar.append(" ]", style="dim")
        self.query_one("#stats-bar", Static).update(bar)

    # Actions --------------------------------------------------------------------------

    def action_segment(self, segment: str) -> None:
        self.segment = segment
        self._changed()

    def action_metric(self, step: int) -> None:
        index = self.metrics.index(self.metric)
        self.metric = self.metrics[(index + step) % len(self.metrics)]
        self._changed()

    def _changed(self) -> None:
        self._show_bar()
        self.refresh_now()

    def action_export(self) -> None:
        snapshot = self._snapshot
        if snapshot is None:
            self.notify("Nothing to export yet", severity="warning")
            return
        columns, rows = self._table(snapshot)
        metric = snapshot.metric
        stamp = local_time(self.app.clock(), UTC, "%Y%m%d-%H%M%S")
        who = self.account or f"all-{self.kind}s"
        path = str(export_path(self.app.options.exports, who, metric.key, snapshot.segment,
                               stamp))

        def export(target, _scope) -> int:
            write_table(target, columns, rows)
            return len(rows)

        self.post_message(ShowDialog(
            ExportScreen(f"Export {metric.title}, {SEGMENTS[snapshot.segment][2]}", path, export,
                         selection_label=None, all_label=f"What the graph shows ({len(rows)} "
                                                         "rows)"),
            self._exported,
        ))

    def _table(self, snapshot: StatsSnapshot) -> tuple[list[ExportColumn], list[tuple]]:
        metric = snapshot.metric
        if metric.key == CODES:
            columns = [ExportColumn("Code", 0), ExportColumn("Meaning"),
                       ExportColumn("Count", 0), ExportColumn("Share", 1, "%")]
            return columns, [(c.code, SIP_PHRASES.get(c.code, ""), c.count,
                              round(c.share_pct, 1)) for c in snapshot.codes]
        tz = self.app.display_tz
        label = f"{metric.title} ({metric.unit})" if metric.unit else metric.title
        columns = [ExportColumn(f"Time ({local_time(snapshot.times[0] * 1000, tz, '%Z')})"),
                   ExportColumn(label, metric.decimals, metric.unit)]
        return columns, [
            (local_time(time * 1000, tz, "%Y-%m-%d %H:%M"),
             None if value is None else round(value, metric.decimals))
            for time, value in zip(snapshot.times, snapshot.values, strict=True)
        ]

    def _exported(self, result: ExportResult | None) -> None:
        if result is not None:
            self.notify(f"Exported {result.rows:,} rows to {result.path}")
