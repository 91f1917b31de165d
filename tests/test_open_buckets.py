"""The newest buckets, whose calls have not all ended: graphs plot what ended in each bucket, so
their newest points do not dip; a summary row with calls in progress says so.

On steady traffic (the simulator's calm network, past its first hour so that long calls end as
often as they start), the newest minute of an ASR or ACD graph must lie within the noise of the
minutes before it. Counted by start, it would not: its answered calls are still talking.
"""

from __future__ import annotations

import statistics

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.feed.traffic import Traffic
from store.views import ConsoleData, summary_cells
from tests.test_ingest import Harness

START_TS = 1_763_700_000.0  # a whole hour, UTC
WARM_UP_S = 3600  # every call length (under 40 minutes) has had time to end
COMPARED = 30  # minutes before the newest one that it is compared with


def ingest_steady_traffic(path, seed: int, until_s: float) -> int:
    """Calm traffic from START_TS to START_TS + until_s, stored; the time then, in ms."""
    traffic = Traffic(seed, cps=4.0, scenario="calm", start_ts=START_TS)
    harness = Harness(path)
    while traffic.now < START_TS + until_s:
        events = traffic.advance_to(min(START_TS + until_s, traffic.now + 120))
        for at in range(0, len(events), 1000):
            harness.feed(events[at:at + 1000])
        harness.flush()
    harness.writer.close_now()
    return round((START_TS + until_s) * 1000)


def no_dip(newest: float, others: list[float]) -> bool:
    """Not below the others' mean by more than four standard deviations. Only a dip is the
    bias of an open bucket; a minute in which a few long calls end reads high (talk times are
    long-tailed: seed 1 has a whole minute at an ACD of 248 s against about 165)."""
    return newest >= statistics.fmean(others) - 4 * statistics.stdev(others)


@settings(max_examples=3, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(1, 1000), second=st.integers(20, 59))
def test_the_newest_point_of_a_ratio_graph_does_not_dip_below_the_others(
        tmp_path_factory, seed, second):
    path = tmp_path_factory.mktemp("steady") / "noc.db"
    now_ms = ingest_steady_traffic(path, seed, WARM_UP_S + 40 * 60 + second)
    data = ConsoleData(path)
    for kind in ("customer", "carrier"):
        series = data.series(kind, None, "hour", now_ms).series
        for metric in ("asr", "acd", "ner", "pdd"):
            points = series[metric]
            newest, others = points[-1], list(points[-1 - COMPARED:-1])
            assert None not in others and newest is not None, (kind, metric)
            assert no_dip(newest, others), (kind, metric, newest, others)


def test_a_summary_row_with_calls_in_progress_says_so(tmp_path):
    now_ms = ingest_steady_traffic(tmp_path / "noc.db", 7, WARM_UP_S + 30 * 60)
    data = ConsoleData(tmp_path / "noc.db")
    for kind in ("customer", "carrier"):
        rows = data.summary(kind, None, "live", now_ms)
        current, closed = rows[0], rows[2]  # the hour before may hold calls still talking
        assert current.in_progress > 0
        assert summary_cells(current)[2:6] == (current.in_progress, current.totals.answered,
                                               "open", "open")
        assert closed.in_progress == 0 and isinstance(summary_cells(closed)[4], float)
    # What is in progress, customers' side: every call not ended, whatever its hour.
    dialogs = data.dialogs(None, now_ms)
    assert sum(row.in_progress for row in data.summary("customer", None, "live", now_ms)) == (
        len(dialogs))
