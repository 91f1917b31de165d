"""Every figure on the carrier and customer screens agrees with `noc report` for the same range.

A short outage feed from the real simulator is stored by a real writer in a SQLite file, once for
the module. A viewer then opens every tab of a carrier's and a customer's screen at 80x24 and at
120x40 through the pilot, reads what its widgets show (the text of each figure, not pixels) and
compares each figure with the report (`noc report --json`'s Reader) over the range it covers; where
the report has no such figure (billed time, failovers, channels, balances, graphs by end time, the
calls listed), with the brute-force reference (tests/reference.py) over the recorded events.

Each disagreement is listed as `screen · tab · field: shown X, expected Y`; the test fails on any.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Static

from console import testing
from screens.base import DataScreen
from screens.carrier import CarrierScreen
from screens.customer import CustomerScreen
from screens.dashboard import DashboardScreen
from screens.summary import SummaryPane
from store.queries import Reader
from tests.feedkit import REPO, read_record, run_service, running_simulator
from tests.reference import Reference
from tests.test_open_buckets import no_dip
from widgets.big_number import BigNumber
from widgets.live_table import LiveTable
from widgets.series_plot import SeriesPlot
from widgets.summary_table import SummaryTable

# Live traffic from 00:20 UTC on the 1st of a month after 26 h of quiet history: the summaries
# have hourly rows, three days and two months to compare.
LIVE_FROM = datetime(2025, 12, 1, 0, 20, tzinfo=UTC).timestamp()
EVENTS = 40_000  # about 17 minutes of live traffic at 5 calls a second, the outage in it
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
SIZES = [(80, 24), (120, 40)]
size_ids = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")


@dataclass
class StoredOutage:
    db: Path
    reference: Reference
    now_ms: int  # the newest event stored: the viewer's clock
    down: str  # the carrier in an outage
    currency: str


async def _store(db: Path, record: Path) -> str:
    async with running_simulator(speed=0, start=LIVE_FROM, quiet_history=26 * 3600,
                                 scenario="outage", cps=5, seed=3, limit=EVENTS,
                                 record=record) as (sim, url):
        async with run_service(db, url) as ingesting:
            await ingesting.until_committed(EVENTS)
        return sim.traffic.incidents[0].target


@pytest.fixture(scope="module")
def outage(tmp_path_factory) -> StoredOutage:
    folder = tmp_path_factory.mktemp("outage")
    db, record = folder / "noc.db", folder / "events.jsonl"
    down = asyncio.run(_store(db, record))
    reference = Reference(read_record(record))
    currencies = {a.get("currency") for a in reference.replay.accounts.values()} - {None}
    assert len(currencies) == 1
    return StoredOutage(db, reference, Reader(db).feed_state().newest_ms, down, currencies.pop())


# Reading what a widget shows ---------------------------------------------------------------

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def text_of(static: Static) -> str:
    """A Static's content as plain text, one line per row (wide enough never to wrap)."""
    console = Console(file=StringIO(), width=400, color_system=None, legacy_windows=False)
    with console.capture() as captured:
        console.print(static.content)
    return captured.get()


def agrees(shown: str, expected: float | None) -> bool:
    """`shown` is `expected` as a reader takes it: to the decimals shown (a dash for None)."""
    if expected is None:
        return shown.strip() in ("–", "-", "")
    found = NUMBER.search(shown)
    if found is None:
        return False
    digits = found[0].replace(",", "")
    decimals = len(digits.partition(".")[2])
    return abs(float(digits) - expected) <= 0.5 * 10 ** -decimals + 1e-9


@dataclass
class Findings:
    """Every figure compared, and those that disagree."""

    compared: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    def check(self, where: str, shown: str, expected: float | None) -> None:
        self.compared.append(where)
        if not agrees(shown, expected):
            self.wrong.append(f"{where}: shown {shown!r}, expected {expected!r}")

    def equal(self, where: str, shown: object, expected: object) -> None:
        self.compared.append(where)
        if shown != expected:
            self.wrong.append(f"{where}: shown {shown!r}, expected {expected!r}")


def report(outage: StoredOutage, start_ms: int, end_ms: int) -> dict:
    """`noc report --json --from --to` over [start, end), as its Reader answers."""
    return Reader(outage.db).report(start_ms, end_ms)


def hour_window(now_ms: int, hours: int) -> tuple[int, int]:
    end = now_ms - now_ms % HOUR + HOUR
    return end - hours * HOUR, end


