"""Start: from typing `noc demo` to its first figures, in a real terminal.

    python bench/start.py [--runs 5] [--size 80x24]

Starts `noc demo` on a fresh database in a detached tmux pane, reads the screen every 20 ms
(`tmux capture-pane`) and notes when the console first draws (its header), and when the dashboard
first shows a figure above zero (calls per second or channels in use: while the writer catches up
the day of history, they read "loading…"). Prints p50 and max over the runs against the target
(< 1.5 s to the first figure), and the same for the first frame.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from painting import terminal_size

TARGET_S = 1.5
GIVE_UP_S = 60.0
FIGURES = re.compile(r"CPS [1-9]|Channels\s+[1-9]")
DRAWN = re.compile(r"noc › ")  # the header: the console's first frame


def first_figures(size: tuple[int, int], folder: Path) -> tuple[float, float]:
    """Seconds from launch to the first frame, and to the first screen showing a figure above
    zero."""
    session = f"noc-start-{os.getpid()}"
    columns, rows = size
    noc = f"{sys.executable} -m console.shell.cli demo --db {folder / 'demo.db'}"
    started = time.monotonic()
    drawn = None
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(columns),
                    "-y", str(rows), noc], check=True)
    try:
        while time.monotonic() - started < GIVE_UP_S:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                    capture_output=True, text=True).stdout
            if drawn is None and DRAWN.search(screen):
                drawn = time.monotonic() - started
            if FIGURES.search(screen):
                return drawn or time.monotonic() - started, time.monotonic() - started
            time.sleep(0.02)
        raise SystemExit(f"no figure within {GIVE_UP_S:.0f} s; the screen:\n{screen}")
    finally:
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=False)
        time.sleep(1.0)
        subprocess.run(["tmux", "kill-session", "-t", session], check=False,
                       capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=terminal_size, default="80x24")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("bench/start.py needs tmux")
    frames, times = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            frame, figure = first_figures(args.size, Path(folder))
            frames.append(frame)
            times.append(figure)
    verdict = "met" if max(times) < TARGET_S else "NOT met"
    columns, rows = args.size
    print(f"`noc demo` to its first figures at {columns}x{rows}, {args.runs} runs, load average "
          f"{os.getloadavg()[0]:.1f}: p50 {statistics.median(times):.2f} s, max {max(times):.2f} s "
          f"(target < {TARGET_S} s: {verdict}); to its first frame p50 "
          f"{statistics.median(frames):.2f} s, max {max(frames):.2f} s")


if __name__ == "__main__":
    main()
