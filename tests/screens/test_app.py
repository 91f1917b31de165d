"""What every screen shares: the time zone, the command palette's actions, the header."""

from __future__ import annotations

import pytest

from console import testing
from screens.chrome import NocHeader
from screens.timezone import TimezonePicker


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
