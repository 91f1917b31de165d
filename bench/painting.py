"""Key to paint, measured honestly: from the key reaching the app to the first frame written to
the terminal that shows what the key asked for, with data read after the key.

The app runs on a driver that is a terminal in all but the terminal: every frame is rendered to
the escape sequences a terminal would get (which a headless test driver skips) and its time is
noted. A key is sent as the terminal would send it, with no wait for the app to go idle (the
pilot's `press` waits for that, at least 40 ms a key, which is no part of the app's cost).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from textual import events
from textual.drivers.headless_driver import HeadlessDriver
from textual.keys import _character_to_key

from screens.base import DataScreen


class FrameClock(HeadlessDriver):
    """Renders frames as for a terminal (then drops them); notes the first frame written while
    `awaited()` holds. A frame holds the state of the app when it is written: drawing runs on
    the event loop, so nothing changes while it is written."""

    awaited: Callable[[], bool] | None = None
    painted = 0.0
    painted_cpu = 0.0  # the event loop's CPU time (time.thread_time()) then

    @property
    def is_headless(self) -> bool:
        return False

    def write(self, data: str) -> None:
        awaited = FrameClock.awaited
        if awaited is not None and awaited():
            FrameClock.awaited, FrameClock.painted = None, time.monotonic()
            FrameClock.painted_cpu = time.thread_time()


def use_frame_clock(app) -> None:
    """Run `app` (before `run_test(headless=False)`) on the frame clock."""
    app.driver_class = FrameClock


def send_key(app, key: str) -> float:
    """Send a key as the terminal would (`key` a character or a key name); return when."""
    name = _character_to_key(key) if len(key) == 1 else key
    event = events.Key(name, key if len(key) == 1 else None)
    event.set_sender(app)
    sent = time.monotonic()
    app._driver.send_message(event)
    return sent


def fresh(screen, since: float) -> bool:
    """A data screen shows a snapshot read after `since` (any other screen: shown is enough)."""
    return not isinstance(screen, DataScreen) or (
        screen.current_as_of is not None and screen.current_as_of >= since)


GIVE_UP_S = 60.0


async def until_painted(reached: Callable[[], bool], since: float) -> float:
    """Wait for the first frame written while `reached()` holds; return its time since
    `since`, in ms. Raises TimeoutError if none comes in a minute."""
    FrameClock.painted = 0.0
    FrameClock.awaited = reached
    try:
        async with asyncio.timeout(GIVE_UP_S):
            while FrameClock.awaited is not None:
                await asyncio.sleep(0.001)
    finally:
        FrameClock.awaited = None
    return (FrameClock.painted - since) * 1000


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def terminal_size(text: str) -> tuple[int, int]:
    """`80x24` -> (80, 24), for a benchmark's --size."""
    columns, rows = text.split("x")
    return int(columns), int(rows)
