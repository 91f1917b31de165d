"""The alerts, quarantine and help screens: how they look, and what their keys do (open a check,
read a quarantined input whole, page, export, list every key)."""

from __future__ import annotations

import csv
import json
import sqlite3

import pytest
from textual.widgets import Input, Log, OptionList, Static

from console import testing
from screens.alerts import AlertsScreen, ChecksPane
from screens.carrier import CarrierScreen
from screens.help import HelpScreen, key_rows, merged
from screens.quarantine import QuarantineScreen, RawInputModal, cut_lines
from store.actions import request_control
from store.views import ConsoleData
from tests.screens.test_carriers import ingest, open_carrier
from widgets.export import ExportScreen
from widgets.live_table import LiveTable

SIZES = [(80, 24), (120, 40)]
size_ids = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
# A frame several screens long, with newlines: the raw view must keep and show all of it.
LONG_FRAME = "\n".join(f'{{"seq": {n}, "type": "call.teleport", "ts": 1}}' for n in range(60))


def bad_frames(last_seq: int, now_s: float) -> list[object]:
    """One input of each kind of trouble, then a gap the server announces and a hole in seq."""
    return [
        "not json at all",
        {"seq": last_seq + 1, "type": "call.teleport", "ts": now_s - 50, "call_id": "x"},
        {"seq": last_seq + 2, "type": "call.answer", "ts": now_s - 40, "call_id": "ghost",
         "attempt": 1},
        {"seq": last_seq + 3, "type": "call.start", "ts": now_s - 30, "customer": "acme-telecom"},
        LONG_FRAME,
        {"type": "gap", "from": last_seq + 4, "to": last_seq + 120},
        {"seq": last_seq + 126, "type": "call.end", "ts": now_s - 5, "call_id": "ghost",
         "code": 200, "duration": 12.5},
    ]


@pytest.fixture
def troubled(noc_db):
    """The seeded network plus quarantined inputs and two gaps, all received at the fixed now."""
    ingest(noc_db, bad_frames)
    return noc_db


@pytest.fixture
def penalised(noc_db):
    """A standing penalty on ember-link, an acked hangup and a failed enable."""
    now = testing.FIXED_NOW_MS
    request_control(noc_db, action="disable", kind="carrier", account="ember-link",
                    until_ms=now + 3_000_000, reason="2,000 consecutive failures",
                    requested_by="console pid 4242", now_ms=now - 600_000)
    request_control(noc_db, action="hangup", call_id="s8-1795168710-14190", kind="customer",
                    account="acme-telecom", reason="stuck call", requested_by="console pid 4242",
                    now_ms=now - 300_000)
    request_control(noc_db, action="enable", kind="carrier", account="atlas-voice",
                    reason="back from maintenance", requested_by="console pid 4243",
                    now_ms=now - 120_000)
    with sqlite3.connect(noc_db) as db:
        db.execute("UPDATE control_request SET status = 'acked', done_ms = created_ms + 400 "
                   "WHERE action IN ('disable', 'hangup')")
        db.execute("UPDATE control_request SET status = 'failed', error = 'unknown account', "
                   "done_ms = created_ms + 300 WHERE action = 'enable'")
    return noc_db


async def open_mode(pilot, settle, key: str):
    await settle(pilot)
    await pilot.press(key)
    await settle(pilot)
    return pilot.app.screen


# How it looks ---------------------------------------------------------------------------------

async def open_checks(pilot, settle) -> ChecksPane:
    screen = await open_mode(pilot, settle, "4")
    screen.show_tab("checks")
    await testing.until(pilot, lambda: screen.has_data and screen._last_snapshot.tab == "checks")
    await settle(pilot)
    return screen.panes["checks"]


@size_ids
def test_alert_checks(penalised, troubled, noc_app, noc_settle, snap_compare, size):
    async def run_before(pilot):
        await open_checks(pilot, noc_settle)

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


@size_ids
def test_quarantine(troubled, noc_app, noc_settle, snap_compare, size):
    async def run_before(pilot):
        await open_mode(pilot, noc_settle, "5")

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


