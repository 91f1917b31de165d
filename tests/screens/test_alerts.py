"""The Alerts screen's engine tabs on the seeded network, where the real alert engine has fired
"Carrier down" and "Ember Link watch" on ember-link (in penalty), and "Low ASR" on Swift Dialer
(acknowledged by ana): how they look, and what their keys do."""

from __future__ import annotations

import csv
import threading

import pytest
from textual.widgets import Input, Static

from console import testing
from screens import alert_panes
from screens.alert_dialogs import AcknowledgeDialog, SilenceDialog
from screens.alert_message import MessageModal
from screens.alerts import AlertsScreen
from screens.carrier import CarrierScreen
from screens.confirm import Confirm
from store.alerting import AlertData
from store.views import ConsoleData
from tests.screens.test_carriers import open_carrier
from widgets.live_table import LiveTable

SIZES = [(80, 24), (120, 40)]
TABS = ["firing", "rules", "silences", "history", "penalties", "outbox"]
size_ids = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
NOW = testing.FIXED_NOW_MS


async def open_alerts(pilot, settle, tab: str = "firing") -> AlertsScreen:
    await settle(pilot)
    await pilot.press("4")
    screen = pilot.app.screen
    screen.show_tab(tab)
    await testing.until(pilot, lambda: screen.has_data and screen._last_snapshot.tab == tab)
    await settle(pilot)
    return screen


def cells(table: LiveTable, row: int) -> list[str]:
    return [str(cell) for cell in table.get_row_at(row)]


def column(table: LiveTable, key: str) -> list[str]:
    index = [col.key for col in table._shown].index(key)
    return [cells(table, row)[index] for row in range(table.row_count)]


# How it looks ---------------------------------------------------------------------------------

@size_ids
@pytest.mark.parametrize("tab", TABS)
def test_alerts_tab(tab, noc_app, noc_settle, snap_compare, size):
    async def run_before(pilot):
        await open_alerts(pilot, noc_settle, tab)

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


def test_acknowledge_dialog(noc_app, noc_settle, snap_compare):
    async def run_before(pilot):
        await open_alerts(pilot, noc_settle)
        await pilot.press("a")
        await pilot.pause()

    assert snap_compare(noc_app(), terminal_size=(80, 24), run_before=run_before)


def test_silence_dialog(noc_app, noc_settle, snap_compare):
    async def run_before(pilot):
        await open_alerts(pilot, noc_settle)
        await pilot.press("s")
        await pilot.pause()

    assert snap_compare(noc_app(), terminal_size=(80, 24), run_before=run_before)


# Firing ---------------------------------------------------------------------------------------

async def test_firing_lists_unacknowledged_alerts_first(noc_app, noc_settle):
    async with noc_app().run_test(size=(120, 40)) as pilot:
        screen = await open_alerts(pilot, noc_settle)
        table = screen.query_one("#firing", LiveTable)
        assert column(table, "alert") == ["Ember Link watch", "Carrier down", "Low ASR"]
        assert column(table, "status") == ["● firing", "● firing", "✓ acked by ana"]
        assert column(table, "value") == ["2,963", "2,963", "22.1%"]
        assert column(table, "repeat")[2] == "–"  # acknowledged: it no longer repeats


async def test_the_highlighted_alert_reads_in_full_with_its_metric_and_reset(noc_app,
                                                                             noc_settle):
    async with noc_app().run_test(size=(80, 24)) as pilot:
        screen = await open_alerts(pilot, noc_settle)
        table = screen.query_one("#firing", LiveTable)
        line = screen.query_one("#firing-line", Static)
        assert str(line.render()) == ("Ember Link watch · Ember Link: Consecutive failures 2,963 "
                                      "≥ 1,000, clears at ≤ 0 · since 11:57:45")
        table.move_cursor(row=2)
        await testing.until(pilot, lambda: "Low ASR" in str(line.render()))
        assert str(line.render()) == ("Low ASR · Swift Dialer: ASR 22.1% ≤ 30%, clears at ≥ "
                                      "35% · since 11:28:30")
        await pilot.press("a")
        await testing.until(pilot, lambda: isinstance(pilot.app.screen, AcknowledgeDialog))
        assert pilot.app.screen.what == (
            "Low ASR · Swift Dialer: ASR 22.1% ≤ 30%, clears at ≥ 35%")


