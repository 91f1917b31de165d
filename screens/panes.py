"""A tab's content on a detail screen: it reads only while it is the tab being looked at.

A detail screen (a customer, a carrier) holds several panes in a TabbedContent; its `gather`
asks the active pane for its snapshot, and its `show` hands the result back to that pane, so a
hidden tab costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import TabbedContent

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


def focus_if_showing(tabbed: TabbedContent, pane_id: str, target: Callable[[], Widget]) -> None:
    """Focus `target()` once drawn, only if pane `pane_id` is still the one showing: focusing a
    widget of a tab left since (quick presses) would switch back to it, and the two would take
    turns for good."""

    def focus() -> None:
        if tabbed.active == pane_id:
            target().focus()

    tabbed.call_after_refresh(focus)
