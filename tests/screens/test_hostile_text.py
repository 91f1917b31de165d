"""A hostile feed against the real console: names, numbers, reasons and raw frames holding
escape sequences (an OSC 52 clipboard write, a window title, a clear screen, a hyperlink, C1
controls, NUL, a bidi override) and markup. What reaches the terminal holds none of them: each
control character is shown as its escape (`\\x1b`), and markup reads as itself (clicking a
name that says `[@click=app.quit]` does nothing)."""

from __future__ import annotations

import csv
import re
import stat
import time
import unicodedata
from pathlib import Path

import pytest
from textual.widgets import Input, Log, TabbedContent

from console import testing
from screens.call_detail import CallDetail
from screens.chrome import NocHeader
from screens.customer import CallsPane, CustomerScreen
from screens.quarantine import QuarantineScreen, RawInputModal
from tests.screens.test_carriers import ingest
from widgets.export import ExportScreen
from widgets.live_table import LiveTable
from widgets.window_table import WindowTable

OSC52 = "\x1b]52;c;cm0gLXJmIH4K\x07"  # puts "rm -rf ~" on the clipboard
TITLE = "\x1b]0;owned\x07"
CLEAR = "\x1b[2J"
HYPERLINK = "\x1b]8;;https://evil.example\x1b\\"
CLICK = "[@click=app.quit]x[/]"
CUSTOMERS = {
    "osc52": f"Clip{OSC52}board",
    "title": f"{TITLE}Title",
    "clear": f"{CLEAR}\x9b31mClear\x00",
    "click": CLICK,
    "bidi": "evil\u202egnp.exe",
}
CARRIERS = {"blink": f"Blink\x1b[5m{HYPERLINK}link"}
REASON = f"Busy{OSC52} here"
RAW_FRAME = f'{TITLE}=HYPERLINK("https://evil.example","x")'
FORMULA_FRAME = '=HYPERLINK("https://evil.example","x")'  # a formula to a spreadsheet
# What Textual itself writes to draw a screen: colours (SGR) and cursor moves, nothing else.
TEXTUAL_SEQUENCE = re.compile(r"\x1b\[[0-9;]*[mH]")


def hostile_events(now_s: float) -> list[dict]:
    """Accounts with hostile names, and one failed call of customer `clear` through carrier
    `blink` whose CLI, destination and reason are hostile too (no seqs: the caller's)."""
    events = [{"type": "account", "ts": now_s - 120, "kind": "customer", "id": id_, "name": name,
               "currency": "\x1b[8mUSD", "balance": 10.0} for id_, name in CUSTOMERS.items()]
    events += [{"type": "account", "ts": now_s - 120, "kind": "carrier", "id": id_,
                "name": name} for id_, name in CARRIERS.items()]
    call = {"call_id": "hostile-1"}
    return events + [
        {"type": "call.start", "ts": now_s - 60, **call, "customer": "clear",
         "cli": "\x1b[31m+1555", "dst": "44\x0020"},
        {"type": "call.attempt", "ts": now_s - 60, **call, "attempt": 1, "carrier": "blink",
         "route": "44"},
        {"type": "call.attempt_end", "ts": now_s - 55, **call, "attempt": 1, "code": 486,
         "reason": REASON},
        {"type": "call.end", "ts": now_s - 55, **call, "code": 486, "duration": 0.0},
    ]


def drawn(app) -> str:
    """What the terminal is sent to draw the whole screen now."""
    return app.screen._compositor.render_full_update().render_segments(app.console)


def screen_text(app) -> str:
    return "\n".join("".join(segment.text for segment in strip)
                     for strip in app.screen._compositor.render_strips())


