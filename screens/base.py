"""What every data screen shares: it is fed snapshots, never events.

The app asks the current screen to `gather` a snapshot from the store on a worker thread at the
refresh rate, and hands the result to `show` on the UI thread. A screen updates its widgets only
where the snapshot differs from the last one, so an idle console does no drawing.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any

from textual import events
from textual.screen import Screen

from screens.navigation import ReadNow
from store.views import ConsoleData, FeedView

MINUTE_MS = 60_000
WRITER_STALE_MS = 30_000  # a viewer says the writer is stale past this with no update


def live_as_of(feed: FeedView, now_ms: int, role: str) -> int | None:
    """When a viewer's live figures (channels, CPS, calls in progress) were last current: the
    writer's last flush while the writer is gone or late, so that they are not read as now;
    None while they are current."""
    stale = role == "viewer" and (not feed.writer_running
                                  or now_ms - feed.updated_ms > WRITER_STALE_MS)
    return feed.updated_ms if stale else None


class KeptStyles:
    """A screen shown again keeps its styles: Textual restyles every widget of a screen each
    time it comes back (most of a screen switch's cost), though nothing in its styles changed
    while it was hidden (a new theme restyles every screen by itself). Mix in before Screen."""

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        event.refresh_styles = False  # read by Screen's own handler, which runs after this one


class DataScreen(KeptStyles, Screen):
    """A screen fed by the app's refresh loop."""

    # Every data screen shows the header and panes; a screen adds its own file to these.
    CSS_PATH = ["chrome.tcss", "panes.tcss"]

    _last_snapshot: Any = None
    current_as_of: float | None = None  # time.monotonic() when the read of what is shown began
    read_marker: Any = None  # the store's change marker when it was read (see NocApp._poll)
    asked = 0  # counts the reads asked for by refresh_now: a read begun before one is dropped

    def gather(self, data: ConsoleData, now_ms: int) -> Any:
        """Read what the screen shows (runs on a worker thread: no widget access here)."""
        raise NotImplementedError

    def show(self, snapshot: Any) -> None:
        """Update widgets from a snapshot (UI thread)."""
        raise NotImplementedError

    @property
    def has_data(self) -> bool:
        return self._last_snapshot is not None

    def deliver(self, snapshot: Any, read_at: float, marker: Any = None,
                asked: int | None = None) -> None:
        """Show a snapshot whose read began at `read_at` (time.monotonic()) with the store at
        `marker`, unless the screen shows the same already (then what is shown is confirmed
        current as of then). A read begun before the screen asked for another (`asked` behind)
        was for what it showed before (another tab, filter or account): it is dropped."""
        if asked is not None and asked != self.asked:
            return
        self.current_as_of, self.read_marker = read_at, marker
        if self._last_snapshot is None or steady(snapshot) != steady(self._last_snapshot):
            self._last_snapshot = snapshot
            self.show(snapshot)

    def refresh_now(self) -> None:
        """Forget the last snapshot and ask for a new one at once (after a filter changes)."""
        self._last_snapshot = None
        self.asked += 1
        self.post_message(ReadNow())

    @property
    def tz(self) -> tzinfo:
        return self.app.display_tz

    def when(self, ms: int | None, pattern: str = "%Y-%m-%d %H:%M:%S") -> str:
        if ms is None:
            return "–"
        return datetime.fromtimestamp(ms / 1000, UTC).astimezone(self.tz).strftime(pattern)


def steady(snapshot: Any) -> Any:
    """What of a screen's snapshot tells whether it would draw anything new. Each read holds
    the time it was made, so two reads of an unchanged store never compared equal and an idle
    console drew every few seconds: while the feed is calm, the time counts to the minute (the
    header's clock) and the writer's last heartbeat only as whether it is late. A feed in
    trouble shows countdowns and durations: its snapshots are compared whole."""
    feed = getattr(snapshot, "feed", None)
    if not isinstance(feed, FeedView) or feed.status != "connected" or feed.store_troubles:
        return snapshot
    late = snapshot.now_ms - feed.updated_ms > WRITER_STALE_MS
    return _to_the_minute(snapshot, replace(feed, updated_ms=late, last_frame_ms=None))


def _to_the_minute(value: Any, calm: FeedView) -> Any:
    """`value` with its times to the minute and the feed, wherever it holds it (the dashboard's
    view too), as `calm`."""
    changes = {}
    for field in fields(value):
        inner = getattr(value, field.name)
        if field.name == "now_ms":
            changes[field.name] = inner // MINUTE_MS
        elif isinstance(inner, FeedView):
            changes[field.name] = calm
        elif is_dataclass(inner) and not isinstance(inner, type):
            changes[field.name] = _to_the_minute(inner, calm)
    return replace(value, **changes) if changes else value
