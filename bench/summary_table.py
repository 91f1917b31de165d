"""A summary table's live update: every value of 500 rows changed, then the visible lines drawn.

    python bench/summary_table.py [--rows N] [--runs N]

Prints the percentiles of one update (set_data and render every visible line) over the runs,
headless at 120x40. Target: p95 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from textual.app import App, ComposeResult

from widgets.summary_table import Column, SummaryGrid, SummaryTable

TARGET_MS = 50.0
COLUMNS = [
    Column("date", "Date"),
    Column("attempts", "Attempts", "int"),
    Column("connected", "Connected", "int"),
    Column("asr", "ASR", "percent", ratio=True),
    Column("acd", "ACD", "seconds", ratio=True),
    Column("duration", "Minutes", "minutes"),
    Column("revenue", "Revenue", "money"),
    Column("cost", "Cost", "money"),
    Column("profit", "Profit", "money"),
    Column("pdd", "PDD", "ms", ratio=True),
]


class TableApp(App):
    def compose(self) -> ComposeResult:
        yield SummaryTable()


def row(day: int, bump: int) -> tuple[str, tuple]:
    attempts, connected = 40_000 + day * 7 + bump, 18_000 + day * 3
    return str(day), (f"day {day}", attempts, connected, 100 * connected / attempts, 118.5,
                      connected * 1.97, 4_800.25 + day, 4_100.5, 699.75 + day, 2_450)


async def measure(rows: int, runs: int) -> list[float]:
    app = TableApp()
    timings = []
    async with app.run_test(size=(120, 40)) as pilot:
        table, grid = app.query_one(SummaryTable), app.query_one(SummaryGrid)
        table.set_data(COLUMNS, [row(day, 0) for day in range(rows)])
        await pilot.pause()
        for run in range(1, runs + 1):
            changed = [row(day, run) for day in range(rows)]
            started = time.perf_counter()
            table.set_data(COLUMNS, changed)
            for y in range(grid.size.height):
                grid.render_line(y)
            timings.append((time.perf_counter() - started) * 1000)
            await pilot.pause()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    timings = sorted(asyncio.run(measure(args.rows, args.runs)))
    p50 = statistics.median(timings)
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    verdict = "met" if p95 < TARGET_MS else "NOT met"
    print(f"{args.rows} rows, {args.runs} updates: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
          f"max {timings[-1]:.1f} ms (target p95 < {TARGET_MS:.0f} ms: {verdict})")


if __name__ == "__main__":
    main()
