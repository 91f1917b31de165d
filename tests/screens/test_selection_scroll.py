"""The cursor stays in view while a selection grows past the rows shown (a Summary at 80x24,
whose totals row stays pinned under the rows)."""

from __future__ import annotations

import pytest

from console import testing
from widgets.summary_table import SummaryTable


def screen_lines(app) -> list[str]:
    """What the terminal shows, line by line."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def open_customer_summary(pilot) -> None:
    app = pilot.app
    app.open_account("customer", "acme-telecom")
    await testing.settle(pilot)
    app.screen.show_tab("summary")
    # No snapshot yet at all while the account's first read runs (on a busy machine).
    await testing.until(pilot, lambda: getattr(app.screen._last_snapshot, "tab", None)
                        == "summary")


async def stay_on_dashboard(pilot) -> None:
    pass


@pytest.fixture(scope="module")
def a_week(tmp_path_factory):
    """A database with a week and more of daily rows: more than the dashboard shows at 80x24.
    Only the days count here, so they hold few calls (seeding the default's 300,000 events took
    most of this module's time)."""
    return testing.seed_database(tmp_path_factory.mktemp("week") / "week.db", history_days=8,
                                 history_cps=0.005, busy_hours=0.25)


async def test_a_selection_down_a_week_of_days_keeps_the_cursor_in_view(a_week, tmp_path):
    db = testing.copy_database(a_week, tmp_path / "noc.db")
    lock = testing.hold_writer_lock(db)
    try:
        app = testing.make_app(db, clock=testing.fixed_clock())
        async with app.run_test(size=(80, 24)) as pilot:
            days = await extend_down_to_the_last_row(pilot, stay_on_dashboard, mode_presses=1)
        assert days >= 7
    finally:
        lock.release()


@pytest.mark.parametrize("where", [open_customer_summary, stay_on_dashboard],
                         ids=["customer", "dashboard"])
@pytest.mark.parametrize("mode_presses", [0, 1], ids=["live", "daily"])
async def test_shift_down_past_the_rows_shown_keeps_the_cursor_in_view(noc_app, where,
                                                                        mode_presses):
    async with noc_app().run_test(size=(80, 24)) as pilot:
        await extend_down_to_the_last_row(pilot, where, mode_presses)


async def extend_down_to_the_last_row(pilot, where, mode_presses: int) -> int:
    """Select from the first row down past the last with shift+down, the cursor's row in view
    after every key; return how many rows there were."""
    app = pilot.app
    await testing.settle(pilot)
    await where(pilot)
    await testing.settle(pilot)
    table = app.screen.query_one(SummaryTable)
    table.focus()
    for _ in range(mode_presses):
        await pilot.press("m")
    await testing.settle(pilot)
    rows = len(table.sheet.row_keys)
    for _ in range(rows + 2):
        await pilot.press("shift+down")
        await pilot.pause()
        label = table.sheet.texts[table.cursor.row][0]
        lines = screen_lines(app)
        assert any(label in line for line in lines), (
            f"row {table.cursor.row} ({label}) out of view:\n" + "\n".join(lines))
    assert table.cursor.row == rows - 1
    assert table.selection is not None and table.selection.bottom == rows - 1
    return rows