def minute_window(now_ms: int, minutes: int) -> tuple[int, int]:
    end = now_ms - now_ms % MINUTE + MINUTE
    return end - minutes * MINUTE, end


def pdd_s(figures: dict) -> float | None:
    return None if figures["pdd_ms"] is None else figures["pdd_ms"] / 1000


def profit_pct(figures: dict) -> float | None:
    return 100 * figures["profit"] / figures["revenue"] if figures["revenue"] else None


def cps_now(outage: StoredOutage, kind: str, account: str) -> int:
    """Calls (a carrier's: attempts) started in the second of the newest event."""
    second = int(outage.reference.feed_ts)
    replay = outage.reference.replay
    if kind == "customer":
        return sum(call.customer == account and int(call.start_ts) == second
                   for call in replay.calls.values())
    return sum(attempt.carrier == account and int(attempt.attempt_ts) == second
               for call in replay.calls.values() for attempt in call.attempts.values())


def name(outage: StoredOutage, kind: str, account: str) -> str:
    return outage.reference.account(kind, account).get("name", account)


# Driving the screens -----------------------------------------------------------------------

async def until_shown(pilot, screen: DataScreen, tab: str) -> None:
    await testing.until(pilot, lambda: screen.has_data and screen._last_snapshot.tab == tab)
    await testing.settle(pilot)


async def open_tab(pilot, screen: DataScreen, tab: str) -> None:
    """As `<` `>` do: the tab, and the keys to its pane (a pane that takes the focus makes
    its tab the active one)."""
    screen.show_tab(tab)
    screen.focus_pane()
    await pilot.pause()
    await until_shown(pilot, screen, tab)


async def open_account(pilot, kind: str, account: str) -> DataScreen:
    await testing.settle(pilot)
    pilot.app.open_account(kind, account)
    await testing.settle(pilot)
    screen = pilot.app.screen
    await testing.until(pilot, lambda: screen.has_data and screen.account == account)
    return screen


def summary_range(label: str, mode: str) -> tuple[int, int]:
    """The [start, end) ms a summary row's label stands for (UTC)."""
    if mode == "monthly":
        start = datetime.strptime(label, "%Y-%m").replace(tzinfo=UTC)
        year, month = divmod(start.year * 12 + start.month, 12)
        end = datetime(year, month + 1, 1, tzinfo=UTC)
        return int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    pattern, length = ("%Y-%m-%d %H:%M", HOUR) if mode == "live" else ("%Y-%m-%d", DAY)
    start_ms = int(datetime.strptime(label, pattern).replace(tzinfo=UTC).timestamp() * 1000)
    return start_ms, start_ms + length


SUMMARY_FIGURES = {  # a summary column -> its figure in a report's account
    "attempts": lambda f: f["attempts"], "connected": lambda f: f["answered"],
    "asr": lambda f: f["asr"], "acd": lambda f: f["acd"], "duration": lambda f: f["minutes"],
    "revenue": lambda f: f["revenue"], "cost": lambda f: f["cost"],
    "profit": lambda f: f["profit"], "profit_pct": profit_pct, "pdd": pdd_s,
    "ner": lambda f: f["ner"],
}
RATIOS = ("asr", "acd", "profit_pct", "pdd", "ner")


async def check_summary(pilot, pane, mode: str, outage: StoredOutage, kind: str, account: str,
                        where: str, found: Findings) -> None:
    """Each row of the summary in `mode`, and its totals row, against the report over its range
    (billed time and calls in progress against the reference)."""
    summary = pane.query_one(SummaryPane)
    if summary.mode != mode:
        summary.query_one("Tabs").active = mode
        await testing.until(pilot, lambda: _summary_mode_shown(summary, mode))
        await testing.settle(pilot)
    sheet = summary.query_one(SummaryTable).sheet
    keys = [column.key for column in sheet.columns]
    assert sheet.texts, f"{where}: no rows"
    rows = [(row[0], summary_range(row[0], mode), row) for row in sheet.texts]
    start, end = rows[-1][1][0], rows[0][1][1]
    rows.append(("Total", (start, end), sheet.total_texts))
    for label, (lo, hi), texts in rows:
        figures = report(outage, lo, hi)[kind + "s"][account]
        going = outage.reference.in_progress(kind, account, lo / 1000, hi / 1000)
        cells = dict(zip(keys, texts, strict=True))
        at = f"{where} · {mode} {label}"
        found.check(f"{at} · In progress", cells["in_progress"], going or None)
        for key, figure in SUMMARY_FIGURES.items():
            expected = figure(figures)
            if going and key in RATIOS:
                found.equal(f"{at} · {key}", cells[key], "open")
            else:
                found.check(f"{at} · {key}", cells[key], expected)
        found.check(f"{at} · billed", cells["billed"],
                    outage.reference.billed_minutes(kind, account, lo / 1000, hi / 1000))


