"""With the writer gone, the live figures do not look live: a viewer whose writer stopped (or is
late) shows channels, CPS and calls in progress greyed, "as of" the writer's last flush, on every
screen that has them; with its writer running they read as now."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from console import testing
from screens.accounts import AccountListScreen
from screens.summary import SummaryPane
from tests.screens.test_figures import open_account, open_tab, text_of
from tests.screens.test_states import set_feed
from widgets.gauge import Gauge
from widgets.summary_table import SummaryTable

NOW = testing.FIXED_NOW_MS
LAST_FLUSH = NOW - 20 * 60_000  # 11:38:30 UTC
AS_OF = "as of 11:38"
SIZES = [(80, 24), (120, 40)]
size_ids = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
CUSTOMER, CARRIER = "nova-mobile", "ember-link"


@pytest.fixture
def writer_gone(noc_seeded_template, tmp_path):
    """A copy of the seeded store whose writer stopped 20 minutes ago: no lock held."""
    db = testing.copy_database(noc_seeded_template, tmp_path / "noc.db")
    set_feed(db, updated_ms=LAST_FLUSH)
    return db


async def live_figures(pilot) -> tuple[dict[str, str], bool]:
    """What each screen says of its live figures, by where; and whether the dashboard's
    channels gauge is greyed."""
    app = pilot.app
    await testing.settle(pilot)
    greyed = app.screen.query_one("#channels", Gauge).has_class("-stale")
    shown = {"dashboard channels": app.screen.query_one("#channels", Gauge)._label,
             "dashboard CPS": str(app.screen.query_one("#cps", Static).content),
             "dashboard summary": _in_progress_label(app.screen)}
    await pilot.press("2")
    await testing.settle(pilot)
    assert isinstance(app.screen, AccountListScreen)
    shown["customer list"] = str(app.screen.query_one("#list-status", Static).content)
    screen = await open_account(pilot, "customer", CUSTOMER)
    shown["customer strip"] = str(screen.query_one("#strip", Static).content)
    await open_tab(pilot, screen, "routes")
    shown["Route Stats"] = text_of(screen.panes["routes"].query_one(".pane-note", Static))
    await open_tab(pilot, screen, "dialogs")
    shown["Dialogs"] = text_of(screen.panes["dialogs"].query_one("#dialogs-status", Static))
    await open_tab(pilot, screen, "summary")
    shown["customer Summary"] = _in_progress_label(screen.panes["summary"])
    screen = await open_account(pilot, "carrier", CARRIER)
    await open_tab(pilot, screen, "main")
    shown["carrier Main"] = text_of(screen.panes["main"].query_one("#facts", Static))
    shown["carrier Summary"] = _in_progress_label(screen.panes["main"])
    return shown, greyed


def _in_progress_label(where) -> str:
    table = where.query_one(SummaryPane).query_one(SummaryTable)
    return next(c.label for c in table.sheet.columns if c.key == "in_progress")


async def test_a_viewer_whose_writer_is_gone_shows_its_live_figures_as_of_its_last_flush(
        writer_gone):
    app = testing.make_app(writer_gone, clock=testing.fixed_clock())
    async with app.run_test(size=(120, 40)) as pilot:
        shown, greyed = await live_figures(pilot)
    assert greyed
    without = [where for where, text in shown.items() if AS_OF not in text.lower()]
    assert not without, shown


async def test_a_viewer_whose_writer_runs_shows_its_live_figures_as_now(noc_db):
    app = testing.make_app(noc_db, clock=testing.fixed_clock())
    async with app.run_test(size=(120, 40)) as pilot:
        shown, greyed = await live_figures(pilot)
    assert not greyed
    assert not [where for where, text in shown.items() if "as of" in text], shown
    assert "channels now" in shown["Route Stats"] and "Now" in shown["carrier Main"]


@size_ids
@pytest.mark.parametrize("tab", ["dialogs", "routes"])
def test_a_customer_whose_writer_is_gone(writer_gone, snap_compare, size, tab):
    async def run_before(pilot):
        screen = await open_account(pilot, "customer", CUSTOMER)
        await open_tab(pilot, screen, tab)

    app = testing.make_app(writer_gone, clock=testing.fixed_clock())
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@size_ids
def test_a_carrier_whose_writer_is_gone(writer_gone, snap_compare, size):
    async def run_before(pilot):
        screen = await open_account(pilot, "carrier", CARRIER)
        await open_tab(pilot, screen, "main")

    app = testing.make_app(writer_gone, clock=testing.fixed_clock())
    assert snap_compare(app, terminal_size=size, run_before=run_before)
