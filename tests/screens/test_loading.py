"""Nothing shown before it is known: a carrier or customer opened while the store is busy says
it is loading, never "never connected", its raw id as its name, or a warning it has not read."""

from __future__ import annotations

import threading

import pytest

from console import testing
from screens.carrier import CarrierScreen
from screens.customer import CustomerScreen
from store.views import ConsoleData

SIZES = [(80, 24), (120, 40)]
size_ids = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
ACCOUNTS = [("carrier", "ember-link", "Ember Link"), ("customer", "acme-telecom", "Acme Telecom")]
OPENED_BEFORE = {"carrier": ("atlas-voice", "Atlas Voice"),
                 "customer": ("nova-mobile", "Nova Mobile")}
account_ids = pytest.mark.parametrize("kind,account,name", ACCOUNTS, ids=lambda a: a)
FALSE_WHILE_LOADING = ("never connected", "never returned 404", "✓ consecutive failures",
                       "No data", "no calls in this period")


class BusyStore:
    """The real store's read models, each read held until `release()`: a store so busy that
    nothing it holds has been read yet. A read still held when the app exits fails (the app
    waits for its reads before it ends)."""

    def __init__(self, app) -> None:
        self._app = app
        self._data: ConsoleData = app.data
        self._open = threading.Event()

    def release(self) -> None:
        self._open.set()

    def __getattr__(self, name: str):
        read = getattr(self._data, name)
        if not callable(read):
            return read

        def held(*args, **kwargs):
            while not self._open.wait(0.05):
                if self._app._exit:
                    raise RuntimeError("the app exits with the store still busy")
            return read(*args, **kwargs)

        return held


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def open_on_busy_store(pilot, kind: str, account: str) -> BusyStore:
    """Open the account once the store has gone busy; return when its screen is painted."""
    app = pilot.app
    await testing.settle(pilot)
    busy = app.data = BusyStore(app)
    app.open_account(kind, account)
    screen_type = CarrierScreen if kind == "carrier" else CustomerScreen
    await testing.until(pilot, lambda: isinstance(app.screen, screen_type)
                        and app.screen.is_mounted)
    await pilot.pause()
    return busy


@account_ids
async def test_an_account_opened_on_a_busy_store_says_it_is_loading(noc_app, kind, account,
                                                                    name):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        busy = await open_on_busy_store(pilot, kind, account)
        try:
            first = screen_text(app)
            assert "loading…" in first
            for false in (*FALSE_WHILE_LOADING, account, name):
                assert false not in first, f"{false!r} shown before it was read"
        finally:
            busy.release()
        await testing.until(pilot, lambda: app.screen.has_data)
        await testing.settle(pilot)
        shown = screen_text(app)
        assert name in shown and "loading…" not in shown.split("\n")[0]
        assert "connected" in shown.split("\n")[0]


@account_ids
async def test_the_next_account_opened_on_a_busy_store_says_nothing_of_the_last(
        noc_app, kind, account, name):
    """The account's screen is kept and shows the next account in place: not in the last
    one's name, nor under its id."""
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        last_id, last_name = OPENED_BEFORE[kind]
        app.open_account(kind, last_id)
        await testing.until(pilot, lambda: last_name in screen_text(app))
        busy = await open_on_busy_store(pilot, kind, account)
        try:
            first = screen_text(app)
            assert "loading…" in first
            for false in (*FALSE_WHILE_LOADING, account, name, last_id, last_name):
                assert false not in first, f"{false!r} shown before it was read"
        finally:
            busy.release()
        await testing.until(pilot, lambda: name in screen_text(app))


@size_ids
@account_ids
def test_account_loading(noc_app, snap_compare, size, kind, account, name):
    async def run_before(pilot):
        await open_on_busy_store(pilot, kind, account)

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


@account_ids
async def test_an_account_opened_again_shows_at_once_what_it_showed_last(noc_app, kind,
                                                                         account, name):
    """Back to an account opened a moment ago: its screen paints at once as it was last shown
    (its name, its figures), though the store is too busy to read it yet, and the read follows."""
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_account(kind, account)
        await testing.until(pilot, lambda: name in screen_text(app))
        await testing.settle(pilot)
        before = screen_text(app)
        app.open_account(kind, OPENED_BEFORE[kind][0])
        await testing.until(pilot, lambda: OPENED_BEFORE[kind][1] in screen_text(app))
        busy = await open_on_busy_store(pilot, kind, account)
        try:
            again = screen_text(app)
            assert "loading…" not in again
            assert again.splitlines()[1:] == before.splitlines()[1:]  # all but the clock line
            assert not app.screen.has_data  # shown as last read, not taken as read now
        finally:
            busy.release()
        await testing.until(pilot, lambda: app.screen.has_data)
