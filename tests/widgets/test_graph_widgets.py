"""The display widgets: big number, feed badge, gauge and time-series plot."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from textual.app import App, ComposeResult
from textual.containers import Grid, Horizontal
from textual.theme import BUILTIN_THEMES
from textual.widget import Widget

from widgets.big_number import BigNumber, big_rows
from widgets.feed_badge import FeedBadge
from widgets.gauge import Gauge
from widgets.series_plot import (
    ALL_HIDDEN_MESSAGE,
    EMPTY_MESSAGE,
    SeriesPlot,
    compact_number,
    time_ticks,
    unbroken_runs,
    value_ticks,
)

START = datetime(2024, 5, 1, 6, 0, tzinfo=UTC).timestamp()
TIMES = [START + step * 300 for step in range(73)]  # six hours, every five minutes


def wave(base: float, swing: float, period: float) -> list[float | None]:
    return [round(base + swing * math.sin(i / period), 1) for i in range(len(TIMES))]


CHANNELS = {"total": wave(420, 120, 9)}
ASR = {
    "total": wave(45, 6, 7),
    "Acme": wave(55, 8, 5),
    "Bolt": [None if 30 <= i < 42 else v for i, v in enumerate(wave(30, 10, 6))],
    "Cello": wave(15, 5, 4),
}


def rendered(widget: Widget) -> str:
    """The widget's own content, as plain text."""
    return str(widget.render())


def rendered_text(widget: Widget) -> str:
    """What the widget paints, as plain text (for renderables that are not Text)."""
    return "\n".join(strip.text for strip in widget.render_lines(widget.region.reset_offset))


def count_calls(widget: Widget, method: str) -> list[object]:
    """Wrap `widget.method` to record its calls; returns the (live) list of calls."""
    calls: list[object] = []
    original = getattr(widget, method)

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return original(*args, **kwargs)

    setattr(widget, method, counting)
    return calls


class OneWidget(App[None]):
    """Hosts a single widget at a chosen width."""

    CSS = "Screen { align: left top; } #host { width: auto; height: auto; }"

    def __init__(self, widget: Widget, width: int | None = None) -> None:
        super().__init__()
        self.widget = widget
        if width is not None:
            widget.styles.width = width

    def compose(self) -> ComposeResult:
        yield self.widget


class Dashboard(App[None]):
    """All four widgets with fixed data, laid out as a dashboard would use them."""

    CSS = """
    #gauges { height: 1; }
    #gauges Gauge { margin-right: 2; }
    Grid { grid-size: 2 2; }
    SeriesPlot, BigNumber { border: round $border-blurred; }
    BigNumber { height: 1fr; content-align: center middle; }
    """

    def compose(self) -> ComposeResult:
        yield FeedBadge(id="badge")
        with Horizontal(id="gauges"):
            yield Gauge("Channels", 412, 600)
            yield Gauge("CPS", 29, 30)
        with Grid():
            yield SeriesPlot(id="channels")
            yield SeriesPlot(id="asr")
            yield BigNumber(1284, "consecutive failures · Bolt", "critical")
            yield SeriesPlot(id="acd")

    def on_mount(self) -> None:
        self.query_one(FeedBadge).update_state(
            "connected", gaps=2, quarantined=14, last_seq=1_234_567, role="writer"
        )
        self.query_one("#channels", SeriesPlot).set_series(TIMES, CHANNELS, title="Live channels")
        self.query_one("#asr", SeriesPlot).set_series(TIMES, ASR, title="ASR", unit="%")
        self.query_one("#acd", SeriesPlot).set_series([], {}, title="ACD", unit="s")


# --- BigNumber ---------------------------------------------------------------------------------


def test_big_font_is_three_rows_of_equal_width() -> None:
    rows = big_rows("1,234,567")
    assert len(rows) == 3
    assert len({len(row) for row in rows}) == 1
    assert len(big_rows("999,999")[0]) <= 38  # six digits fit a 40-column panel


def test_big_thousands_are_set_apart_by_a_gap_that_cannot_read_as_a_decimal_point() -> None:
    rows = big_rows("2,963")
    assert [row[3:6] for row in rows] == ["   "] * 3  # between "2" and "963": no ink at all
    assert [row[9] for row in rows] == [" "] * 3  # between digits: one blank column