def test_quarantine_empty(noc_app, noc_settle, snap_compare):
    async def run_before(pilot):
        await open_mode(pilot, noc_settle, "5")

    assert snap_compare(noc_app(), terminal_size=(80, 24), run_before=run_before)


def test_raw_input(troubled, noc_app, noc_settle, snap_compare):
    async def run_before(pilot):
        await open_raw_input(pilot, noc_settle, LONG_FRAME)

    assert snap_compare(noc_app(), terminal_size=(80, 24), run_before=run_before)


@size_ids
def test_help_on_a_carrier(noc_app, noc_settle, snap_compare, size):
    async def run_before(pilot):
        await open_carrier(pilot, noc_settle)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


# Alerts ---------------------------------------------------------------------------------------

async def test_alerts_list_every_open_check_and_request(penalised, troubled, noc_app, noc_settle,
                                                        noc_db):
    now = testing.FIXED_NOW_MS
    checks = ConsoleData(noc_db).dashboard(now).checks
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_checks(pilot, noc_settle)
        assert isinstance(app.screen, AlertsScreen)
        assert pane.query_one("#checks", OptionList).option_count == len(checks)
        requests = pane.query_one("#requests", LiveTable)
        # The three above, and the seeded alert engine's: a disable and its enable for "Carrier
        # down", and a disable standing for "Ember Link watch".
        assert requests.row_count == 6
        statuses = [str(requests.get_row_at(row)[4]) for row in range(6)]
        assert {"✓ acked · in force", "✓ acked", "✖ failed: unknown account"} <= set(statuses)


async def test_enter_on_a_check_opens_its_account_or_the_quarantine(troubled, noc_app,
                                                                    noc_settle):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_checks(pilot, noc_settle)
        subjects = list(pane._subjects.values())
        await pilot.press("enter")  # the most severe check: ember-link's failures
        await noc_settle(pilot)
        assert subjects[0] == ("carrier", "ember-link")
        assert isinstance(app.screen, CarrierScreen) and app.screen.carrier == "ember-link"
        await pilot.press("4")
        await noc_settle(pilot)
        feed = next(n for n, subject in enumerate(subjects) if subject[0] == "feed")
        pane.query_one(OptionList).highlighted = feed
        await pilot.press("enter")
        await noc_settle(pilot)
        assert isinstance(app.screen, QuarantineScreen)


# Quarantine -----------------------------------------------------------------------------------

async def open_raw_input(pilot, settle, raw: str) -> RawInputModal:
    screen = await open_mode(pilot, settle, "5")
    row = next(key for key, row in screen._rows.items()
               if pilot.app.data.quarantine_raw(row.id) == raw)
    table = screen.query_one("#quarantine", LiveTable)
    table.move_cursor(row=table.get_row_index(row))
    await pilot.press("enter")
    await testing.until(pilot, lambda: isinstance(pilot.app.screen, RawInputModal)
                and pilot.app.screen.raw == raw)
    return pilot.app.screen


async def test_quarantine_and_gaps_are_listed_newest_first(troubled, noc_app, noc_settle, noc_db):
    data = ConsoleData(noc_db)
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_mode(pilot, noc_settle, "5")
        quarantined = screen.query_one("#quarantine", LiveTable)
        assert [row.key.value for row in quarantined.ordered_rows] == [
            str(row.id) for row in data.quarantine()]
        gaps = screen.query_one("#gaps", LiveTable)
        assert [str(gaps.get_row_at(n)[4]) for n in range(gaps.row_count)] == [
            "seen as a hole in seq", "announced by the server"]
        title = str(screen.query_one("#gaps-title", Static).render())
        assert "2 · 122 events lost for good" in title


