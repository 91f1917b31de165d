"""The protocol's printable rule: identifiers that break it are quarantined, however the frame
spells the character (escaped or raw UTF-8); any other text is stored as sent and shown with
its unprintable characters made visible."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import unicodedata

import pytest
from click.testing import CliRunner

from console.feed import protocol
from console.feed.printable import UNPRINTABLE, printable, printable_lines
from console.shell.cli import format_report, main
from console.shell.logs import FORMAT, CurrentStderrHandler, PrintableFormatter
from tests.test_ingest import Harness, ev

HIDDEN = ("Cc", "Cf", "Zl", "Zp")
# One of each kind a hostile feed would use: C1 CSI, escape, NUL, bidi override, zero-width
# space, line separator, byte order mark, a tag character, soft hyphen.
SAMPLES = ("\x9b", "\x1b", "\x00", "\u202e", "\u200b", "\u2028", "\ufeff", "\U000e0001", "\xad")


@pytest.fixture
def harness(tmp_path):
    h = Harness(tmp_path / "noc.db")
    yield h
    h.writer._connection.close()


def test_the_unprintable_characters_are_exactly_the_protocols():
    """Every Cc, Cf, Zl and Zp character, and no assigned character of another category (the
    pattern may hold code points a later Unicode assigns as format characters)."""
    matched = {code for code in range(sys.maxunicode + 1) if UNPRINTABLE.match(chr(code))}
    wanted = {code for code in range(sys.maxunicode + 1)
              if unicodedata.category(chr(code)) in HIDDEN}
    assert wanted <= matched
    assert {unicodedata.category(chr(code)) for code in matched - wanted} <= {"Cn"}


def test_the_raw_bytes_check_finds_every_unprintable_character():
    """The cheap look at a frame's bytes that decides whether identifiers are checked: every
    unprintable character, raw in UTF-8 or escaped, makes it look."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if UNPRINTABLE.match(char) and unicodedata.category(char) != "Cs":
            for ensure_ascii in (True, False):
                frame = json.dumps({"id": f"a{char}"}, ensure_ascii=ensure_ascii).encode()
                assert protocol._may_hold_unprintable(frame), hex(code)
    assert not protocol._may_hold_unprintable('{"name": "Müller – Société"}'.encode())


@pytest.mark.parametrize("char", SAMPLES, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("ensure_ascii", [True, False], ids=["escaped", "raw"])
def test_an_identifier_with_an_unprintable_character_is_quarantined(char, ensure_ascii):
    if char == "\x00" or char == "\x1b":
        ensure_ascii = True  # JSON allows C0 controls only escaped
    frame = json.dumps([
        ev(1, "account", 0, kind="customer", id=f"ac{char}me", name="Acme"),
        ev(2, "call.start", 0, call_id="c1", customer=f"x{char}", cli="1", dst="1"),
        ev(3, "call.attempt", 0, call_id="c1", attempt=1, carrier=f"{char}c", route="4"),
        ev(4, "account", 0, kind="customer", id="acme", name=f"Ac{char}me"),
    ], ensure_ascii=ensure_ascii)
    items = protocol.decode_frame(frame)
    assert [type(item).__name__ for item in items] == ["Rejected", "Rejected", "Rejected",
                                                       "Account"]
    for item, field in zip(items, ("id", "customer", "carrier"), strict=False):
        assert "printable" in item.reason and f"$.{field}" in item.reason
        assert char not in item.reason  # the reason shows the identifier escaped
    assert items[3].name == f"Ac{char}me"  # other text is kept as sent


def test_noc_report_does_not_store_or_print_a_c1_identifier(harness):
    """An id holding U+009B (a C1 CSI: ESC [ to a terminal) was stored and printed by `noc
    report`."""
    harness.feed([
        ev(1, "call.start", 0, call_id="c1", customer="ev\x9b2Jil", cli="1", dst="1"),
        ev(2, "call.end", 5, call_id="c1", code=486, duration=0.0),
    ])
    harness.flush()
    result = CliRunner().invoke(main, ["report", "--db", str(harness.path)])
    assert result.exit_code == 0, result.output
    assert "\x9b" not in result.output
    assert "2 quarantined" in result.output  # the start, and the end of a call never started


def test_noc_report_text_shows_what_an_older_store_holds_made_printable():
    figures = {"attempts": 1, "asr": None, "acd": None, "minutes": 0.0, "pdd_ms": None,
               "revenue": 0.0, "profit": 0.0, "consecutive_failures": 0, "code_200": 0,
               "code_404": 0}
    text = format_report({"from": 0, "to": 0, "last_seq": 1, "gaps": [], "quarantined": 0,
                          "customers": {"a\x1b]0;x\x07": figures}, "carriers": {}})
    assert "\x1b" not in text and "a\\x1b]0;x\\x07" in text


def test_printable_makes_every_unprintable_character_visible():
    assert printable("Acme Telecom") == "Acme Telecom"
    assert printable("\x1b]52;c;aGk=\x07x") == "\\x1b]52;c;aGk=\\x07x"
    assert printable("a\x9b\x00\u202e\u2028\n\U000e0001") == \
        "a\\x9b\\x00\\u202e\\u2028\\n\\U000e0001"
    assert printable("no\u00a0break – Société") == "no\u00a0break – Société"
    assert printable_lines("a\x1b\nb") == "a\\x1b\nb"


def test_a_log_line_quotes_the_feed_on_one_line_made_printable():
    record = logging.LogRecord("noc", logging.WARNING, __file__, 1,
                               "quarantined: %s", ("bad\x1b]0;x\x07\nFAKE line",), None)
    line = PrintableFormatter(FORMAT).format(record)
    assert "\n" not in line and "\x1b" not in line
    assert line.endswith("quarantined: bad\\x1b]0;x\\x07\\nFAKE line")


def test_a_log_line_never_lands_on_the_terminal_the_console_draws_on():
    """The console's log follows sys.stderr as it is at each line: while Textual draws, it
    redirects it, and a warning (a gap, a reconnection) no longer scribbles over the screen."""
    terminal, textual = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(terminal):
        handler = CurrentStderrHandler()  # set up before the console starts
    with contextlib.redirect_stderr(textual):  # as Textual does while it draws
        handler.emit(logging.LogRecord("feed", logging.WARNING, __file__, 1,
                                       "feed: gap 5..9: 5 events lost for good", (), None))
    assert (terminal.getvalue(), textual.getvalue()) == (
        "", "feed: gap 5..9: 5 events lost for good\n")