@pytest.mark.parametrize("severity", ["ok", "warning", "error", "critical"])
async def test_big_number_severity_sets_one_class(severity: str) -> None:
    big = BigNumber(7, "failures", "ok")
    async with OneWidget(big).run_test():
        big.update_value(7, "failures", severity)  # type: ignore[arg-type]
        assert {c for c in big.classes if c.startswith("-")} == {f"-{severity}"}


async def test_big_number_rejects_unknown_severity() -> None:
    with pytest.raises(ValueError):
        BigNumber(1, "x", "fatal")  # type: ignore[arg-type]


async def test_big_number_draws_big_digits_when_wide_enough() -> None:
    big = BigNumber(123_456, "consecutive failures", "error")
    async with OneWidget(big, width=40).run_test() as pilot:
        await pilot.pause()
        lines = rendered(big).splitlines()
        assert lines[:3] == big_rows("123,456")
        assert lines[3] == "consecutive failures"
        assert big.size.height == 4


async def test_big_number_falls_back_to_one_bold_line_when_narrow() -> None:
    big = BigNumber(123_456, "failures", "warning")
    async with OneWidget(big, width=14).run_test() as pilot:
        await pilot.pause()
        assert rendered(big).splitlines() == ["123,456", "failures"]
        assert big.size.height == 2


async def test_big_number_without_value_shows_a_quiet_dash() -> None:
    big = BigNumber(None, "failures", "ok")
    async with OneWidget(big, width=40).run_test():
        text = big.render()
        assert str(text).splitlines()[:3] == big_rows("-")
        assert text.style == big.get_component_rich_style("big-number--caption")


async def test_big_number_identical_update_does_not_refresh() -> None:
    big = BigNumber(5, "failures", "ok")
    async with OneWidget(big).run_test():
        refreshes = count_calls(big, "refresh")
        big.update_value(5, "failures", "ok")
        assert refreshes == []
        big.update_value(6, "failures", "ok")
        assert len(refreshes) == 1


# --- FeedBadge ---------------------------------------------------------------------------------


FEED_COUNTS = " · 2 gaps · 14 quarantined · seq 1,234,567 · writer"
NOTHING_YET = {"last_seq": 0, "gaps": 0, "quarantined": 0}


@pytest.mark.parametrize(
    ("status", "extra", "expected", "level"),
    [
        ("connected", {}, "● connected" + FEED_COUNTS, "ok"),
        ("connecting", {}, "● connecting" + FEED_COUNTS, "pending"),
        ("reconnecting", {"reconnect_in_s": 2.2}, "● reconnecting in 3 s" + FEED_COUNTS, "pending"),
        ("reconnecting", {}, "● reconnecting" + FEED_COUNTS, "pending"),
        ("refused", {"reconnect_in_s": 30}, "● refused · retry in 30 s" + FEED_COUNTS, "down"),
        ("stopped", {}, "● stopped" + FEED_COUNTS, "down"),
        ("never connected", NOTHING_YET, "○ never connected · writer", "idle"),
        ("connected", {"stale": True}, "● writer stale" + FEED_COUNTS, "down"),
    ],
)  # fmt: skip
async def test_feed_badge_words_and_colour_per_state(
    status: str, extra: dict[str, object], expected: str, level: str
) -> None:
    badge = FeedBadge()
    async with OneWidget(badge).run_test():
        state = {"gaps": 2, "quarantined": 14, "last_seq": 1_234_567} | extra
        badge.update_state(status, **state)  # type: ignore[arg-type]
        assert rendered(badge) == expected
        assert {c for c in badge.classes if c.startswith("-")} == {f"-{level}"}


async def test_feed_badge_counts_singular_duplicates_and_role() -> None:
    badge = FeedBadge()
    async with OneWidget(badge).run_test():
        badge.update_state("connected", gaps=1, duplicates=1, last_seq=9, role="viewer")
        assert rendered(badge) == "● connected · 1 gap · seq 9 · 1 duplicate · viewer"


