"""The dashboard: how it looks on the seeded network, and what its keys and its table do."""

from __future__ import annotations

import csv
import json

import pytest

from console import testing
from screens.dashboard import DashboardScreen
from screens.summary import SummaryPane
from widgets.series_plot import SeriesPlot
from widgets.summary_table import SummaryTable

SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_dashboard(noc_app, noc_settle, snap_compare, size):
    assert snap_compare(noc_app(), terminal_size=size, run_before=noc_settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_dashboard_asr_per_carrier_and_daily_summary(noc_app, noc_settle, snap_compare, size):
    async def run_before(pilot):
        await noc_settle(pilot)
        await pilot.press("g", "p")  # ASR, per carrier
        pilot.app.screen.query_one(SummaryPane).action_next_mode()
        await noc_settle(pilot)

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


async def test_graph_keys_cycle_metrics_and_split_by_carrier(noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await noc_settle(pilot)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await pilot.press("g")
        await noc_settle(pilot)
        plot = screen.query_one(SeriesPlot)
        assert plot._data.title.startswith("ASR")
        await pilot.press("p")
        await noc_settle(pilot)
        names = [name for name, _ in plot._data.series]
        assert "Ember Link" in names and "total" not in names  # carriers by name, not by id


async def test_the_legend_per_carrier_at_80x24_has_every_carrier(noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await noc_settle(pilot)
        await pilot.press("g", "p")
        await noc_settle(pilot)
        plot = app.screen.query_one(SeriesPlot)
        names = [name for name, _ in plot._data.series]
        assert len(names) >= 4
        legend = "\n".join(line.plain for line in plot._header(plot.content_size.width))
        assert "…" not in legend
        for name in names:
            assert f"■ {name}" in legend


async def test_a_week_of_summary_cells_selected_copied_and_exported(noc_app, noc_settle, tmp_path):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await noc_settle(pilot)
        pane = app.screen.query_one(SummaryPane)
        pane.action_next_mode()  # daily
        await noc_settle(pilot)
        table = pane.query_one(SummaryTable)
        table.focus()
        # The days since the seeded data begins (no empty days before it), up to a week.
        week = min(7, len(table.sheet.row_keys))
        assert week >= 4
        await pilot.press("right")  # the Attempts column, newest day first
        await pilot.press(*["shift+down"] * (week - 1))
        stats = table.selection_stats()
        days = table.sheet.values[:week]
        attempts = [row[1] for row in days]
        assert stats.count == week and stats.sum == sum(attempts)
        assert stats.average == pytest.approx(sum(attempts) / week)
        await pilot.press("C")  # with headers: each figure with its day
        lines = [line.split("\t") for line in app.clipboard.splitlines()]
        assert lines[0] == ["Date (UTC)", "Attempts"]
        assert [(day, int(n.replace(",", ""))) for day, n in lines[1:]] == [
            (row[0], row[1]) for row in days]
        target = tmp_path / "week.csv"
        assert table.export(target, "selection") == week
        rows = list(csv.reader(target.open()))
        assert rows[0] == ["Date (UTC)", "Attempts"] and len(rows) == week + 1
        assert [row[0] for row in rows[1:]] == [row[0] for row in days]


async def test_a_dropped_feed_shows_reconnecting(noc_feed, tmp_path):
    app = testing.make_app(tmp_path / "live.db", feed_url=noc_feed.url, refresh=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        noc_feed.send([{"type": "account", "ts": 1_763_700_000.0, "kind": "customer",
                        "id": "acme", "name": "Acme", "channels": 10}])
        await testing.until(pilot, lambda: "connected" in _badge(app) and "seq 1" in _badge(app))
        noc_feed.drop()
        await testing.until(pilot, lambda: "reconnecting" in _badge(app))
        await testing.until(pilot, lambda: _badge(app).startswith("● connected"))
        await app.action_quit()


def _badge(app) -> str:
    from widgets.feed_badge import FeedBadge

    return str(app.screen.query_one(FeedBadge).render())



def test_summary_rows_are_the_store_figures(noc_db, noc_clock):
    from store.views import ConsoleData, summary_cells

    rows = ConsoleData(noc_db).summary("customer", None, "live", noc_clock())
    assert len(rows) == 24
    newest = summary_cells(rows[0])
    assert newest[1] > 0  # the seeded busy hours
    json.dumps(newest)  # plain values, ready for copy and export


async def test_summaries_show_units_totals_and_no_empty_days_before_the_data(noc_app,
                                                                            noc_settle):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await noc_settle(pilot)
        pane = app.screen.query_one(SummaryPane)
        pane.action_next_mode()  # daily: 31 days, of which the seeded data fills the newest
        await noc_settle(pilot)
        sheet = pane.query_one(SummaryTable).sheet
        labels = [column.label for column in sheet.columns]
        assert {"ACD (s)", "PDD (s)", "Revenue (USD)", "Cost (USD)", "Profit (USD)"} <= {
            *labels}
        shown = len(sheet.row_keys)
        assert 0 < shown < 31
        assert sheet.values[-1][1] > 0  # the oldest row shown holds calls
        assert sheet.total_texts is not None and sheet.total_texts[0] == "Total"
        attempts = sum(row[1] for row in sheet.values)
        assert sheet.total_texts[1] == f"{attempts:,}"
        pdd = labels.index("PDD (s)")
        assert all(value is None or isinstance(value, str) or value < 30
                   for value in (row[pdd] for row in sheet.values))  # seconds, not ms


async def test_a_wide_dashboard_shows_two_graphs_side_by_side(noc_app, noc_settle):
    for size, both in (((120, 40), True), ((80, 24), False)):
        async with noc_app().run_test(size=size) as pilot:
            await noc_settle(pilot)
            first = app_plot(pilot.app, "#graph")
            second = app_plot(pilot.app, "#graph-next")
            assert first.display and second.display is both
            assert first._data.title.startswith("Live channels")
            assert second._data.title.startswith("ASR")  # the graph g would show next
            if both:
                assert second.region.y == first.region.y and second.region.x > first.region.x
            await pilot.press("g")
            await noc_settle(pilot)
            assert first._data.title.startswith("ASR") and second._data.title.startswith("ACD")


async def test_the_pdd_graph_is_in_seconds(noc_app, noc_settle):
    async with noc_app().run_test(size=(80, 24)) as pilot:
        await noc_settle(pilot)
        await pilot.press("g", "g", "g")  # channels, ASR, ACD, then PDD
        await noc_settle(pilot)
        plot = app_plot(pilot.app, "#graph")
        assert plot._data.title.startswith("PDD") and plot._data.unit == "s"
        values = [v for _, points in plot._data.series for v in points if v is not None]
        assert values and max(values) < 30  # seconds, not milliseconds


def app_plot(app, selector: str) -> SeriesPlot:
    return app.screen.query_one(selector, SeriesPlot)


async def test_balances_align_on_the_decimal_point_and_long_names_end_in_an_ellipsis(
        noc_app, noc_settle):
    from textual.widgets import OptionList

    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await noc_settle(pilot)
        balances = app.screen.query_one("#balances", OptionList)
        lines = [str(balances.get_option_at_index(n).prompt)
                 for n in range(balances.option_count)]
        assert len(lines) >= 4
        assert len({line.index(".") for line in lines}) == 1, lines
        assert any("Helpline Contact Ce…" in line for line in lines)


async def test_enter_on_the_first_check_opens_the_failing_carrier(noc_app, noc_settle):
    from screens.carrier import CarrierScreen

    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await noc_settle(pilot)
        await pilot.press("enter")
        await noc_settle(pilot)
        assert isinstance(app.screen, CarrierScreen)
        assert app.screen.carrier == "ember-link"

