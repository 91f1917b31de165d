"""The customer list and a customer's tabs: how they look on the seeded network, and what their
keys do (search, open, filter calls, a call's attempts, ending a call, export)."""

from __future__ import annotations

import csv
import sqlite3

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import Input, Static, TabbedContent

from console import testing
from screens.call_detail import CallDetail, why
from screens.confirm import Confirm
from screens.customer import CallFilter, CallsPane, CustomerScreen, DialogsPane
from screens.customers import CustomersScreen
from screens.formats import sip_code
from store.actions import request_control
from store.views import AttemptRow, CallRow
from widgets.export import ExportScreen
from widgets.live_table import Col, LiveTable
from widgets.window_table import WindowTable

SIZES = [(80, 24), (120, 40)]
TABS = ["stats", "routes", "calls", "dialogs", "alerts", "summary"]
size_ids = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")


def keys(table: LiveTable) -> list[str]:
    return [row.key.value for row in table.ordered_rows]


async def open_customers(pilot, settle) -> CustomersScreen:
    await settle(pilot)
    await pilot.press("2")
    await settle(pilot)
    return pilot.app.screen


async def open_customer(pilot, settle, tab: str = "stats") -> CustomerScreen:
    await open_customers(pilot, settle)
    await pilot.press("enter")  # the first customer by name: Acme Telecom
    await settle(pilot)
    screen = pilot.app.screen
    screen.query_one(TabbedContent).active = tab
    await pilot.pause()
    await settle(pilot)
    return screen


# How it looks ---------------------------------------------------------------------------------

@size_ids
def test_customer_list(noc_app, noc_settle, snap_compare, size):
    async def run_before(pilot):
        await open_customers(pilot, noc_settle)

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


@size_ids
@pytest.mark.parametrize("tab", TABS)
def test_customer_tab(noc_app, noc_settle, snap_compare, size, tab):
    async def run_before(pilot):
        await open_customer(pilot, noc_settle, tab)

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


@size_ids
def test_customer_codes_over_a_week(noc_app, noc_settle, snap_compare, size):
    async def run_before(pilot):
        await open_customer(pilot, noc_settle)
        await pilot.press("w", "left_square_bracket")  # the last graph: SIP codes
        await noc_settle(pilot)

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


@size_ids
def test_call_detail_of_a_failed_over_call(noc_app, noc_settle, snap_compare, size):
    async def run_before(pilot):
        screen = await open_customer(pilot, noc_settle, "calls")
        await select_failed_over_call(pilot, screen, noc_settle)

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


def test_confirm_before_ending_a_call(noc_app, noc_settle, snap_compare):
    async def run_before(pilot):
        await open_customer(pilot, noc_settle, "dialogs")
        await pilot.press("k")
        await pilot.pause()

    assert snap_compare(noc_app(), terminal_size=(80, 24), run_before=run_before)


@pytest.fixture
def penalised(noc_db):
    """Acme Telecom disabled for half an hour from five minutes ago, and a call hung up."""
    now = testing.FIXED_NOW_MS
    request_control(noc_db, action="disable", kind="customer", account="acme-telecom",
                    until_ms=now + 1_500_000, reason="ASR under 25 % for 15 min",
                    requested_by="console pid 4242", now_ms=now - 300_000)
    request_control(noc_db, action="hangup", call_id="s8-1795168710-14190", kind="customer",
                    account="acme-telecom", reason="ended from the console",
                    requested_by="console pid 4242", now_ms=now - 60_000)
    return noc_db


def test_customer_list_with_a_penalty(penalised, noc_app, noc_settle, snap_compare):
    async def run_before(pilot):
        await open_customers(pilot, noc_settle)

    assert snap_compare(noc_app(), terminal_size=(80, 24), run_before=run_before)


@size_ids
def test_alerts_tab_with_a_penalty_and_a_hangup(penalised, noc_app, noc_settle, snap_compare,
                                                size):
    async def run_before(pilot):
        await open_customer(pilot, noc_settle, "alerts")

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


async def test_an_account_in_penalty_never_reads_as_needing_nothing(penalised, noc_app,
                                                                   noc_settle):
    """Acme's penalty was asked for by hand (no alert fires on it): its Alerts tab still says
    that it needs attention, and why."""
    async with noc_app().run_test(size=(80, 24)) as pilot:
        screen = await open_customer(pilot, noc_settle, "alerts")
        checks = str(screen.query_one("#account-checks", Static).render())
        assert "nothing needs attention" not in checks
        assert "customer Acme Telecom: in penalty, 25 min left: ASR under 25 % for 15 min" in (
            checks)


# What the keys do -----------------------------------------------------------------------------

def listed(table: WindowTable) -> list[str]:
    return [key for key, _ in table.rows]