async def test_history_at_80_columns_shows_values_whole_and_cuts_details_at_a_word(
        noc_app, noc_settle, noc_db):
    details = {str(h.id): h.detail for h in AlertData(noc_db).history()}
    async with noc_app().run_test(size=(80, 24)) as pilot:
        screen = await open_alerts(pilot, noc_settle, "history")
        table = screen.query_one("#history", LiveTable)
        values = dict(zip(column(table, "event"), column(table, "value"), strict=False))
        assert values["fired"] == values["repeat"] == "2,963"
        keys = [row.key.value for row in table.ordered_rows]
        for key, shown in zip(keys, column(table, "detail"), strict=True):
            whole = details[key] or "–"
            assert shown == whole or (shown.endswith("…") and whole.startswith(shown[:-1])
                                      and whole[len(shown) - 1] == " "), (shown, whole)


async def test_a_acknowledges_the_highlighted_alert(noc_app, noc_settle, noc_db):
    async with noc_app().run_test(size=(120, 40)) as pilot:
        screen = await open_alerts(pilot, noc_settle)
        table = screen.query_one("#firing", LiveTable)
        table.move_cursor(row=1)  # Carrier down
        await pilot.press("a")
        await testing.until(pilot, lambda: isinstance(pilot.app.screen, AcknowledgeDialog))
        await pilot.press(*"ticket 4711", "enter")
        await testing.until(pilot, lambda: "acked by" in column(table, "status")[1])
    state = next(s for s in AlertData(noc_db).firing() if s.title == "Carrier down")
    assert state.acked_by and state.ack_comment == "ticket 4711" and state.acked_ms == NOW
    acked = AlertData(noc_db).history(event="acked", limit=1)[0]
    assert (acked.rule_title, acked.detail) == ("Carrier down", "ticket 4711")


async def test_a_write_waiting_on_the_store_leaves_the_console_answering(
        noc_app, noc_settle, noc_db, monkeypatch):
    """An acknowledgement is written on a thread: while it waits (held here until the test lets
    it go, as a store kept busy by another program would hold it), keys still switch tabs."""
    let_go, written = threading.Event(), []
    acknowledge = alert_panes.alerting.acknowledge

    def held(*args, **kwargs):
        let_go.wait(60)
        written.append(acknowledge(*args, **kwargs))

    monkeypatch.setattr(alert_panes.alerting, "acknowledge", held)
    try:
        async with noc_app().run_test(size=(120, 40)) as pilot:
            screen = await open_alerts(pilot, noc_settle)
            screen.query_one("#firing", LiveTable).move_cursor(row=1)  # Carrier down
            await pilot.press("a")
            await testing.until(pilot, lambda: isinstance(pilot.app.screen, AcknowledgeDialog))
            await pilot.press(*"ticket 4712", "enter", ">")
            await testing.until(pilot, lambda: screen.active == "rules")
            assert not written  # the tab switched while the write waited
            let_go.set()
            await testing.until(pilot, lambda: written)
    finally:
        let_go.set()
    state = next(s for s in AlertData(noc_db).firing() if s.title == "Carrier down")
    assert state.ack_comment == "ticket 4712"


async def test_s_silences_the_rule_for_one_account(noc_app, noc_settle, noc_db):
    async with noc_app().run_test(size=(120, 40)) as pilot:
        screen = await open_alerts(pilot, noc_settle)
        await pilot.press("s")
        await testing.until(pilot, lambda: isinstance(pilot.app.screen, SilenceDialog))
        dialog = pilot.app.screen
        dialog.query_one("#duration", Input).value = "2h"
        dialog.query_one("#comment", Input).value = "carrier's maintenance"
        await pilot.press("enter")
        await testing.until(pilot, lambda: pilot.app.screen is screen)
        await testing.until(pilot, lambda: any(s.comment for s in AlertData(noc_db).silences(NOW)))
    silence = next(s for s in AlertData(noc_db).silences(NOW) if s.comment)
    watch = AlertData(noc_db).rule("Ember Link watch")
    assert (silence.rule_id, silence.kind, silence.account) == (watch.id, "carrier", "ember-link")
    assert silence.until_ms == NOW + 2 * 3_600_000
    assert silence.comment == "carrier's maintenance"