@pytest.mark.parametrize(("width", "expected"), [
    (62, "● connected · 2 gaps · 14 quarantined · seq 1,234,567 · writer"),
    (61, "● connected · 2 gaps · 14 quarantined · seq 1,234,567"),
    (50, "● connected · 2 gaps · 14 quarantined · writer"),
    (30, "● connected · 2 gaps · writer"),
    (12, "● connected"),
    (10, "●…"),
])
async def test_feed_badge_in_a_narrow_header_leaves_out_whole_details(width, expected) -> None:
    """Never cut inside a word or a number (`seq 1,23…`): a detail that does not fit is left
    out, and the role, short, still shows when the position does not fit."""
    badge = FeedBadge()
    async with OneWidget(badge, width=width).run_test() as pilot:
        badge.update_state("connected", gaps=2, quarantined=14, last_seq=1_234_567)
        await pilot.pause()
        assert rendered(badge) == expected


async def test_feed_badge_countdown_redraws_once_a_second() -> None:
    badge = FeedBadge()
    async with OneWidget(badge).run_test():
        badge.update_state("reconnecting", reconnect_in_s=2.9)
        refreshes = count_calls(badge, "refresh")
        badge.update_state("reconnecting", reconnect_in_s=2.4)  # still "in 3 s"
        assert refreshes == []
        badge.update_state("reconnecting", reconnect_in_s=1.9)
        assert len(refreshes) == 1


# --- Gauge -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "limit", "level"),
    [(0, 600, "ok"), (479, 600, "ok"), (480, 600, "warning"), (569, 600, "warning"),
     (570, 600, "error"), (700, 600, "error"), (5000, None, "ok"), (5000, 0, "ok")],
)  # fmt: skip
async def test_gauge_thresholds(value: float, limit: float | None, level: str) -> None:
    gauge = Gauge("Channels", value, limit)
    async with OneWidget(gauge, width=50).run_test():
        assert gauge.level == level
        assert gauge.has_class("-warning") == (level == "warning")
        assert gauge.has_class("-error") == (level == "error")


async def test_gauge_bar_fills_the_width_in_proportion() -> None:
    gauge = Gauge("Channels", 300, 600)
    async with OneWidget(gauge, width=40).run_test() as pilot:
        await pilot.pause()
        text = rendered(gauge)
        assert len(text) == 40
        assert text.startswith("Channels  ▕") and text.endswith("▏ 300 / 600")
        assert text.count("█") == text.count("░")


async def test_gauge_without_limit_shows_only_the_value() -> None:
    gauge = Gauge("Channels", 1234, None)
    async with OneWidget(gauge, width=40).run_test():
        assert rendered(gauge) == "Channels  1,234"


async def test_gauge_drops_the_bar_when_too_narrow() -> None:
    gauge = Gauge("Channels", 412, 600)
    async with OneWidget(gauge, width=22).run_test() as pilot:
        await pilot.pause()
        assert rendered(gauge) == "Channels  412 / 600"


# --- SeriesPlot --------------------------------------------------------------------------------


def test_unbroken_runs_split_at_gaps() -> None:
    runs = unbroken_runs([1, 2, 3, 4, 5, 6], [1.0, None, 3.0, 4.0, None, None])
    assert runs == [([1], [1.0]), ([3, 4], [3.0, 4.0])]


def test_value_ticks_are_round_and_cover_the_data() -> None:
    assert value_ticks(0, 70, 3) == [0, 25, 50]
    assert value_ticks(0, 70, 4) == [0, 20, 40, 60]
    assert value_ticks(0, 540, 3) == [0, 200, 400]
    assert value_ticks(0, 0, 3) == [0, 0.5, 1]
    assert [compact_number(v) for v in (0, 2.5, 1250, 3_000_000)] == ["0", "2.5", "1.25k", "3M"]


def test_time_ticks_use_the_display_zone() -> None:
    ticks, labels = time_ticks(TIMES[0], TIMES[-1], UTC, 4)
    assert labels == ["06:00", "08:00", "10:00", "12:00"]
    _, paris = time_ticks(TIMES[0], TIMES[-1], ZoneInfo("Europe/Paris"), 4)
    assert paris == ["08:00", "10:00", "12:00", "14:00"]  # UTC+2 in May
    _, days = time_ticks(TIMES[0], TIMES[0] + 6 * 86400, UTC, 4)
    assert days == ["05-03", "05-05", "05-07"]