def assert_harmless(app) -> None:
    """Nothing on screen is a control, format or separator character; the terminal is sent
    Textual's own colours and cursor moves only."""
    unprintable = sorted({f"U+{ord(c):04X}" for c in TEXTUAL_SEQUENCE.sub("", drawn(app))
                          if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")})
    assert not unprintable, f"{type(app.screen).__name__} writes {unprintable}"


async def test_a_hostile_feed_reaches_no_terminal_raw(noc_feed, tmp_path):
    """The lists, an account's header and strip, a call's detail (its reason), the quarantine
    and its raw view, the command palette and a notification, fed live by a scripted feed."""
    sent = noc_feed.send(hostile_events(time.time()))
    app = testing.make_app(tmp_path / "live.db", feed_url=noc_feed.url, refresh=0.2)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await testing.until(pilot, lambda: app.service is not None
                            and app.service.committed_seq >= sent[-1]["seq"])
        noc_feed.send_raw(RAW_FRAME)
        await testing.until(pilot, lambda: app.data.quarantine_count() >= 1)

        await pilot.press("2")
        await testing.until(pilot, lambda: app.screen.query_one(WindowTable).total == 5)
        assert_harmless(app)
        assert "Clip\\x1b]52;c;cm0gL…" in screen_text(app)  # 20 characters of it, as shown
        await pilot.press("3")
        await testing.until(pilot, lambda: app.screen.query_one(WindowTable).total == 1)
        assert_harmless(app)
        assert "Blink\\x1b[5m\\x1b]8;…" in screen_text(app)

        app.open_account("customer", "clear")
        await testing.settle(pilot)
        screen = app.screen
        assert_harmless(app)
        assert "Customers › \\x1b[2J\\x9b31mClear\\x00" in screen_text(app)
        screen.query_one(TabbedContent).active = "calls"
        await testing.until(pilot, lambda: screen.query_one(CallsPane).query_one(
            LiveTable).row_count == 1)
        await pilot.press("enter")
        await testing.until(pilot, lambda: isinstance(app.screen, CallDetail)
                            and app.screen.query_one(LiveTable).row_count == 1)
        assert_harmless(app)
        assert "Busy\\x1b]52;c;cm0gLXJmIH4K\\x07 here" in screen_text(app)
        assert "\\x1b[31m+1555 → 44\\x0020" in screen_text(app)
        await pilot.press("escape")

        await pilot.press("5")
        await testing.until(pilot, lambda: isinstance(app.screen, QuarantineScreen)
                            and app.screen.has_data)
        await testing.settle(pilot)
        assert_harmless(app)
        await pilot.press("enter")
        await testing.until(pilot, lambda: isinstance(app.screen, RawInputModal)
                            and app.screen.query_one(Log).lines)
        assert_harmless(app)
        assert '\\x1b]0;owned\\x07=HYPERLINK("https://evil.example","x")' in screen_text(app)
        await pilot.press("escape")

        await pilot.press("ctrl+p")
        await pilot.press(*"click")
        await testing.until(pilot, lambda: "Open customer [@click" in screen_text(app))
        assert_harmless(app)
        await pilot.press("escape")

        app.notify(f"Asked the writer to end call {CLICK}{TITLE}")
        await testing.until(pilot, lambda: "[@click=app.quit]x[/]\\x1b]0;owned\\x07" in
                            screen_text(app))
        assert_harmless(app)
        await app.action_quit()


async def test_a_name_written_as_markup_is_shown_as_written_and_does_nothing(noc_feed,
                                                                             tmp_path):
    """A customer named `[@click=app.quit]x[/]` quit the console when its name was clicked in
    the customer screen's header."""
    sent = noc_feed.send(hostile_events(time.time()))
    app = testing.make_app(tmp_path / "live.db", feed_url=noc_feed.url, refresh=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await testing.until(pilot, lambda: app.service is not None
                            and app.service.committed_seq >= sent[-1]["seq"])
        app.open_account("customer", "click")
        await testing.until(pilot, lambda: isinstance(app.screen, CustomerScreen)
                            and app.screen.name_shown == CLICK)
        await testing.settle(pilot)
        header = app.screen.query_one(NocHeader)
        where = "noc › Customers › "
        assert f"{where}{CLICK}" in screen_text(app)
        for x in range(len(where), len(where) + len(CLICK)):
            await pilot.click(header.query_one("#where"), offset=(x, 0))
        await pilot.pause()
        assert app.return_code is None and isinstance(app.screen, CustomerScreen)
        await app.action_quit()


@pytest.fixture
def hostile(noc_db):
    """The seeded network, plus the hostile accounts, call and frame, stored by the real path."""
    def frames(last_seq: int, now_s: float) -> list[object]:
        events = hostile_events(now_s)
        for seq, event in enumerate(events, start=last_seq + 1):
            event["seq"] = seq
        return [events, RAW_FRAME, FORMULA_FRAME]

    ingest(noc_db, frames)
    return noc_db


def test_customer_list_with_hostile_names(hostile, noc_app, noc_settle, snap_compare):
    async def run_before(pilot):
        await noc_settle(pilot)
        await pilot.press("2")
        await noc_settle(pilot)
        assert_harmless(pilot.app)

    assert snap_compare(noc_app(), terminal_size=(80, 24), run_before=run_before)


def test_call_detail_with_a_hostile_reason(hostile, noc_app, noc_settle, snap_compare):
    async def run_before(pilot):
        await noc_settle(pilot)
        pilot.app.open_account("customer", "clear")
        await noc_settle(pilot)
        screen = pilot.app.screen
        screen.query_one(TabbedContent).active = "calls"
        await testing.until(pilot, lambda: screen.query_one(CallsPane).query_one(
            LiveTable).row_count == 1)
        await pilot.press("enter")
        await testing.until(pilot, lambda: isinstance(pilot.app.screen, CallDetail)
                            and pilot.app.screen.query_one(LiveTable).row_count == 1)
        await noc_settle(pilot)
        assert_harmless(pilot.app)

    assert snap_compare(noc_app(), terminal_size=(80, 24), run_before=run_before)


async def test_the_quarantine_exports_to_a_private_folder_and_fools_no_spreadsheet(
        hostile, noc_app, noc_settle):
    """Exports went to the home folder, 0644, and a quarantined `=HYPERLINK(...)` came out as
    a formula; now by default to `exports/` beside noc's data (0700), each file 0600, and a
    text cell that a spreadsheet would evaluate is quoted."""
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await noc_settle(pilot)
        await pilot.press("5")
        await noc_settle(pilot)
        await pilot.press("e")
        assert isinstance(app.screen, ExportScreen)
        target = Path(app.screen.query_one(Input).value)
        await pilot.press("enter")
        await testing.until(pilot, lambda: not isinstance(app.screen, ExportScreen))
    folder = hostile.parent / "exports"
    assert target.parent == folder and target.name.startswith("noc-quarantine-")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    gaps = target.with_name(f"{target.stem}-gaps.csv")
    assert [stat.S_IMODE(path.stat().st_mode) for path in (target, gaps)] == [0o600, 0o600]
    raws = [row["raw"] for row in csv.DictReader(target.open(encoding="utf-8", newline=""))]
    assert f"'{FORMULA_FRAME}" in raws and FORMULA_FRAME not in raws
    assert RAW_FRAME in raws  # kept whole: it starts with ESC, which no spreadsheet evaluates