async def test_a_bad_duration_keeps_the_silence_dialog_open(noc_app, noc_settle, noc_db):
    before = len(AlertData(noc_db).silences(NOW))
    async with noc_app().run_test(size=(80, 24)) as pilot:
        await open_alerts(pilot, noc_settle)
        await pilot.press("s")
        await testing.until(pilot, lambda: isinstance(pilot.app.screen, SilenceDialog))
        pilot.app.screen.query_one("#duration", Input).value = "soon"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(pilot.app.screen, SilenceDialog)
        message = str(pilot.app.screen.query_one(".message", Static).render())
        assert "'soon' is not a duration" in message
    assert len(AlertData(noc_db).silences(NOW)) == before


async def test_a_read_only_console_changes_nothing(noc_app, noc_settle):
    async with noc_app(read_only=True).run_test(size=(120, 40)) as pilot:
        screen = await open_alerts(pilot, noc_settle)
        await pilot.press("a")
        await pilot.pause()
        assert pilot.app.screen is screen
        assert any("Read-only" in n.message for n in pilot.app._notifications)


async def test_enter_on_an_alert_opens_its_account(noc_app, noc_settle):
    async with noc_app().run_test(size=(120, 40)) as pilot:
        await open_alerts(pilot, noc_settle)
        await pilot.press("enter")
        await testing.until(pilot, lambda: isinstance(pilot.app.screen, CarrierScreen))
        assert pilot.app.screen.carrier == "ember-link"


# Rules ----------------------------------------------------------------------------------------

def rule_row(table: LiveTable, title: str) -> int:
    return column(table, "rule").index(title)


async def press_on_rule(pilot, settle, title: str, key: str) -> LiveTable:
    """On the Rules tab, highlight the rule `title` and press `key`; return the rules table."""
    screen = await open_alerts(pilot, settle, "rules")
    table = screen.query_one("#rules", LiveTable)
    table.move_cursor(row=rule_row(table, title))
    await pilot.press(key)
    return table


async def answer(pilot, key: str) -> None:
    await testing.until(pilot, lambda: isinstance(pilot.app.screen, Confirm))
    await pilot.press(key)


async def test_rules_show_each_rules_worst_state(noc_app, noc_settle, noc_db):
    async with noc_app().run_test(size=(120, 40)) as pilot:
        screen = await open_alerts(pilot, noc_settle, "rules")
        table = screen.query_one("#rules", LiveTable)
        titles = column(table, "rule")
        assert titles == sorted(r.title for r in AlertData(noc_db).rules())
        status = dict(zip(titles, column(table, "status"), strict=True))
        assert status["Carrier down"] == "● firing"
        assert status["Feed quarantine"] == "✓ ok"
        assert status["PDD high"] == "? too few calls"
        condition = dict(zip(titles, column(table, "condition"), strict=True))
        assert condition["Low ASR"] == "ASR ≤ 30%, clears at ≥ 35%"


async def test_space_disables_and_enables_a_rule(noc_app, noc_settle, noc_db):
    async with noc_app().run_test(size=(120, 40)) as pilot:
        table = await press_on_rule(pilot, noc_settle, "Low ASR", "space")
        await testing.until(pilot, lambda: column(table, "status")[
            rule_row(table, "Low ASR")] == "– disabled")
        assert not AlertData(noc_db).rule("Low ASR").enabled
        await pilot.press("space")
        await testing.until(pilot, lambda: AlertData(noc_db).rule("Low ASR").enabled)


async def test_d_deletes_a_rule_after_asking(noc_app, noc_settle, noc_db):
    async with noc_app().run_test(size=(120, 40)) as pilot:
        table = await press_on_rule(pilot, noc_settle, "PDD high", "d")
        await answer(pilot, "n")
        assert AlertData(noc_db).rule("PDD high") is not None
        await pilot.press("d")
        await answer(pilot, "y")
        await testing.until(pilot, lambda: "PDD high" not in column(table, "rule"))
    assert AlertData(noc_db).rule("PDD high") is None


async def test_t_queues_a_test_message_to_the_rules_recipients(noc_app, noc_settle, noc_db):
    async with noc_app().run_test(size=(120, 40)) as pilot:
        await press_on_rule(pilot, noc_settle, "Low balance", "t")
        await answer(pilot, "y")
        await testing.until(pilot, lambda: AlertData(noc_db).outbox(status="pending"))
    queued = AlertData(noc_db).outbox(status="pending")
    assert sorted(m.recipient for m in queued) == ["billing@example.net", "noc@example.net"]
    assert all(m.event == "test" for m in queued)
    assert AlertData(noc_db).history(event="test", limit=1)[0].rule_title == "Low balance"


