"""Idle: the CPU a viewer console and the writer use while nothing changes.

    python bench/idle.py [--seconds 60] [--size 80x24]

`noc simulate` serves `--events` events and then heartbeats only; `noc ingest` stores them.
Once everything is stored, and after a few seconds of quiet, both are watched for `--seconds`:
the writer with no traffic (its process's CPU, from /proc), and a viewer console on the
dashboard (the real app on the real clock, frames rendered as for a terminal: see
bench/painting.py; this process's CPU, every thread). Prints each one's CPU as a share of one
core against the target (< 0.3 %), and the frames the viewer wrote meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from keys import committed, writer
from painting import FrameClock, terminal_size, use_frame_clock

from console.feed.ingestor import now_ms
from console.testing import make_app

TARGET_PCT = 0.3
QUIET_S = 5.0  # after the last event is stored, before watching


def process_cpu_s(pid: int) -> float:
    """User and system CPU of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CountingFrames(FrameClock):
    frames = 0

    def write(self, data: str) -> None:
        CountingFrames.frames += 1
        super().write(data)


async def watch(db: Path, writer_pid: int, seconds: float,
                size: tuple[int, int]) -> tuple[float, float, int]:
    """(viewer CPU, writer CPU, frames written), each CPU in seconds, over `seconds`."""
    app = make_app(db, clock=now_ms, warm_screens=True)
    use_frame_clock(app)
    app.driver_class = CountingFrames
    async with app.run_test(size=size, headless=False):
        while not (app.warmed and app.screen.has_data):
            await asyncio.sleep(0.1)
        await asyncio.sleep(QUIET_S)
        frames, viewer, ingest = CountingFrames.frames, time.process_time(), process_cpu_s(
            writer_pid)
        await asyncio.sleep(seconds)
        return (time.process_time() - viewer, process_cpu_s(writer_pid) - ingest,
                CountingFrames.frames - frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--size", type=terminal_size, default="80x24")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, writer(
            Path(folder), 1_000.0, limit=args.events, ready=args.events) as (db, ingest):
        assert committed(db) == args.events
        viewer, stored, frames = asyncio.run(watch(db, ingest.pid, args.seconds, args.size))
    columns, rows = args.size
    print(f"idle over {args.seconds:.0f} s at {columns}x{rows}, nothing changing but the "
          f"feed's heartbeats (load average {os.getloadavg()[0]:.1f})")
    for name, cpu in (("viewer", viewer), ("writer", stored)):
        share = 100 * cpu / args.seconds
        verdict = "met" if share < TARGET_PCT else "NOT met"
        extra = f", {frames} frames written" if name == "viewer" else ""
        print(f"  {name}: {share:.2f} % of a core ({cpu * 1000:.0f} ms of CPU{extra}; "
              f"target < {TARGET_PCT} %: {verdict})")


if __name__ == "__main__":
    main()
