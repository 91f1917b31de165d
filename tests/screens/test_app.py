"""What every screen shares: the time zone, the command palette's actions, the header."""

from __future__ import annotations

import pytest

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