async def test_enter_and_n_open_the_rule_editor(noc_app, noc_settle, noc_db):
    from screens.rule_editor import RuleEditor

    async with noc_app().run_test(size=(120, 40)) as pilot:
        screen = await open_alerts(pilot, noc_settle, "rules")
        await pilot.press("enter")
        await testing.until(pilot, lambda: isinstance(pilot.app.screen, RuleEditor))
        editor = pilot.app.screen
        assert (editor.rule_id, editor.initial["title"]) == (
            AlertData(noc_db).rule("CPS limit breached").id, "CPS limit breached")
        await pilot.press("escape")
        await testing.until(pilot, lambda: pilot.app.screen is screen)
        await pilot.press("n")
        await testing.until(pilot, lambda: isinstance(pilot.app.screen, RuleEditor))
        assert pilot.app.screen.rule_id is None


# Silences, history, penalties, outbox ------------------------------------------------------------

async def test_silences_list_and_end(noc_app, noc_settle, noc_db):
    async with noc_app().run_test(size=(120, 40)) as pilot:
        screen = await open_alerts(pilot, noc_settle, "silences")
        table = screen.query_one("#silences", LiveTable)
        assert cells(table, 0)[1:5] == ["Low ASR", "customer Nova Mobile", "–",
                                        "maintenance window at the customer"]
        await pilot.press("d")
        await testing.until(pilot, lambda: isinstance(pilot.app.screen, Confirm))
        await pilot.press("y")
        await testing.until(pilot, lambda: table.row_count == 0)
    assert AlertData(noc_db).silences(NOW) == []
    assert AlertData(noc_db).history(event="unsilenced", limit=1)


async def test_history_search_and_event_groups(noc_app, noc_settle, noc_db):
    total = AlertData(noc_db).history_count()
    async with noc_app().run_test(size=(120, 40)) as pilot:
        screen = await open_alerts(pilot, noc_settle, "history")
        table = screen.query_one("#history", LiveTable)
        assert table.row_count == total
        await pilot.press("slash", *"SMS")
        await testing.until(pilot, lambda: table.row_count == 1)
        assert column(table, "event") == ["failed"]
        await pilot.press("escape", "f")  # clears the search; alerts only
        await testing.until(pilot, lambda: 0 < table.row_count < total)
        assert set(column(table, "event")) <= {"fired", "notified", "repeat", "resolved"}
        count = str(screen.query_one("#history-count", Static).render())
        assert count.startswith(f"alerts · {table.row_count}")


async def test_e_exports_the_whole_history(noc_app, noc_settle, noc_db, tmp_path):
    target = tmp_path / "history.csv"
    async with noc_app().run_test(size=(120, 40)) as pilot:
        await open_alerts(pilot, noc_settle, "history")
        await pilot.press("e")
        await testing.until(pilot, lambda: pilot.app.screen.query("Input"))
        pilot.app.screen.query_one("Input", Input).value = str(target)
        await pilot.press("enter")
        await testing.until(pilot, target.exists)
    rows = list(csv.reader(target.open()))
    assert rows[0][:3] == ["time (UTC)", "event", "rule"]
    assert len(rows) - 1 == AlertData(noc_db).history_count()
    # The account's id, and its name beside it.
    assert ["penalty", "Carrier down", "carrier", "ember-link", "Ember Link"] in [
        r[1:6] for r in rows]


async def test_penalties_show_who_is_disabled_until_when(noc_app, noc_settle):
    async with noc_app().run_test(size=(120, 40)) as pilot:
        screen = await open_alerts(pilot, noc_settle, "penalties")
        table = screen.query_one("#penalties", LiveTable)
        assert cells(table, 0)[:4] == ["carrier Ember Link", "● disabled, 15 min left",
                                       "11:57:45", "12:12:45"]
        assert cells(table, 1)[1:4] == ["✓ back", "11:28:30", "11:29:30"]


async def test_outbox_lists_messages_and_enter_reads_one(noc_app, noc_settle):
    async with noc_app().run_test(size=(120, 40)) as pilot:
        screen = await open_alerts(pilot, noc_settle, "outbox")
        table = screen.query_one("#outbox", LiveTable)
        assert "✖ failed" in column(table, "status")
        title = str(screen.query_one("#outbox-title", Static).render())
        assert title.startswith("0 waiting · 5 sent · 1 failed")
        await pilot.press("enter")
        await testing.until(pilot, lambda: isinstance(pilot.app.screen, MessageModal))
        text = " ".join(str(s.render()) for s in pilot.app.screen.query(Static))
        assert "Carrier down" in text and "Ember Link" in text