async def test_enter_on_a_quarantined_input_shows_its_raw_text(troubled, noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        modal = await open_raw_input(pilot, noc_settle, LONG_FRAME)
        log = modal.query_one(Log)
        assert "".join(log.lines) == LONG_FRAME.replace("\n", "")  # each line, cut to fit
        assert all(len(line) < 80 for line in log.lines)
        assert "not JSON" in str(modal.query_one("#raw-reason", Static).render())
        await pilot.press("escape")
        assert isinstance(app.screen, QuarantineScreen)


async def test_pages_of_the_quarantine(troubled, noc_app, noc_settle, monkeypatch):
    monkeypatch.setattr("screens.quarantine.PAGE", 2)
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_mode(pilot, noc_settle, "5")
        table = screen.query_one("#quarantine", LiveTable)
        newest = [row.key.value for row in table.ordered_rows]
        await pilot.press("n")
        await testing.until(pilot, lambda: screen._last_snapshot.page_start == 2)
        older = [row.key.value for row in table.ordered_rows]
        assert len(newest) == len(older) == 2 and int(older[0]) < int(newest[-1])
        await pilot.press("p")
        await testing.until(pilot, lambda: screen._last_snapshot.page_start == 0)
        assert [row.key.value for row in table.ordered_rows] == newest


async def test_e_exports_the_quarantine_and_the_gaps(troubled, noc_app, noc_settle, tmp_path):
    target = tmp_path / "trouble.csv"
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_mode(pilot, noc_settle, "5")
        await pilot.press("e")
        assert isinstance(app.screen, ExportScreen)
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await testing.until(pilot, lambda: isinstance(app.screen, QuarantineScreen))
        assert any(str(target) in n.message and "trouble-gaps.csv" in n.message
                   for n in app._notifications)
    quarantined = list(csv.DictReader(target.open(encoding="utf-8")))
    assert len(quarantined) == 6
    assert LONG_FRAME in [row["raw"] for row in quarantined]  # whole, newlines included
    assert quarantined[0]["received (UTC)"] == "2026-11-20T11:58:30.000+00:00"
    gaps = list(csv.DictReader((tmp_path / "trouble-gaps.csv").open(encoding="utf-8")))
    assert [(g["from seq"], g["events lost"], g["how"]) for g in gaps] == [
        (gaps[0]["from seq"], "5", "seen as a hole in seq"),
        (gaps[1]["from seq"], "117", "announced by the server"),
    ]


def test_cut_lines_keeps_every_character():
    text = "abcdefghij\n\nxyz"
    assert cut_lines(text, 4) == ["abcd", "efgh", "ij", "", "xyz"]
    assert "".join(cut_lines(json.dumps(list(range(500))), 7)) == json.dumps(list(range(500)))


# Help -----------------------------------------------------------------------------------------

async def test_help_lists_every_global_key_and_the_screens(noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_carrier(pilot, noc_settle)  # the summary table of Main has the focus
        await pilot.press("question_mark")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        groups = dict(help_screen.groups())
        global_keys = " ".join(keys for keys, _ in groups["Global"])
        for key in ("1", "2", "3", "4", "5", "z", "?", "f1", "^r", "q", "^q", "^p"):
            assert key in global_keys.split()
        assert ("esc", "Back") in groups["This screen: Carrier"]
        table = dict((action, keys) for keys, action in groups["Summary table"])
        assert table["Copy"] == "c" and table["Copy+headers"] == "C" and table["Export"] == "e"
        assert table["Extend selection up, down, left, right"] == "shift+ ↑ ↓ ← →"
        assert ("m", "Live/Daily/Monthly") in groups["Summary"]
        palette = str(help_screen.query_one("#palette", Static).render())
        assert "ctrl+p" in palette and "customer or carrier name" in palette
        for close in ("escape", "q", "question_mark"):
            await pilot.press(close)
            assert isinstance(app.screen, CarrierScreen)
            await pilot.press("question_mark")
            await pilot.pause()


def test_keys_of_one_action_share_a_row():
    assert merged([("?", "Help"), ("f1", "Help")]) == ("? f1", "Help")
    assert merged([("pgup", "Move a page up"), ("pgdn", "Move a page down")]) == (
        "pgup pgdn", "Move a page up, down")


async def test_help_leaves_out_system_keys(noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await noc_settle(pilot)
        assert all("^c" not in keys.split() for keys, _ in key_rows(app))