async def test_search_filters_the_list_live(noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_customers(pilot, noc_settle)
        table = screen.query_one(WindowTable)
        assert len(listed(table)) == 6
        await pilot.press("slash", *"nova")
        await testing.until(pilot, lambda: listed(table) == ["nova-mobile"])
        await pilot.press("escape")  # clears the search and goes back to the list
        await testing.until(pilot, lambda: len(listed(table)) == 6)
        assert table.has_focus


async def test_sort_key_keeps_the_cursor_on_its_customer(noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_customers(pilot, noc_settle)
        table = screen.query_one(WindowTable)
        await pilot.press("down", "down")
        chosen = table.highlighted_key
        await pilot.press("s", "s")  # from trouble to name, then by live channels
        await testing.until(pilot, lambda: screen.has_data)
        assert screen.sort == "channels" and listed(table) != sorted(listed(table))
        assert table.highlighted_key == chosen


async def test_enter_opens_the_customer(noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_customers(pilot, noc_settle)
        await pilot.press("down", "enter")
        await noc_settle(pilot)
        assert isinstance(app.screen, CustomerScreen)
        assert app.screen.account == "blue-voip"
        await pilot.press("escape")
        assert isinstance(app.screen, CustomersScreen)


async def test_tab_keys_switch_tabs_and_read_only_the_active_one(noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_customer(pilot, noc_settle)
        await pilot.press("greater_than_sign")
        await noc_settle(pilot)
        assert screen.active == "routes" and screen._last_snapshot.tab == "routes"
        await pilot.press("greater_than_sign", "greater_than_sign")  # quicker than a refresh
        await noc_settle(pilot)
        assert screen._last_snapshot.tab == "dialogs"
        await pilot.press(*["less_than_sign"] * 4)
        await noc_settle(pilot)
        assert screen.active == "summary" and screen._last_snapshot.tab == "summary"


async def test_another_customer_opens_on_the_same_screen_with_nothing_of_the_last(
        noc_app, noc_settle):
    """The customer screen is kept (mounting it again made opening one slow): the next customer
    opened starts on its first tab with no filter, and shows only its own calls."""
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        first = await open_customer(pilot, noc_settle, "calls")
        await pilot.press("slash", *"code:200")
        await noc_settle(pilot)
        await pilot.press("escape", "escape")
        await noc_settle(pilot)
        await pilot.press("down", "enter")  # the second customer by name
        await noc_settle(pilot)
        screen = app.screen
        assert screen is first and screen.account != "acme-telecom"
        assert screen.active == "stats" and screen._last_snapshot.account.id == screen.account
        assert str(screen.query_one("NocHeader #where").render()).endswith(
            screen._last_snapshot.account.name)
        screen.query_one(TabbedContent).active = "calls"
        await pilot.pause()
        await noc_settle(pilot)
        pane = screen.query_one(CallsPane)
        assert pane.display and pane.filter == CallFilter()
        assert screen.query_one("#calls-filter", Input).value == ""
        assert pane._calls and {c.customer for c in pane._calls.values()} == {screen.account}


async def test_latest_calls_filter_narrows_the_rows(noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_customer(pilot, noc_settle, "calls")
        pane = screen.query_one(CallsPane)
        everything = len(pane._calls)
        cli = next(c.cli for c in pane._calls.values()
                   if (c.code, c.carrier) == (200, "atlas-voice"))
        await pilot.press("slash", *f"{cli} code:200 carrier:atlas")
        await noc_settle(pilot)
        calls = list(pane._calls.values())
        assert 0 < len(calls) < everything
        assert {(c.cli, c.code, c.carrier) for c in calls} == {(cli, 200, "atlas-voice")}
        table = pane.query_one(LiveTable)
        assert keys(table) == list(pane._calls)
        # The carrier by its name in the rows and the status, as typed in the filter.
        assert {str(table.get_cell(key, "carrier")) for key in keys(table)} == {"Atlas Voice"}
        assert "carrier Atlas Voice" in str(pane.query_one("#calls-status").render())


async def test_enter_on_a_call_lists_its_attempts(noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_customer(pilot, noc_settle, "calls")
        call = await select_failed_over_call(pilot, screen, noc_settle)
        detail = app.screen
        assert isinstance(detail, CallDetail) and detail.call == call
        attempts = detail.query_one(LiveTable)
        assert len(keys(attempts)) == call.attempts
        assert "after failing over from" in str(detail.query_one("#call-why").render())
        assert "-" not in str(attempts.get_cell("1", "carrier"))  # a name, not an id
        await pilot.press("escape")
        assert app.screen is screen


async def test_ending_a_call_asks_the_writer_after_confirming(noc_app, noc_settle, noc_db):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_customer(pilot, noc_settle, "dialogs")
        call_id = screen.query_one(DialogsPane).query_one(LiveTable).highlighted_key
        await pilot.press("k")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await pilot.pause()
        assert app.screen is screen
    with sqlite3.connect(noc_db) as db:
        rows = db.execute("SELECT action, call_id, account FROM control_request "
                          "WHERE action = 'hangup'").fetchall()
    assert rows == [("hangup", call_id, "acme-telecom")]


async def test_saying_no_ends_nothing(noc_app, noc_settle, noc_db):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_customer(pilot, noc_settle, "dialogs")
        await pilot.press("k", "enter")  # Enter on the focused "No"
        await pilot.pause()
    with sqlite3.connect(noc_db) as db:
        assert db.execute("SELECT count(*) FROM control_request "
                          "WHERE action = 'hangup'").fetchone() == (0,)


async def test_read_only_console_refuses_to_end_a_call(noc_app, noc_settle, noc_db):
    app = noc_app(read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_customer(pilot, noc_settle, "dialogs")
        await pilot.press("k")
        await pilot.pause()
        assert app.screen is screen
        assert any("forbidden" in n.message for n in app._notifications)
    with sqlite3.connect(noc_db) as db:
        assert db.execute("SELECT count(*) FROM control_request "
                          "WHERE action = 'hangup'").fetchone() == (0,)


async def test_x_exports_the_shown_graph_to_csv(noc_app, noc_settle, tmp_path):
    app = noc_app()
    target = tmp_path / "asr.csv"
    async with app.run_test(size=(120, 40)) as pilot:
        await open_customer(pilot, noc_settle)
        await pilot.press("g", "g")  # ASR
        await noc_settle(pilot)
        await pilot.press("x")
        assert isinstance(app.screen, ExportScreen)
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await testing.until(pilot, lambda: any(str(target) in n.message
                                                for n in app._notifications))
    rows = list(csv.reader(target.open()))
    assert rows[0] == ["Time (UTC)", "ASR (%)"]
    assert len(rows) == 61 and rows[-1][0] == "2026-11-20 11:58"


# The parts ------------------------------------------------------------------------------------

def test_call_filter_reads_number_code_and_carrier():
    assert CallFilter.parse("44 code:503 carrier:Atlas") == CallFilter("44", 503, "atlas")
    assert CallFilter.parse("+4420").number == "4420"
    assert "“code:abc”" in CallFilter.parse("code:abc").problem


def test_why_explains_failover_and_where_routing_stops():
    call = CallRow(1, "c1", 0, "acme", "441", "492", "49", "delta-route", 200, 30.0, 2, 0.1,
                   900, "caller")
    failed = AttemptRow(1, "ember-link", "49", 0, 10, 503, "Service Unavailable", None, 0.0, True)
    answered = AttemptRow(2, "delta-route", "49", 10, 40, 200, "OK", 900, 30.0, True)
    assert why(call, [failed, answered]) == (
        "Answered by delta-route, after failing over from ember-link (503).")
    names = {("carrier", "delta-route"): "Delta Route", ("carrier", "ember-link"): "Ember Link"}
    assert why(call, [failed, answered], names) == (
        "Answered by Delta Route, after failing over from Ember Link (503).")
    busy = AttemptRow(1, "atlas-voice", "49", 0, 10, 486, "Busy Here", None, 0.0, True)
    assert "stops routing" in why(call, [busy])


def test_codes_read_without_colour_and_408_is_a_carrier_failure():
    assert (sip_code(408).plain, sip_code(408).style) == ("408 ✖", "red")
    assert (sip_code(503).plain, sip_code(503).style) == ("503 ✖", "red")
    assert (sip_code(200).plain, sip_code(200).style) == ("200 ✓", "green")
    assert (sip_code(404).plain, sip_code(404).style) == ("404", "")
    assert sip_code(486, "Busy Here").plain == "486 Busy Here"


class TableApp(App):
    def compose(self) -> ComposeResult:
        yield LiveTable([Col("name", "Name"), Col("value", "Value", "right")])


async def test_live_table_changes_rows_in_place_and_keeps_the_cursor():
    app = TableApp()
    async with app.run_test(size=(40, 10)) as pilot:
        table = app.query_one(LiveTable)
        table.set_rows([("a", ("alpha", "1")), ("b", ("beta", "2")), ("c", ("gamma", "3"))])
        await pilot.pause()
        table.move_cursor(row=1)
        cleared = []
        table.clear = lambda *args, **kwargs: cleared.append(args)
        table.set_rows([("n", ("new", "0")), ("b", ("beta", "20")), ("c", ("gamma", "3"))])
        await pilot.pause()
        assert keys(table) == ["n", "b", "c"]
        assert table.highlighted_key == "b"
        assert table.get_cell("b", "value") == Text("20", justify="right")
        assert not cleared


async def select_failed_over_call(pilot, screen: CustomerScreen, settle) -> CallRow:
    """Open the newest call that was tried on more than one carrier."""
    pane = screen.query_one(CallsPane)
    key, call = next((k, c) for k, c in pane._calls.items() if c.attempts > 1)
    table = pane.query_one(LiveTable)
    table.move_cursor(row=table.get_row_index(key), animate=False)
    await pilot.press("enter")
    await settle(pilot)
    await pilot.pause()
    return call