async def test_outbox_subjects_at_80x24_are_shortened_at_a_word(noc_app, noc_settle, noc_db):
    subjects = {str(m.id): m.subject for m in AlertData(noc_db).outbox(limit=200)}
    async with noc_app().run_test(size=(80, 24)) as pilot:
        screen = await open_alerts(pilot, noc_settle, "outbox")
        table = screen.query_one("#outbox", LiveTable)
        await pilot.pause()
        shown = dict(zip((row.key.value for row in table.ordered_rows),
                         (str(table.render_line(n + 1).text) for n in range(table.row_count)),
                         strict=False))
        assert any("…" in line for line in shown.values())
        for key, line in shown.items():
            text = line.rstrip()
            if text.endswith("…"):
                subject = subjects[key]
                prefix = text[text.index(subject[:10]):-1].rstrip()
                assert subject.startswith(prefix), (prefix, subject)
                assert subject[len(prefix)] == " "  # cut between words, not inside one


# The same state elsewhere -----------------------------------------------------------------------

def test_the_dashboard_checklist_shows_the_engines_alerts(noc_db):
    checks = ConsoleData(noc_db).dashboard(NOW).checks
    rules = [c.rule for c in checks if c.rule]
    assert rules == ["Carrier down", "Ember Link watch", "Low ASR"]  # acknowledged last
    assert checks[0].text == ("carrier Ember Link: Carrier down, Consecutive failures 2,963 ≥ "
                              "100, clears at ≤ 0")
    low_asr = next(c for c in checks if c.rule == "Low ASR")
    assert low_asr.muted and low_asr.text.endswith("· acknowledged by ana")
    assert checks[-1] is low_asr  # muted: after every other check
    # Ember Link's penalty stands: an account in penalty needs attention too.
    assert any(c.subject == ("carrier", "ember-link") and "in penalty, 15 min left" in c.text
               for c in checks)
    # A rule watches ember-link's failures: the console's own check of them gives way.
    assert not any("consecutive failures" in c.text for c in checks)


async def test_the_carriers_alerts_tab_shows_its_rules_and_penalty(noc_app, noc_settle, noc_db):
    async with noc_app().run_test(size=(120, 40)) as pilot:
        screen = await open_carrier(pilot, noc_settle, tab="alerts")
        table = screen.query_one("#account-rules", LiveTable)
        states = dict(zip(column(table, "rule"), column(table, "status"), strict=True))
        assert states["Carrier down"] == "● firing"
        assert states["PDD high"] == "? too few calls"
        penalty = str(screen.query_one("#account-penalty", Static).render())
        assert "in penalty until 12:12 · rule Ember Link watch" in penalty
        table.move_cursor(row=column(table, "rule").index("Carrier down"))
        await pilot.press("a")
        await testing.until(pilot, lambda: isinstance(pilot.app.screen, AcknowledgeDialog))
        await pilot.press("enter")
        await testing.until(pilot, lambda: "acked by" in " ".join(column(table, "status")))
    assert next(s for s in AlertData(noc_db).firing() if s.title == "Carrier down").acked_by


async def test_quick_tab_keys_go_round_and_stay(noc_app, noc_settle):
    """Seven quick `>` come back to Firing, and it stays there (a late focus of a tab left
    since must not switch back to it)."""
    async with noc_app().run_test(size=(80, 24)) as pilot:
        screen = await open_alerts(pilot, noc_settle)
        await pilot.press(*[">"] * 7)
        for _ in range(10):
            await pilot.pause(0.1)
            assert screen.query_one("TabbedContent").active == "tab-firing"
        assert screen.active == "firing"
        assert screen.focused is screen.query_one("#firing", LiveTable)


async def test_a_long_history_is_counted_only_so_far(noc_app, noc_settle, monkeypatch):
    monkeypatch.setattr(alert_panes, "HISTORY_COUNTED", 5)
    monkeypatch.setattr(alert_panes, "HISTORY_PAGE", 3)
    async with noc_app().run_test(size=(120, 40)) as pilot:
        screen = await open_alerts(pilot, noc_settle, "history")
        count = str(screen.query_one("#history-count", Static).render())
        assert count.startswith("all events · 5+, newest 3 ·")
