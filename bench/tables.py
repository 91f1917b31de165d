"""A tab's table of 200 rows: the CPU time of the event loop to take a read's rows and draw them.

    python bench/tables.py [--rows N] [--repeat N]

Rows of ten columns (those of Latest Calls, an age first as in Dialogs) into a LiveTable at
80x24, in a Textual app run headless:
shown the first time, shown again unchanged, with every row's age ticking (as Dialogs' ages and
talk times do at each read), with three new rows on top and three gone at the bottom, with
a fifth of the rows gone and as many new (calls in progress ending between two reads), and all
200 replaced (another account). CPU time of the thread that runs the event loop (time.thread_time),
so the figure moves little with the machine's load; the median of `--repeat` runs of each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable

from rich.text import Text
from textual.app import App, ComposeResult

from screens.formats import clock
from screens.tables import LiveTable
from widgets.live_table import Col

COLUMNS = [
    Col("time", "Time"), Col("cli", "CLI"), Col("dst", "Destination"),
    Col("route", "Route", drop=3), Col("carrier", "Carrier", drop=1), Col("code", "Code"),
    Col("duration", "Dur.", "right", drop=2), Col("attempts", "Att.", "right", drop=5),
    Col("pdd", "PDD", "right", drop=6), Col("charge", "Charge", "right", drop=4),
]

Rows = list[tuple[str, tuple]]


def calls(first: int, count: int, tick: int = 0, prefix: str = "") -> Rows:
    """Calls whose first column is an age (as Dialogs shows it: 0:20 to 1:06:40, so that most
    are narrower than the widest), `tick` seconds on."""
    return [(f"{prefix}{n}", (clock(n * 20 + tick), "15550001111", f"4420700{n:05d}", "44",
                              "Atlas Voice", Text("200 ✓", style="green"), "0:30", "1",
                              "1.2 s", "0.0123"))
            for n in range(first, first + count)]


def cases(rows: int) -> dict[str, tuple[Rows, Rows]]:
    """Each case: the rows shown before, and the rows of the read timed."""
    fifth = rows // 5
    return {
        "shown the first time": ([], calls(0, rows)),
        "shown again, unchanged": (calls(0, rows), calls(0, rows)),
        "every row's age ticks": (calls(0, rows), calls(0, rows, 5)),
        "3 new on top, 3 gone": (calls(0, rows), calls(3, rows, 5)),
        "a fifth gone, as many new": (calls(0, rows), calls(fifth, rows, 5)),
        "all replaced (another account)": (calls(0, rows), calls(0, rows, prefix="x")),
    }


class TableApp(App):
    def compose(self) -> ComposeResult:
        yield LiveTable(COLUMNS)


async def timed(before: Rows, after: Rows) -> tuple[float, float]:
    """CPU ms of the event loop to take `after` (set_rows) and to draw it (to idle)."""
    app = TableApp()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(LiveTable)
        if before:
            table.set_rows(before)
        await settled(pilot)
        started = time.thread_time()
        table.set_rows(after)
        taken = time.thread_time()
        await settled(pilot)
        drawn = time.thread_time()
    return (taken - started) * 1000, (drawn - taken) * 1000


async def settled(pilot) -> None:
    for _ in range(3):  # measured when idle, then drawn
        await pilot.pause()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"a LiveTable of {args.rows} rows at 80x24, CPU of the event loop, median of "
          f"{args.repeat}, load average {os.getloadavg()[0]:.1f}")
    median: Callable[[list[float]], float] = statistics.median
    for name, (before, after) in cases(args.rows).items():
        runs = [asyncio.run(timed(before, after)) for _ in range(args.repeat)]
        take, draw = median([r[0] for r in runs]), median([r[1] for r in runs])
        print(f"  {name:32} take the rows {take:6.1f} ms, draw {draw:6.1f} ms, "
              f"together {take + draw:6.1f} ms")


if __name__ == "__main__":
    main()
