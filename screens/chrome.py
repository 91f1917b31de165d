"""The header every screen shares: where you are, the feed's state, the time in the chosen zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from screens.base import live_as_of
from screens.formats import cut
from screens.safe_text import printable
from store.views import FeedView, store_trouble_text
from widgets.feed_badge import FeedBadge, FeedStatus

STATUSES = get_args(FeedStatus)
WHERE_SHARE = 0.45  # of the header, at most: the feed's state and the time keep the rest


class NocHeader(Horizontal):
    """`noc › Carriers › borealis-tel   ● connected · 2 gaps · seq 1,234      14:05 UTC`"""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def compose(self) -> ComposeResult:
        yield Static(self._where_text(), id="where")
        yield FeedBadge()
        yield Static("", id="when")

    def set_where(self, where: str) -> None:
        """Say where the user is, e.g. "Carriers › Ember Link" once the name is known (a name
        from the feed: shown as text, never markup)."""
        if where != self.where:
            self.where = where
            self.query_one("#where", Static).update(self._where_text())

    def on_resize(self) -> None:
        self.query_one("#where", Static).update(self._where_text())

    def _where_text(self) -> Text:
        """`noc › Customers › Helpline Contact Ce…`: a long name cut as lists cut it."""
        where = printable(f"noc › {self.where}")
        return Text(cut(where, int(self.size.width * WHERE_SHARE) or len(where)))

    def show_feed(self, feed: FeedView, now_ms: int, *, role: str, read_only: bool,
                  tz) -> None:
        reconnect = None
        if feed.reconnect_at_ms is not None and feed.status in ("reconnecting", "refused"):
            reconnect = max(0.0, (feed.reconnect_at_ms - now_ms) / 1000)
        stale = live_as_of(feed, now_ms, role) is not None
        trouble = feed.store_trouble if feed.writer_running else None
        status = feed.status if feed.status in STATUSES else "stopped"
        self.query_one(FeedBadge).update_state(
            status, reconnect_in_s=reconnect, gaps=feed.gaps, quarantined=feed.quarantined,
            duplicates=feed.duplicates, last_seq=feed.last_seq, role=role, stale=stale,
            store=store_trouble_text(trouble, now_ms) if trouble else "",
            catching_up=feed.caught_up_pct,
        )
        moment = datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(tz)
        mode = " · read-only" if read_only else ""
        self.query_one("#when", Static).update(f"{moment:%H:%M} {moment.tzname()}{mode}")