async def test_series_plot_skips_identical_updates() -> None:
    plot = SeriesPlot()
    async with OneWidget(plot, width=60).run_test() as pilot:
        draws = count_calls(plot, "_draw_plot")
        plot.set_series(TIMES, ASR, title="ASR", unit="%")
        await pilot.pause()
        assert len(draws) == 1
        plot.set_series(list(TIMES), {k: list(v) for k, v in ASR.items()}, title="ASR", unit="%")
        plot.refresh()  # even a repaint reuses the drawn figure
        await pilot.pause()
        assert len(draws) == 1
        plot.set_series(TIMES, CHANNELS, title="Live channels")
        await pilot.pause()
        assert len(draws) == 2


async def test_series_plot_hides_and_shows_series_by_name() -> None:
    plot = SeriesPlot()
    async with OneWidget(plot, width=60).run_test() as pilot:
        plot.set_series(TIMES, ASR, title="ASR", unit="%")
        draws = count_calls(plot, "_draw_plot")
        plot.toggle_series("Bolt")
        await pilot.pause()
        assert plot.hidden == {"Bolt"}
        drawn_names = [name for _, name, _ in draws[-1][2]]
        assert drawn_names == ["Acme", "Cello", "total"]
        plot.toggle_series("Bolt")
        await pilot.pause()
        assert plot.hidden == set()
        assert [name for _, name, _ in draws[-1][2]] == ["Acme", "Bolt", "Cello", "total"]


async def test_series_plot_shows_calm_messages_without_data() -> None:
    plot = SeriesPlot()
    async with OneWidget(plot, width=40).run_test() as pilot:
        plot.set_series(TIMES, {"total": [None] * len(TIMES)}, title="ASR")
        await pilot.pause()
        assert EMPTY_MESSAGE in rendered_text(plot)
        plot.set_series(TIMES, ASR, title="ASR")
        plot.hidden = set(ASR)
        await pilot.pause()
        assert ALL_HIDDEN_MESSAGE in rendered_text(plot)


async def test_series_plot_tells_series_apart_by_shape_without_colour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    plot = SeriesPlot()
    async with OneWidget(plot, width=60).run_test() as pilot:
        plot.set_series(TIMES, ASR, title="ASR", unit="%")
        await pilot.pause()
        header, *body = rendered_text(plot).splitlines()
        assert header.endswith("■ total + Acme x Bolt o Cello")
        assert all(any(marker in line for line in body) for marker in "+xo")


async def test_series_plot_draws_a_bucket_not_yet_over_in_dots_and_says_so() -> None:
    """A sum's newest bucket holds only what ended so far: it is drawn apart (dots), so that its
    lower value does not read as traffic falling away; the closed buckets as before."""
    plot = SeriesPlot()
    values = [100.0] * (len(TIMES) - 1) + [20.0]
    async with OneWidget(plot, width=60).run_test(size=(60, 14)) as pilot:
        plot.set_series(TIMES, {"total": values}, title="Attempts")
        await pilot.pause()
        header, *closed_body = rendered_text(plot).splitlines()
        assert "so far" not in header and "•" not in "".join(closed_body)
        plot.set_series(TIMES, {"total": values}, title="Attempts", open_last=True)
        await pilot.pause()
        header, *body = rendered_text(plot).splitlines()
        assert header.startswith("Attempts · • so far")
        assert "•" in "".join(body)


async def test_series_plot_rejects_misaligned_series() -> None:
    plot = SeriesPlot()
    with pytest.raises(ValueError):
        plot.set_series(TIMES, {"total": [1.0]}, title="ASR")


# --- All together ------------------------------------------------------------------------------


@pytest.mark.parametrize("theme", sorted(BUILTIN_THEMES))
async def test_widgets_use_only_variables_every_theme_defines(theme: str) -> None:
    app = Dashboard()
    async with app.run_test(size=(80, 24)) as pilot:
        app.theme = theme  # an undefined CSS variable fails the stylesheet here
        await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_dashboard_snapshot(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(Dashboard(), terminal_size=size)


async def test_a_narrow_feed_badge_cuts_the_position_before_the_trouble() -> None:
    badge = FeedBadge()
    async with OneWidget(badge).run_test(size=(38, 3)) as pilot:
        badge.styles.width = 38
        badge.update_state("connected", gaps=2, quarantined=14, last_seq=1_234_567)
        await pilot.pause()
        line = "".join(segment.text for segment in badge.render_line(0))
        assert line.startswith("● connected · 2 gaps · 14 quarantined")