def _summary_mode_shown(summary: SummaryPane, mode: str) -> bool:
    texts = summary.query_one(SummaryTable).sheet.texts
    length = {"live": 16, "daily": 10, "monthly": 7}[mode]
    return bool(texts) and len(texts[0][0]) == length


async def check_stats(pilot, screen: DataScreen, outage: StoredOutage, kind: str, account: str,
                      where: str, found: Findings) -> None:
    """The hour's graphs (each minute by end time, as graphs plot) against the reference, and
    the codes against the report over the hours they cover."""
    await open_tab(pilot, screen, "stats")
    pane = screen.panes["stats"]
    side = kind + "s"
    lo, hi = minute_window(outage.now_ms, 60)
    by_minute = [outage.reference.report(t / 1000, (t + MINUTE) / 1000, by_end=True)[side][account]
                 for t in range(lo, hi, MINUTE)]
    graphs = {"attempts": lambda f: f["attempts"], "asr": lambda f: f["asr"],
              "acd": lambda f: f["acd"], "pdd": pdd_s}
    if kind == "customer":
        graphs["dtmf_pct"] = lambda f: f["dtmf_pct"]
    for metric in pane.metrics:
        if metric.key == "codes":
            await _show_metric(pilot, screen, pane, metric)
            _check_codes(pane, outage, kind, account, where, found)
        elif metric.key in graphs:
            await _show_metric(pilot, screen, pane, metric)
            data = pane.query_one(SeriesPlot)._data
            assert data.times == tuple(t // 1000 for t in range(lo, hi, MINUTE)), where
            (_, values), = data.series
            for time, value, figures in zip(data.times, values, by_minute, strict=True):
                minute = datetime.fromtimestamp(time, UTC).strftime("%H:%M")
                expected = graphs[metric.key](figures)
                found.compared.append(f"{where} · Stats {metric.short} {minute}")
                if not (value is None and expected is None or value is not None
                        and expected is not None and abs(value - expected) < 1e-9):
                    found.wrong.append(f"{where} · Stats {metric.short} {minute}: shown "
                                       f"{value!r}, expected {expected!r}")


async def _show_metric(pilot, screen, pane, metric) -> None:
    while pane.metric is not metric:
        pane.action_metric(1)
    await testing.until(pilot, lambda: pane._snapshot is not None
                        and pane._snapshot.metric is metric)
    await testing.settle(pilot)


def _check_codes(pane, outage: StoredOutage, kind: str, account: str, where: str,
                 found: Findings) -> None:
    lo, _ = minute_window(outage.now_ms, 60)
    lo -= lo % HOUR
    _, hi = minute_window(outage.now_ms, 60)
    figures = report(outage, lo, hi)[kind + "s"][account]
    table = pane.query_one("#stats-codes", LiveTable)
    counts = {key.value: str(table.get_row(key)[2]) for key in table.rows}
    total = sum(int(count.replace(",", "")) for count in counts.values())
    found.equal(f"{where} · Stats Codes · all codes", total, figures["attempts"])
    answered = figures["code_200"] if kind == "carrier" else figures["answered"]
    found.check(f"{where} · Stats Codes · 200", counts.get("200", "0"), answered)
    if kind == "carrier":
        found.check(f"{where} · Stats Codes · 404", counts.get("404", "0"), figures["code_404"])


def facts(static: Static) -> dict[str, list[str]]:
    """`label  a · b · c` lines (screens.carrier.facts_table) as {label: [a, b, c]}."""
    found = {}
    for line in text_of(static).splitlines():
        label, _, rest = line.strip().partition("  ")
        if rest:
            found[label] = [part.strip() for part in rest.strip().split(" · ")]
    return found


def cells_by_label(table: LiveTable) -> Iterator[tuple[str, dict[str, str]]]:
    """Each row shown: its key, and {column label: text} of the columns shown."""
    labels = [str(column.label) for column in table.ordered_columns]
    for row in table.ordered_rows:
        yield row.key.value, dict(zip(labels, (str(c) for c in table.get_row(row.key)),
                                      strict=True))


# The carrier's screen ----------------------------------------------------------------------

async def check_carrier(pilot, outage: StoredOutage, carrier: str, found: Findings) -> None:
    screen = await open_account(pilot, "carrier", carrier)
    assert isinstance(screen, CarrierScreen)
    where = "{}x{} carrier {}".format(*pilot.app.size, carrier)
    ref = outage.reference
    everything = Reader(outage.db).report()["carriers"][carrier]
    day_lo, day_hi = hour_window(outage.now_ms, 24)
    day = report(outage, day_lo, day_hi)["carriers"][carrier]

    await open_tab(pilot, screen, "main")
    main = screen.panes["main"]
    found.equal(f"{where} · Main · consecutive failures", main.query_one(BigNumber)._value,
                everything["consecutive_failures"])
    consistency = {" ".join(line.split()[:-2]): line.split()[-2:]
                   for line in text_of(main.query_one("#consistency", Static)).splitlines()[1:]
                   if line.strip()}
    for label, key in (("200 answered", "code_200"), ("404 not found", "code_404")):
        found.check(f"{where} · Main · {label} 24 h", consistency[label][0], day[key])
        found.check(f"{where} · Main · {label} all time", consistency[label][1], everything[key])
    for column, figures in ((0, day), (1, everything)):
        shares = figures["code_200"] + figures["code_404"]
        found.check(f"{where} · Main · 404 share {('24 h', 'all time')[column]}",
                    consistency["404 share"][column],
                    100 * figures["code_404"] / shares if shares else None)
    shown = facts(main.query_one("#facts", Static))
    failover, answered_there = ref.failovers(carrier, day_lo / 1000, day_hi / 1000)
    found.check(f"{where} · Main · failed here, retried elsewhere", shown["Failover 24 h"][0],
                failover)
    found.check(f"{where} · Main · answered there", shown["Failover 24 h"][1], answered_there)
    last_day = dict(zip(("attempts", "asr", "acd", "pdd", "minutes", "revenue", "cost", "profit"),
                        shown["Last 24 h"], strict=True))
    last_day["channels"] = shown["Now"][0]
    for key, expected in (("attempts", day["attempts"]), ("asr", day["asr"]),
                          ("acd", day["acd"]), ("pdd", pdd_s(day)),
                          ("minutes", day["minutes"]), ("revenue", day["revenue"]),
                          ("cost", day["cost"]), ("profit", day["profit"]),
                          ("channels", ref.channels("carrier", carrier))):
        found.check(f"{where} · Main · last 24 h {key}", last_day[key], expected)
    for key in ("revenue", "cost", "profit"):
        found.equal(f"{where} · Main · last 24 h {key} currency",
                    last_day[key].split()[-1], outage.currency)
    for mode in ("live", "daily", "monthly"):
        await check_summary(pilot, main, mode, outage, "carrier", carrier, f"{where} · Main",
                            found)

    await open_tab(pilot, screen, "failover")
    pane = screen.panes["failover"]
    shown = facts(pane.query_one("#failover-counts", Static))
    found.check(f"{where} · Failover · failed here, retried elsewhere",
                shown["Failover 24 h"][0], failover)
    found.check(f"{where} · Failover · answered there", shown["Failover 24 h"][1],
                answered_there)
    check_failover_rows(pane, outage, carrier, where, found)

    await check_stats(pilot, screen, outage, "carrier", carrier, where, found)
    await open_tab(pilot, screen, "alerts")  # no rule on this feed: nothing to compare


def check_failover_rows(pane, outage: StoredOutage, carrier: str, where: str,
                        found: Findings) -> None:
    """Each call listed against the recorded one: what failed here, who answered, how long;
    and the list is every such call of the last 7 days (up to its 200), newest first."""
    calls = outage.reference.closed_calls()
    since = (outage.now_ms - 7 * DAY) / 1000
    failed_over = []
    for seq, call in calls.items():
        for number, attempt in call.attempts.items():
            after = call.attempts.get(number + 1)
            if (attempt.carrier == carrier and after is not None and after.code is not None
                    and 200 <= after.code < 300 and not 200 <= attempt.code < 300
                    and attempt.attempt_ts >= since):
                failed_over.append((attempt.attempt_ts, seq, attempt, after, call))
    failed_over.sort(key=lambda row: row[:2], reverse=True)
    table = pane.query_one(LiveTable)
    shown = list(cells_by_label(table))
    found.equal(f"{where} · Failover · calls listed", [int(key) for key, _ in shown],
                [seq for _, seq, *_ in failed_over[:200]])
    for (key, cells), (_, _, attempt, after, call) in zip(shown, failed_over, strict=False):
        at = f"{where} · Failover · call {key}"
        found.equal(f"{at} failed here", cells["Failed here"].split()[0], str(attempt.code))
        found.equal(f"{at} answered by", cells["Answered by"],
                    name(outage, "carrier", after.carrier))
        found.check(f"{at} talk", cells["Talk (s)"], call.duration_ms / 1000)
    summary = pane.query_one("#failover-summary", Static)
    if summary.display:
        pairs = Counter((attempt.code, name(outage, "carrier", after.carrier))
                        for _, _, attempt, after, _ in failed_over)
        lines = text_of(summary).splitlines()[1:]
        for line in lines[:5]:
            if line.strip() and "more pairs" not in line:
                code = int(line.split()[0])
                count = line.split()[-1]
                answered_by = next(n for (c, n) in pairs if c == code and n in line)
                found.check(f"{where} · Failover summary · {code} → {answered_by}", count,
                            pairs[(code, answered_by)])


# The customer's screen ---------------------------------------------------------------------

async def check_customer(pilot, outage: StoredOutage, customer: str, found: Findings) -> None:
    screen = await open_account(pilot, "customer", customer)
    assert isinstance(screen, CustomerScreen)
    where = "{}x{} customer {}".format(*pilot.app.size, customer)
    ref = outage.reference
    account = ref.account("customer", customer)

    await check_stats(pilot, screen, outage, "customer", customer, where, found)
    strip = str(screen.query_one("#strip", Static).content)
    if "last hour: " in strip:  # the strip leaves out what does not fit whole (at 80 columns)
        hour_lo, hour_hi = minute_window(outage.now_ms, 60)
        hour = report(outage, hour_lo, hour_hi)["customers"][customer]
        last_hour = strip.partition("last hour: ")[2].split(" · ")
        for text, expected in zip(last_hour, (hour["attempts"], hour["asr"], hour["acd"],
                                              pdd_s(hour)), strict=False):
            found.check(f"{where} · strip · last hour {text.split()[0]}", text, expected)
    balance = strip.partition("Balance ")[2].split("  ")[0]
    found.check(f"{where} · strip · balance", balance.replace("▼", ""), account["balance"])
    found.equal(f"{where} · strip · balance currency", balance.split()[1], outage.currency)
    channels = strip.partition("Channels ")[2].split()
    channels = channels[1] if channels[0] == "▲" else channels[0]
    found.check(f"{where} · strip · channels", channels.split("/")[0],
                ref.channels("customer", customer))
    found.check(f"{where} · strip · channel limit", channels.split("/")[1],
                account.get("channels"))
    cps = strip.partition("CPS ")[2].split()
    cps = cps[1] if cps[0] == "▲" else cps[0]
    found.check(f"{where} · strip · CPS", cps.split("/")[0], cps_now(outage, "customer", customer))

    await open_tab(pilot, screen, "routes")
    check_routes(screen.panes["routes"], outage, customer, where, found)
    await open_tab(pilot, screen, "calls")
    check_latest_calls(screen.panes["calls"], outage, customer, where, found)
    await open_tab(pilot, screen, "dialogs")
    going = text_of(screen.panes["dialogs"].query_one("#dialogs-status", Static))
    found.check(f"{where} · Dialogs · calls in progress", going,
                ref.in_progress("customer", customer, None, None))
    await open_tab(pilot, screen, "alerts")
    await open_tab(pilot, screen, "summary")
    for mode in ("live", "daily", "monthly"):
        await check_summary(pilot, screen.panes["summary"], mode, outage, "customer", customer,
                            f"{where} · Summary", found)


def check_routes(pane, outage: StoredOutage, customer: str, where: str, found: Findings) -> None:
    lo, hi = hour_window(outage.now_ms, 24)
    ref = outage.reference
    day = report(outage, lo, hi)["customers"][customer]
    live = Counter(call.route for call in ref.open_calls() if call.customer == customer)
    breaches = defaultdict(int)
    shown_attempts = 0
    for route, cells in cells_by_label(pane.query_one(LiveTable)):
        at = f"{where} · Route Stats · {route}"
        for label, reason in (("Ch. breach", "channel_limit"), ("CPS breach", "cps_limit"),
                              ("Other", "other")):
            if label in cells:
                breaches[reason] += int(cells[label].strip("▲ ").replace(",", ""))
        shown_attempts += int(cells["Attempts"].replace(",", ""))
        if route == "-":
            continue
        figures = ref.report(lo / 1000, hi / 1000, route=route)["customers"][customer]
        found.check(f"{at} · Live ch.", cells["Live ch."], live[route])
        found.check(f"{at} · Attempts", cells["Attempts"], figures["attempts"])
        found.check(f"{at} · ASR", cells["ASR"], figures["asr"])
        if "ACD (s)" in cells:
            found.check(f"{at} · ACD", cells["ACD (s)"], figures["acd"])
    found.equal(f"{where} · Route Stats · attempts of all routes", shown_attempts,
                day["attempts"])
    for reason, count in breaches.items():
        found.equal(f"{where} · Route Stats · {reason} breaches of all routes", count,
                    day["breaches"][reason])


def check_latest_calls(pane, outage: StoredOutage, customer: str, where: str,
                       found: Findings) -> None:
    """Each ended call listed against the recorded one; and no ended call newer than the
    oldest listed is missing."""
    calls = outage.reference.closed_calls()
    shown = list(cells_by_label(pane.query_one(LiveTable)))
    assert shown, where
    listed = [int(key) for key, _ in shown if not key.startswith("r")]
    oldest = min(calls[seq].start_ts for seq in listed)
    found.equal(f"{where} · Latest Calls · calls listed", sorted(listed, reverse=True), sorted(
        (seq for seq, call in calls.items()
         if call.customer == customer and call.start_ts >= oldest), reverse=True))
    for key, cells in shown:
        if key.startswith("r"):
            continue
        call = calls[int(key)]
        at = f"{where} · Latest Calls · call {key}"
        answered = 200 <= call.code < 300
        found.equal(f"{at} time", cells["Time"],
                    datetime.fromtimestamp(call.start_ts, UTC).strftime("%H:%M:%S"))
        found.equal(f"{at} code", cells["Code"].split()[0], str(call.code))
        last = call.attempts[max(call.attempts)] if call.attempts else None
        answering = next((a for a in call.attempts.values() if a.code and 200 <= a.code < 300),
                         last)
        if "Carrier" in cells:
            found.equal(f"{at} carrier", cells["Carrier"],
                        name(outage, "carrier", answering.carrier) if answering else "–")
        if "Dur. (s)" in cells:
            found.check(f"{at} duration", cells["Dur. (s)"],
                        call.duration_ms / 1000 if answered else None)
        if "Att." in cells:
            found.check(f"{at} attempts", cells["Att."], len(call.attempts) or None)
        if "PDD (s)" in cells:
            found.check(f"{at} PDD", cells["PDD (s)"], None if call.progress_ts is None else
                        (round(call.progress_ts * 1000) - round(call.start_ts * 1000)) / 1000)
        charge = f"Charge ({outage.currency})"  # the customer's charge, in its currency
        if charge in cells:
            found.check(f"{at} charge", cells[charge], call.charge_micro / 1e6 or None)


# The tests ---------------------------------------------------------------------------------

def busiest(outage: StoredOutage, kind: str) -> list[str]:
    everything = Reader(outage.db).report()[kind + "s"]
    return sorted(everything, key=lambda a: -everything[a]["attempts"])


@size_ids
async def test_every_figure_on_a_carrier_screen_agrees_with_the_report(outage, size):
    others = [c for c in busiest(outage, "carrier") if c != outage.down]
    found = Findings()
    lock = testing.hold_writer_lock(outage.db)
    try:
        app = testing.make_app(outage.db, clock=testing.fixed_clock(outage.now_ms))
        async with app.run_test(size=size) as pilot:
            for carrier in (outage.down, others[0]):
                await check_carrier(pilot, outage, carrier, found)
    finally:
        lock.release()
    assert not found.wrong, "\n".join(found.wrong)
    assert len(found.compared) > 500


@size_ids
async def test_every_figure_on_a_customer_screen_agrees_with_the_report(outage, size):
    found = Findings()
    lock = testing.hold_writer_lock(outage.db)
    try:
        app = testing.make_app(outage.db, clock=testing.fixed_clock(outage.now_ms))
        async with app.run_test(size=size) as pilot:
            for customer in busiest(outage, "customer")[:2]:
                await check_customer(pilot, outage, customer, found)
    finally:
        lock.release()
    assert not found.wrong, "\n".join(found.wrong)
    assert len(found.compared) > 500


def test_noc_report_json_is_the_reader_s_report(outage, tmp_path):
    """The figures compared above are `noc report --json`'s: the command prints the Reader's."""
    lo, hi = hour_window(outage.now_ms, 24)
    printed = subprocess.run(
        [sys.executable, "-m", "console.shell.cli", "report", "--db", str(outage.db), "--json",
         "--from", str(lo / 1000), "--to", str(hi / 1000)],
        cwd=REPO, capture_output=True, text=True, check=True,
        env={"NOC_CONFIG": str(tmp_path / "absent.toml"), "PATH": "/usr/bin:/bin"},
    ).stdout
    assert json.loads(printed) == report(outage, lo, hi)


# The newest points of the graphs -----------------------------------------------------------

RATIO_GRAPHS = ("asr", "acd", "pdd")
WARM_UP_MS = 5 * MINUTE  # by end time, the first minutes of traffic hold its short calls only


def dips(outage: StoredOutage, where: str, times, series) -> list[str]:
    """The series whose newest point lies below the noise of the live minutes before it."""
    found = []
    live = [i for i, t in enumerate(times) if t * 1000 >= LIVE_FROM * 1000 + WARM_UP_MS]
    for name_, values in series:
        before = [values[i] for i in live[:-1] if values[i] is not None]
        newest = values[live[-1]]
        if len(before) < 3:
            continue  # a carrier that answered nothing has no ACD to compare
        if newest is None or not no_dip(newest, before):
            found.append(f"{where} {name_}: newest {newest!r} after {before!r}")
    return found


async def test_the_newest_points_of_the_graphs_do_not_dip_while_calls_are_in_progress(outage):
    """Dashboard (total and per carrier), carrier and customer Stats: ASR, ACD and PDD of the
    newest minute are within the noise of the minutes before, on the stored outage feed with
    hundreds of calls still talking."""
    assert len(outage.reference.open_calls()) > 100
    found: list[str] = []
    lock = testing.hold_writer_lock(outage.db)
    try:
        app = testing.make_app(outage.db, clock=testing.fixed_clock(outage.now_ms))
        async with app.run_test(size=(120, 40)) as pilot:
            await testing.settle(pilot)
            dashboard = app.screen
            assert isinstance(dashboard, DashboardScreen)
            for per_carrier in (True, False):  # per carrier is slow to read: not kept on
                if dashboard.per_carrier != per_carrier:
                    dashboard.action_per_carrier()
                for graph in RATIO_GRAPHS:
                    while dashboard.graph != graph:
                        dashboard.action_next_graph()
                    await testing.until(pilot, partial(_dashboard_shows, dashboard, graph,
                                                       per_carrier))
                    data = dashboard.query_one("#graph", SeriesPlot)._data
                    found += dips(outage, f"dashboard {graph}", data.times, data.series)
            for kind in ("carrier", "customer"):
                for account in busiest(outage, kind)[:3]:
                    screen = await open_account(pilot, kind, account)
                    await open_tab(pilot, screen, "stats")
                    pane = screen.panes["stats"]
                    for metric in pane.metrics:
                        if metric.key in RATIO_GRAPHS:
                            await _show_metric(pilot, screen, pane, metric)
                            data = pane.query_one(SeriesPlot)._data
                            found += dips(outage, f"{kind} {account} Stats {metric.key}",
                                          data.times, data.series)
    finally:
        lock.release()
    assert not found, "\n".join(found)


def _dashboard_shows(dashboard: DashboardScreen, graph: str, per_carrier: bool) -> bool:
    snapshot = dashboard._last_snapshot
    data = dashboard.query_one("#graph", SeriesPlot)._data
    return (snapshot is not None and bool(snapshot.series.per_account) == per_carrier
            and data is not None and data.title.startswith(
                "ASR" if graph == "asr" else "ACD" if graph == "acd" else "PDD")
            and ("per carrier" in data.title) == per_carrier)
