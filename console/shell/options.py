"""How a console is run: which database, how often it refreshes, what it may do, how it looks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from console.feed.ingestor import now_ms
from console.shell.config import default_exports_folder

LOW_COLOUR_THEME = "ansi-dark"  # the 16 ANSI colours only, drawn by the terminal's own palette


@dataclass
class ConsoleOptions:
    db_path: Path
    refresh: float = 1.0
    read_only: bool = False
    timezone: str = "UTC"
    theme: str = "noc-dark"
    clock: Callable[[], int] = field(default=now_ms)  # tests pass a fixed clock
    watchdog: bool = True  # exit when the terminal goes away (off under test)
    cursor_blink: bool = True  # off under test: a blinking cursor makes snapshots differ
    # Mount the screens the keys lead to while idle after the first paint, so that no key
    # waits for one (off under test, where each test would mount every screen).
    warm_screens: bool = True
    exports: Path = field(default_factory=default_exports_folder)  # exports' default folder
