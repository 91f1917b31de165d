"""A time-series line graph (live channels, ASR, ACD, DTMF ...) drawn with plotext.

The widget is given its data and never fetches it. The plotext figure is only rebuilt when the
data, the hidden series or the size change, so an idle console spends nothing on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from rich.align import Align
from rich.color import Color
from rich.console import Group, RenderableType
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from widgets import LOADING

TOTAL = "total"  # a series of this name (any case) is drawn emphasised, on top of the others
EMPTY_MESSAGE = "no calls in this period"
ALL_HIDDEN_MESSAGE = "all series hidden"

# ANSI colour numbers (bright first): a 16-colour terminal or an ANSI theme shows them natively,
# and other themes map them through their own ANSI palette, so they suit dark and light themes.
PALETTE = (14, 13, 11, 10, 12, 9, 6, 5, 3, 2)
# Without colour (NO_COLOR), shapes tell the series apart.
PLAIN_MARKERS = ("+", "x", "o", "*", "#", "@", "%", "=")
MARKER = "braille"  # the finest resolution plotext has: 2x4 dots per cell
# The newest bucket of a sum, not over yet (what ended so far in it): drawn in dots, so that its
# lower value reads as "so far" rather than as traffic falling away.
OPEN_MARKER, OPEN_NOTE = "dot", "• so far"

MINUTE, HOUR, DAY = 60, 3600, 86400
TIME_STEPS_S = (
    MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
    HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
    DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY,
)  # fmt: skip
CELLS_PER_TIME_LABEL = 10  # "HH:MM" plus room to breathe
MAX_VALUE_TICKS = 6


@dataclass(frozen=True)
class SeriesData:
    """One complete update; equal updates are recognised and ignored."""

    times: tuple[float, ...] = ()
    series: tuple[tuple[str, tuple[float | None, ...]], ...] = ()
    title: str = ""
    unit: str = ""
    tz: tzinfo = UTC
    open_last: bool = False  # the last bucket is not over (see OPEN_MARKER)


def is_total(name: str) -> bool:
    return name.casefold() == TOTAL


def compact_number(value: float) -> str:
    """Short axis labels: 0.25, 40, 1.2k, 3M."""
    for divisor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= divisor:
            return f"{value / divisor:.3g}{suffix}"
    return f"{value:.3g}"


def value_ticks(low: float, high: float, max_ticks: int) -> list[float]:
    """At most `max_ticks` round ticks (1, 2, 2.5 or 5 times a power of ten) from `low` up."""
    if high <= low:  # flat data still gets an axis with some height
        high = low + (abs(low) or 1.0)
    magnitude = 10 ** math.floor(math.log10((high - low) / max_ticks))
    for multiple in (1, 2, 2.5, 5, 10, 20, 25, 50):
        step = multiple * magnitude
        first = math.floor(low / step) * step
        count = math.floor(round((high - first) / step, 9)) + 1
        if count <= max_ticks:
            break
    return [round(first + index * step, 9) for index in range(count)]


def time_ticks(
    start: float, end: float, tz: tzinfo, max_ticks: int
) -> tuple[list[float], list[str]]:
    """Ticks on round local times (HH:MM under two days, MM-DD beyond), at most `max_ticks`."""
    span = end - start
    label_format = "%H:%M" if span < 2 * DAY else "%m-%d"
    steps = [step for step in TIME_STEPS_S if span < 2 * DAY or step >= DAY]
    step = next((s for s in steps if span // s + 1 <= max_ticks), steps[-1])
    # Align on the display zone's wall clock, so ticks fall on 00:00, 06:00 ... there.
    offset = datetime.fromtimestamp(start, tz).utcoffset()
    offset_s = offset.total_seconds() if offset else 0.0
    tick = math.ceil((start + offset_s) / step) * step - offset_s
    ticks = []
    while tick <= end:
        ticks.append(tick)
        tick += step
    ticks = ticks or [start]
    labels = [datetime.fromtimestamp(t, tz).strftime(label_format) for t in ticks]
    return ticks, labels


def unbroken_runs(
    times: Sequence[float], values: Sequence[float | None]
) -> list[tuple[list[float], list[float]]]:
    """Split a series at its None values, so gaps are drawn as gaps rather than as zero."""
    runs: list[tuple[list[float], list[float]]] = []
    xs: list[float] = []
    ys: list[float] = []
    for time, value in zip(times, values, strict=True):
        if value is None:
            if xs:
                runs.append((xs, ys))
            xs, ys = [], []
        else:
            xs.append(time)
            ys.append(value)
    if xs:
        runs.append((xs, ys))
    return runs


class SeriesPlot(PlotextPlot):
    """Time-series lines with a title/legend line, local time ticks, gaps and hideable series."""

    DEFAULT_CSS = """
    SeriesPlot {
        width: 1fr;
        height: 1fr;
        min-height: 5;
        &:focus { background-tint: $foreground 5%; }
        & > .series-plot--title { text-style: bold; }
        &:focus > .series-plot--title { color: $accent; }
        & > .series-plot--hidden { color: $text-disabled; text-style: strike; }
        & > .series-plot--message { color: $text-muted; }
    }
    """
    COMPONENT_CLASSES = {"series-plot--title", "series-plot--hidden", "series-plot--message"}

    can_focus = True
    # Plotext's "clear" theme leaves canvas, axes and ticks uncoloured, so they take the
    # widget's own theme colours instead of plotext's.
    theme = reactive("clear")

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._data = SeriesData()
        self._loaded = False  # no series given yet: nothing to say of the period
        self._hidden: frozenset[str] = frozenset()
        self._drawn_key: tuple[object, ...] | None = None
        self._drawn = Text()

    @property
    def hidden(self) -> frozenset[str]:
        """Names of the series not drawn (still listed, struck through, in the legend)."""
        return self._hidden

    @hidden.setter
    def hidden(self, names: Iterable[str]) -> None:
        hidden = frozenset(names)
        if hidden != self._hidden:
            self._hidden = hidden
            self.refresh()

    def toggle_series(self, name: str) -> None:
        """Hide the series `name` if shown, show it if hidden."""
        self.hidden = self._hidden ^ {name}

    def set_series(
        self,
        times: Sequence[float],
        series: Mapping[str, Sequence[float | None]],
        *,
        title: str,
        unit: str = "",
        tz: tzinfo = UTC,
        open_last: bool = False,
    ) -> None:
        """Plot `series` (None = no data) against `times` (unix seconds); ignores repeats.
        `open_last`: the last bucket is not over yet, its values only what it holds so far."""
        data = SeriesData(
            tuple(times), tuple((name, tuple(values)) for name, values in series.items()),
            title, unit, tz, open_last,
        )  # fmt: skip
        if data == self._data:
            return
        for name, values in data.series:
            if len(values) != len(data.times):
                raise ValueError(f"series {name!r} has {len(values)} values for {len(times)} times")
        self._data, self._loaded = data, True
        self.refresh()

    def _numbered_series(self) -> list[tuple[int, str, tuple[float | None, ...]]]:
        """(colour number, name, values), the total last so it is drawn on top.

        Numbers come from the order given, not from what is shown, so hiding a series does not
        repaint the others in new colours.
        """
        others = [(name, values) for name, values in self._data.series if not is_total(name)]
        totals = [(0, name, values) for name, values in self._data.series if is_total(name)]
        return [(number, *series) for number, series in enumerate(others)] + totals

    def _visible_series(self) -> list[tuple[int, str, tuple[float | None, ...]]]:
        return [series for series in self._numbered_series() if series[1] not in self._hidden]

    def _look(self, number: int, name: str) -> tuple[int | str, str, str]:
        """Plotext (colour, marker, style) of a series."""
        if is_total(name):
            return "default", MARKER, "bold"  # "default": the theme's foreground
        marker = PLAIN_MARKERS[number % len(PLAIN_MARKERS)] if self.app.no_color else MARKER
        return PALETTE[number % len(PALETTE)], marker, "default"

    def _swatch(self, number: int, name: str) -> Text:
        """The legend's sample of a series: its colour, or its marker when colour is off."""
        if is_total(name):
            return Text("■", style="bold")
        if self.app.no_color:
            return Text(PLAIN_MARKERS[number % len(PLAIN_MARKERS)])
        return Text("■", style=Style(color=Color.from_ansi(PALETTE[number % len(PALETTE)])))

    def _header(self, width: int) -> list[Text]:
        """Title (and unit) on the left, the legend on the right when there are several series;
        a legend too long for the title's line goes under it, wrapped between its entries, so
        that every series keeps its entry."""
        data = self._data
        title = f"{data.title} ({data.unit})" if data.unit else data.title
        if data.open_last:
            title += f" · {OPEN_NOTE}"
        header = Text(no_wrap=True, overflow="ellipsis")
        header.append(title, style=self.get_component_rich_style("series-plot--title"))
        if len(data.series) < 2:
            return [header]
        hidden_style = self.get_component_rich_style("series-plot--hidden")
        entries = []
        # The total leads the legend (it is the headline figure) but is drawn last.
        for number, name, _ in sorted(self._numbered_series(), key=lambda s: not is_total(s[1])):
            entry = Text(" ", no_wrap=True, overflow="ellipsis")
            entry.append(self._swatch(number, name))
            entry.append(f" {name}", style=hidden_style if name in self._hidden else "")
            entries.append(entry)
        legend_width = sum(entry.cell_len for entry in entries)
        if header.cell_len + 1 + legend_width <= width:
            header.append(" " * (width - header.cell_len - legend_width))
            header.append_text(Text("").join(entries))
            return [header]
        header.truncate(width, overflow="ellipsis")
        lines = [header, Text(no_wrap=True, overflow="ellipsis")]
        for entry in entries:
            if lines[-1].cell_len and lines[-1].cell_len + entry.cell_len > width:
                lines.append(Text(no_wrap=True, overflow="ellipsis"))
            lines[-1].append_text(entry)
        for line in lines[1:]:
            line.truncate(width, overflow="ellipsis")  # only a name wider than the plot
        return lines

    def render(self) -> RenderableType:
        width, height = self.content_size
        header = Group(*self._header(width))
        body_height = height - len(header.renderables)
        if body_height < 1:
            return header
        visible = self._visible_series()
        if not any(value is not None for _, _, values in visible for value in values):
            all_hidden = self._data.series and not visible
            if not self._loaded:
                said = LOADING
            else:
                said = ALL_HIDDEN_MESSAGE if all_hidden else EMPTY_MESSAGE
            message = Text(
                said,
                style=self.get_component_rich_style("series-plot--message"),
            )
            return Group(header, Align.center(message, vertical="middle", height=body_height))
        key = (width, body_height, self._data, self._hidden)
        if key != self._drawn_key:
            self._drawn = self._draw_plot(width, body_height, visible)
            self._drawn_key = key
        return Group(header, self._drawn)

    def _draw_plot(
        self, width: int, height: int, visible: list[tuple[int, str, tuple[float | None, ...]]]
    ) -> Text:
        """Build the plotext figure for this size; the expensive part, so render caches it."""
        data = self._data
        plt = self.plt
        plt.clear_figure()
        plt.theme("clear")
        plt.plotsize(width, height)
        plt._set_size(width, height)  # as PlotextPlot.render does (textual-plotext issue 5)
        plt.xaxes(True, False)  # bottom and left axes only: no box, more room for data
        plt.yaxes(True, False)
        for number, name, values in visible:
            color, marker, style = self._look(number, name)
            closed = values[:-1] + (None,) if data.open_last else values
            for xs, ys in unbroken_runs(data.times, closed):
                plt.plot(xs, ys, marker=marker, color=color, style=style)
            if data.open_last and values[-1] is not None:
                xs, ys = unbroken_runs(data.times[-2:], values[-2:])[-1]
                plt.plot(xs, ys, marker=OPEN_MARKER, color=color, style=style)

        numbers = [v for _, _, values in visible for v in values if v is not None]
        data_rows = height - 2  # minus the x axis and its labels
        max_value_ticks = max(2, min(MAX_VALUE_TICKS, data_rows // 3 + 1))
        # From zero, so that a small dip in ASR or channels does not look like a collapse.
        ticks = value_ticks(min(0.0, min(numbers)), max(numbers), max_value_ticks)
        labels = [compact_number(tick) for tick in ticks]
        plt.ylim(ticks[0], max(ticks[-1], max(numbers)))
        plt.yticks(ticks, labels)

        start, end = data.times[0], data.times[-1]
        plot_width = width - max(map(len, labels)) - 1
        max_time_ticks = max(2, plot_width // CELLS_PER_TIME_LABEL)
        plt.xlim(start, end if end > start else start + 1)
        plt.xticks(*time_ticks(start, end, data.tz, max_time_ticks))
        return Text.from_ansi(plt.build(), no_wrap=True, end="")
