"""A tab's content on a detail screen: it reads only while it is the tab being looked at.

A detail screen (a customer, a carrier) holds several panes in a TabbedContent; its `gather`
asks the active pane for its snapshot, and its `show` hands the result back to that pane, so a
hidden tab costs nothing.
"""

from __future__ import annotations

from collections.abc import Hashable

from textual.containers import Vertical

from store.views import ConsoleData


class DataPane(Vertical):
    """Override `gather` (worker thread: read plain attributes only, touch no widget) and `show`
    (UI thread). Snapshots must compare equal when nothing changed, so nothing is redrawn."""

    DEFAULT_CSS = "DataPane { height: 1fr; }"

    def gather(self, data: ConsoleData, now_ms: int) -> Hashable:
        raise NotImplementedError

    def show(self, snapshot: Hashable) -> None:
        raise NotImplementedError

    def refresh_now(self) -> None:
        """Read again at once (after a filter or a segment changed)."""
        screen = self.screen
        if hasattr(screen, "refresh_now"):
            screen.refresh_now()
