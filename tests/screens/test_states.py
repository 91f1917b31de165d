"""Snapshots of the states that matter, beyond a healthy feed on a full store: the feed
reconnecting, refused or never connected; a viewer whose writer is gone; an empty database on
first run; read-only; low colour and NO_COLOR; the command palette; an export's result; the
Summary's Daily and Monthly views; long names and huge numbers; a terminal below 80x24."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from textual.widgets import Input

from console import testing
from console.shell.options import LOW_COLOUR_THEME
from store.database import prepare
from store.health import StoreHealth
from widgets.export import ExportScreen

SIZES = [(80, 24), (120, 40)]
size_ids = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
NOW = testing.FIXED_NOW_MS


def set_feed(db: Path, **fields) -> None:
    """Say in the store what the writer would about its feed."""
    columns = ", ".join(f"{name} = ?" for name in fields)
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.execute(f"UPDATE feed_state SET {columns} WHERE id = 1", tuple(fields.values()))


FEED_STATES = {
    "reconnecting": {"status": "reconnecting", "reconnect_at_ms": NOW + 4_000,
                     "detail": "connection lost: no heartbeat for 10 s"},
    "refused": {"status": "refused", "reconnect_at_ms": NOW + 30_000,
                "detail": "HTTP 401: the feed refused the token"},
    "never connected": {"status": "never connected", "last_seq": 0, "connected_since_ms": None,
                        "last_frame_ms": None, "detail": "connection refused (is the feed up?)"},
}


@size_ids
@pytest.mark.parametrize("state", FEED_STATES)
def test_dashboard_with_the_feed(noc_db, noc_app, noc_settle, snap_compare, size, state):
    set_feed(noc_db, updated_ms=NOW, **FEED_STATES[state])
    assert snap_compare(noc_app(), terminal_size=size, run_before=noc_settle)


@size_ids
def test_viewer_whose_writer_is_gone(noc_seeded_template, tmp_path, snap_compare, size):
    db = testing.copy_database(noc_seeded_template, tmp_path / "noc.db")  # no writer's lock
    set_feed(db, updated_ms=NOW - 20 * 60_000)
    app = testing.make_app(db, clock=testing.fixed_clock())
    assert snap_compare(app, terminal_size=size, run_before=testing.settle)


@size_ids
def test_empty_database_on_first_run(tmp_path, snap_compare, size):
    db = tmp_path / "noc.db"
    prepare(db)
    set_feed(db, status="connecting", detail="ws://127.0.0.1:8765/feed", updated_ms=NOW)
    lock = testing.hold_writer_lock(db)  # its writer has just started
    try:
        app = testing.make_app(db, clock=testing.fixed_clock())
        assert snap_compare(app, terminal_size=size, run_before=testing.settle)
    finally:
        lock.release()


def test_read_only_console(noc_app, noc_settle, snap_compare):
    assert snap_compare(noc_app(read_only=True), terminal_size=(80, 24), run_before=noc_settle)


@size_ids
def test_low_colour(noc_app, noc_settle, snap_compare, size):
    assert snap_compare(noc_app(theme=LOW_COLOUR_THEME), terminal_size=size,
                        run_before=noc_settle)


def test_no_color(noc_app, noc_settle, snap_compare, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(noc_app(), terminal_size=(80, 24), run_before=noc_settle)


@size_ids
def test_command_palette_open(noc_app, noc_settle, snap_compare, size):
    async def run_before(pilot):
        await noc_settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"ember")
        await pilot.pause()

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


async def open_customer_summary(pilot, mode_presses: int) -> None:
    app = pilot.app
    await testing.settle(pilot)
    app.open_account("customer", "acme-telecom")
    await testing.settle(pilot)
    app.screen.show_tab("summary")
    await testing.until(pilot, lambda: app.screen._last_snapshot is not None
                        and app.screen._last_snapshot.tab == "summary")
    for _ in range(mode_presses):
        await pilot.press("m")
    await testing.until(pilot, lambda: app.screen.panes["summary"].mode
                        == ("live", "daily", "monthly")[mode_presses])
    await testing.settle(pilot)


@size_ids
@pytest.mark.parametrize("mode", ["daily", "monthly"])
def test_customer_summary(noc_app, snap_compare, size, mode):
    async def run_before(pilot):
        await open_customer_summary(pilot, ["live", "daily", "monthly"].index(mode))

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


@size_ids
def test_export_result(noc_app, snap_compare, size):
    # The notification names the file: a fixed path, so that the snapshot is the same each run.
    target = Path(f"/tmp/noc-{size[0]}x{size[1]}.csv")
    target.unlink(missing_ok=True)

    async def run_before(pilot):
        await open_customer_summary(pilot, 1)
        await pilot.press("e")
        await testing.until(pilot, lambda: isinstance(pilot.app.screen, ExportScreen))
        pilot.app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await testing.until(pilot, lambda: any(pilot.app._notifications))
        await testing.settle(pilot)

    try:
        assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)
    finally:
        target.unlink(missing_ok=True)


LONG_NAME = "Helpline Contact Centres International Wholesale Voice Services Limited"


@size_ids
def test_long_names_and_huge_numbers(noc_db, noc_app, noc_settle, snap_compare, size):
    with closing(sqlite3.connect(noc_db)) as db, db:
        db.execute("UPDATE account SET name = ?, balance = 987654321987.65, channels = 99999999 "
                   "WHERE id = 'acme-telecom'", (LONG_NAME,))
        db.execute("UPDATE account SET name = ? WHERE id = 'ember-link'",
                   ("Ember Link Global Carrier Services and Termination Partners",))

    async def run_before(pilot):
        await noc_settle(pilot)
        await pilot.press("2")
        await noc_settle(pilot)

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(60, 20), (79, 23)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_terminal_smaller_than_80x24(noc_app, noc_settle, snap_compare, size):
    assert snap_compare(noc_app(), terminal_size=size, run_before=noc_settle)


@pytest.mark.parametrize("size", [(60, 20), (80, 24)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_a_terminal_below_80x24_is_told_what_it_misses(noc_app, noc_settle, size):
    app = noc_app()
    async with app.run_test(size=size) as pilot:
        await noc_settle(pilot)
        said = [n.message for n in app._notifications if "laid out for 80x24" in n.message]
        assert said == ([] if size == (80, 24) else [
            "This terminal is 60x20: noc is laid out for 80x24 or more, so some columns and "
            "panels are left out"])


@size_ids
def test_a_writer_catching_up_a_backlog(noc_seeded_template, tmp_path, snap_compare, size):
    """A writer storing a backlog (the demo's day of history) says how far it is, and the live
    figures wait for it: those of the backlog's moment are not today's."""
    db = testing.copy_database(noc_seeded_template, tmp_path / "noc.db")
    lock = testing.hold_writer_lock(db)
    try:
        StoreHealth(lock).behind(166_872, 400_000)  # the seeded seq: 41 %
        app = testing.make_app(db, clock=testing.fixed_clock())
        assert snap_compare(app, terminal_size=size, run_before=testing.settle)
    finally:
        lock.release()
