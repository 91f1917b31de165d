"""What every screen shares: the time zone, the command palette's actions, the header."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing

import pytest
from textual.color import Color

from console import testing
from screens.chrome import NocHeader
from screens.tables import LiveTable
from screens.timezone import TimezonePicker
from widgets.window_table import WindowTable


async def test_the_time_zone_changes_what_is_shown_not_the_data(noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await noc_settle(pilot)
        await pilot.press("z")
        assert isinstance(app.screen, TimezonePicker)
        for key in "berlin":
            await pilot.press(key)
        await pilot.press("enter")
        await noc_settle(pilot)
        assert str(app.display_tz) == "Europe/Berlin"
        clock = str(app.screen.query_one(NocHeader).query_one("#when").render())
        assert clock.startswith("12:58 CET")


async def test_every_key_is_also_a_palette_command(noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await noc_settle(pilot)
        await pilot.press("ctrl+p")
        for key in "per carrier":
            await pilot.press(key)
        await pilot.pause(0.5)
        await pilot.press("enter")
        await noc_settle(pilot)
        assert app.screen.per_carrier is True


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_time_zone_picker(noc_app, noc_settle, snap_compare, size):
    async def run_before(pilot):
        await noc_settle(pilot)
        await pilot.press("z", "e", "u", "r", "o", "p", "e", "/", "l")

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


def test_read_only_console_refuses_actions(noc_app, noc_db):
    app = noc_app(read_only=True)
    assert app.request_control(action="hangup", call_id="x") is None


async def test_ending_a_dialog_sends_the_control_message_on_the_feed(noc_feed, tmp_path):
    from textual.widgets import TabbedContent

    from screens.confirm import Confirm
    from screens.customer import CustomerScreen, DialogsPane

    ts = 1_763_700_000.0
    noc_feed.send(
        [
            {"type": "account", "ts": ts, "kind": "customer", "id": "acme", "name": "Acme"},
            {
                "type": "call.start",
                "ts": ts,
                "call_id": "c-1",
                "customer": "acme",
                "cli": "1",
                "dst": "4420",
            },
            {
                "type": "call.attempt",
                "ts": ts,
                "call_id": "c-1",
                "attempt": 1,
                "carrier": "atlas",
                "route": "44",
            },
        ]
    )
    app = testing.make_app(tmp_path / "live.db", feed_url=noc_feed.url, refresh=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await testing.until(
            pilot, lambda: app.service is not None and app.service.committed_seq >= 3
        )
        app.open_account("customer", "acme")
        await testing.settle(pilot)
        screen = app.screen
        assert isinstance(screen, CustomerScreen)
        screen.query_one(TabbedContent).active = "dialogs"
        await testing.until(
            pilot, lambda: screen.query_one(DialogsPane).query_one("DataTable").row_count
        )
        await pilot.press("k")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await testing.until(pilot, lambda: [c for c in noc_feed.controls if c.action == "hangup"])
        [control] = [c for c in noc_feed.controls if c.action == "hangup"]
        assert control.call_id == "c-1"
        await app.action_quit()


async def test_a_screen_shown_again_reads_what_changed_at_once(noc_app, noc_settle, noc_db):
    app = noc_app(refresh=3600)  # no timed refresh during the test: only the switch reads
    async with app.run_test(size=(120, 40)) as pilot:
        await noc_settle(pilot)
        await pilot.press("2")
        await noc_settle(pilot)
        await pilot.press("1")
        await noc_settle(pilot)
        with closing(sqlite3.connect(noc_db)) as db, db:
            db.execute("UPDATE account SET name = 'Acme Renamed' WHERE id = 'acme-telecom'")
        await pilot.press("2")
        table = app.screen.query_one(WindowTable)
        await testing.until(pilot, lambda: "Acme Renamed" in str(dict(table.rows)
                                                                 .get("acme-telecom")))


async def test_a_read_begun_before_the_screen_asked_again_is_not_shown(noc_app, noc_settle):
    app = noc_app(refresh=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        await noc_settle(pilot)
        screen = app.screen
        shown = screen._last_snapshot
        asked = screen.asked
        screen.refresh_now()  # e.g. a filter typed while the read was under way
        screen.deliver("what the screen showed before", 0.0, None, asked)
        assert screen._last_snapshot is None and screen.current_as_of != 0.0
        await noc_settle(pilot)
        assert screen._last_snapshot == shown


async def test_a_tab_whose_read_is_slow_does_not_hold_up_the_next_one(noc_app, noc_settle):
    """`>` pressed twice quickly: the tab passed over reads slowly (a busy store), and the tab
    arrived at shows its calls without waiting for that read, which is dropped when it ends."""
    app = noc_app(refresh=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        await noc_settle(pilot)
        app.open_account("customer", "acme-telecom")
        await noc_settle(pilot)
        screen, data = app.screen, app.data
        reading, let_go = threading.Event(), threading.Event()
        route_stats = data.route_stats

        def slow_route_stats(*args, **kwargs):
            reading.set()
            let_go.wait(120)
            return route_stats(*args, **kwargs)

        data.route_stats = slow_route_stats
        try:
            await pilot.press(">")  # Route Stats, its read held
            await testing.until(pilot, reading.is_set)
            await pilot.press(">")  # Latest Calls
            await testing.until(pilot, lambda: screen.active == "calls" and screen.has_data)
            assert screen.panes["calls"].query_one(LiveTable).row_count > 0
        finally:
            let_go.set()
        await noc_settle(pilot)
        assert screen.active == "calls"


async def test_a_theme_chosen_on_one_screen_reaches_the_screens_kept_for_other_keys(
        noc_app, noc_settle):
    """Screens shown again keep their styles (restyling them all made switching slow): a new
    theme must still reach those not on show when it was chosen."""
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await noc_settle(pilot)
        await pilot.press("2")
        await noc_settle(pilot)
        customers = app.screen
        header = customers.query_one(NocHeader)
        dark = header.styles.background
        await pilot.press("1")
        await noc_settle(pilot)
        app.theme = "textual-light"
        await pilot.pause()
        await pilot.press("2")
        await noc_settle(pilot)
        assert app.screen is customers
        assert header.styles.background != dark
        assert header.styles.background == Color.parse(app.theme_variables["panel"])


async def test_a_console_mounts_what_its_keys_lead_to_once_it_has_painted(noc_db, noc_clock):
    """No key waits for a screen to mount: after the first paint, the screens of the global
    keys and the kept account screens are mounted one at a time."""
    app = testing.make_app(noc_db, clock=noc_clock, warm_screens=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await testing.until(pilot, lambda: app.warmed)
        kept = app.get_screen("customer-account")
        await testing.until(pilot, lambda: kept.is_mounted
                            and app.get_screen("carrier-account").is_mounted)
        await pilot.press("2")
        await testing.settle(pilot)
        await pilot.press("enter")
        await testing.settle(pilot)
        assert app.screen is kept and kept.account == "acme-telecom"
