"""An idle console draws nothing: reads of an unchanged store compare equal though each holds
the time it was made, while the time the screen shows, a late writer and a feed in trouble
still draw at once."""

from __future__ import annotations

from dataclasses import dataclass, replace

from screens.base import WRITER_STALE_MS, steady
from store.views import FeedView

NOW = 1_763_700_000_000 - 1_763_700_000_000 % 60_000  # on a minute


@dataclass(frozen=True)
class Pane:
    now_ms: int
    rows: tuple = ()
    feed: FeedView | None = None  # as the dashboard's view holds it too


@dataclass(frozen=True)
class Snapshot:
    now_ms: int
    feed: FeedView
    pane: Pane


def feed(**changes) -> FeedView:
    calm = FeedView(status="connected", detail="", reconnect_at_ms=None,
                    connected_since_ms=NOW - 3_600_000, last_frame_ms=NOW, last_seq=10,
                    events=10, duplicates=0, quarantined=0, gaps=0, lost_calls=0,
                    capped_calls=0, updated_ms=NOW, newest_ms=NOW, writer_pid=1,
                    feed_url="ws://x", writer_running=True)
    return replace(calm, **changes)


def read(at_ms: int, **changes) -> Snapshot:
    read_feed = feed(**changes)
    return Snapshot(at_ms, read_feed, Pane(at_ms, feed=read_feed))


def test_reads_of_an_unchanged_store_within_a_minute_compare_equal():
    assert steady(read(NOW)) == steady(read(NOW + 59_000, updated_ms=NOW + 40_000,
                                            last_frame_ms=NOW + 40_000))


def test_what_the_screen_shows_still_differs():
    assert steady(read(NOW)) != steady(read(NOW + 60_000, updated_ms=NOW + 60_000))
    assert steady(Snapshot(NOW, feed(), Pane(NOW, ("a",), feed()))) != steady(read(NOW))
    assert steady(read(NOW)) != steady(read(NOW + 1_000, last_seq=11))


def test_a_writer_going_late_differs_within_the_minute():
    assert steady(read(NOW + 10_000)) != steady(read(NOW + WRITER_STALE_MS + 1_000))


def test_a_feed_in_trouble_is_compared_whole():
    down = {"status": "reconnecting", "reconnect_at_ms": NOW + 9_000}
    assert steady(read(NOW, **down)) != steady(read(NOW + 1_000, **down))
