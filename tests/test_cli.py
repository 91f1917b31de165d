"""`noc ingest` and `noc report` as a user runs them: real subprocesses against a real simulator on
loopback, their exit codes, what they print, and what they leave in the database.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import sqlite3
from datetime import UTC, datetime

from websockets.datastructures import Headers
from websockets.http11 import Response

from tests.feedkit import (
    T0,
    NocProcess,
    assert_matches_reference,
    calls_by_outcome,
    feed_state,
    free_port,
    noc_environment,
    paced_by_store,
    read_report,
    running_simulator,
    stored_calls,
    stored_seq,
    wait_until,
)
from tests.reference import reference_report

TOKEN = "s3cret"


def assert_one_line_error(process: NocProcess, exit_code: int, *phrases: str) -> None:
    """A non-zero exit and one line on stderr saying what is wrong (and no traceback)."""
    assert exit_code != 0, process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("noc: "), process.stderr
    for phrase in phrases:
        assert phrase in lines[0]


async def test_a_refused_token_is_logged_at_each_try_and_retried_at_the_longest_delay(
        db, tmp_path, processes):
    sim_env = noc_environment(tmp_path, NOC_FEED_TOKEN=TOKEN)
    _, url = await processes.simulate("--speed", "20", env=sim_env)
    wrong = processes.noc("ingest", "--feed", url, "--db", str(db),
                          env=noc_environment(tmp_path, NOC_FEED_TOKEN="wrong"))
    state = await wait_until(lambda: (state := feed_state(db)).get("status") == "refused"
                             and state, what="the writer to store that the token is refused")
    assert "refused the token (HTTP 401)" in state["detail"] and "NOC_FEED_TOKEN" in state[
        "detail"]
    assert state["reconnect_at_ms"] - state["updated_ms"] >= 29_000  # the longest delay
    logged = await wait_until(lambda: re.search(r"ERROR feed: .*refused the token \(HTTP 401\)"
                                                r".*retrying in 30 s", wrong.stderr),
                              what="the refusal logged as an error")
    assert logged and wrong.running()
    wrong.process.send_signal(signal.SIGTERM)
    assert await wrong.wait() == 0, wrong.stderr
    assert "Traceback" not in wrong.stderr


async def test_a_forbidden_handshake_is_an_error_retried_at_the_longest_delay(db, processes):
    """A switch's proxy answering 403 (an address not allowed, a token of another feed) is a
    refusal as a 401 is: an error at each try, retried at the longest delay, never an exit."""
    def forbid(_connection, _request):
        return Response(403, "Forbidden", Headers(), b"not from here\n")

    async with running_simulator(speed=20, refuse=forbid) as (_, url):
        ingest = processes.noc("ingest", "--feed", url, "--db", str(db))
        state = await wait_until(lambda: (state := feed_state(db)).get("status") == "refused"
                                 and state, what="the writer to store that the feed refused")
        assert "refused the token (HTTP 403)" in state["detail"]
        assert state["reconnect_at_ms"] - state["updated_ms"] >= 29_000  # the longest delay
        await wait_until(lambda: re.search(r"ERROR feed: .*\(HTTP 403\).*retrying in 30 s",
                                           ingest.stderr), what="the refusal logged as an error")
        assert ingest.running()
        ingest.process.send_signal(signal.SIGTERM)
        assert await ingest.wait() == 0, ingest.stderr
    assert "Traceback" not in ingest.stderr


async def test_a_feed_down_or_failing_at_start_is_retried_until_it_serves(
        db, tmp_path, processes):
    port = free_port()
    answered: list[int] = []

    def fail_twice(_connection, _request):
        answered.append(500 if len(answered) < 2 else 101)
        if answered[-1] == 500:
            return Response(500, "Internal Server Error", Headers(), b"restarting\n")
        return None

    url = f"ws://127.0.0.1:{port}/feed"
    ingest = processes.noc("ingest", "--feed", url, "--db", str(db))
    await wait_until(lambda: "feed: cannot connect: cannot reach the feed" in ingest.stderr,
                     what="the refused connection logged")
    assert ingest.running()
    async with running_simulator(speed=20, cps=60, port=port, refuse=fail_twice) as (sim, _):
        await wait_until(lambda: stored_seq(db) > 500, what="ingest to store once it serves")
        sim.pause()
        await wait_until(lambda: stored_seq(db) == sim.head, what="ingest to catch up")
        ingest.process.send_signal(signal.SIGTERM)
        assert await ingest.wait() == 0, ingest.stderr
    assert answered[:3] == [500, 500, 101]
    retries = re.findall(r"WARNING feed: cannot connect: (.*); reconnecting in [\d.]+ s$",
                         ingest.stderr, re.M)
    assert "cannot reach the feed" in retries[0], ingest.stderr
    assert all("answered HTTP 500" in retry for retry in retries[-2:]), ingest.stderr
    assert "Traceback" not in ingest.stderr
    report = read_report(db)
    assert (report["last_seq"], report["gaps"]) == (sim.head, [])
    assert_matches_reference(report, sim.history)


async def test_user_errors_end_in_one_line_and_a_non_zero_exit(tmp_path, processes):
    foreign = tmp_path / "foreign.db"
    with contextlib.closing(sqlite3.connect(foreign)) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("shopping list: milk, eggs\n" * 100)
    unreachable = f"ws://127.0.0.1:{free_port()}/feed"
    cases = {  # what the user got wrong: (feed, database, what the one line must say)
        "an http URL": ("http://127.0.0.1:8765/feed", None, ["bad feed URL", "ws://"]),
        "another program's database": (unreachable, foreign, ["not noc's", "--db"]),
        "a file that is no database": (unreachable, not_sqlite, ["not a SQLite database"]),
    }
    started = {  # all at once, each with its own database
        case: processes.noc("ingest", "--feed", feed, "--db",
                            str(database or tmp_path / f"case-{number}.db"))
        for number, (case, (feed, database, _)) in enumerate(cases.items())
    }
    for case, process in started.items():
        exit_code = await process.wait()
        try:
            assert_one_line_error(process, exit_code, *cases[case][2])
        except AssertionError as failure:
            raise AssertionError(f"{case}: {failure}") from None


async def test_a_second_writer_on_one_database_is_refused(any_db, processes):
    db = any_db
    # A slow feed: the first writer need only hold the lock, not ingest thousands of events a
    # second while the second starts.
    async with running_simulator(speed=2, cps=60) as (_sim, url):
        first = processes.noc("ingest", "--feed", url, "--db", str(db))
        await wait_until(lambda: stored_seq(db) > 500, what="the first writer to store")
        second = processes.noc("ingest", "--feed", url, "--db", str(db))
        assert_one_line_error(second, await second.wait(), str(db), "already has a writer",
                              f"pid {first.pid}")
        assert first.running()
        first.process.send_signal(signal.SIGTERM)
        assert await first.wait() == 0


async def stop_once_everything_sent_is_stored(sim, ingest: NocProcess, db, signal_number) -> None:
    sim.pause()
    await wait_until(lambda: stored_seq(db) == sim.head, what="ingest to catch up")
    ingest.process.send_signal(signal_number)
    assert await ingest.wait() == 0, ingest.stderr
    assert_only_state_changes_logged(ingest)


def assert_only_state_changes_logged(process: NocProcess) -> None:
    """What a healthy run logs: changes of state (its connection, alert rounds waiting for the
    store to be current), one line each, none a warning."""
    lines = process.stderr.splitlines()
    assert all(re.match(r"\S+ \S+ INFO ", line) for line in lines), process.stderr
    assert re.search(r"INFO feed: connected to ws://\S+, from seq \d+$", process.stderr, re.M)


async def test_sigterm_mid_stream_stores_whole_events_and_exits_0_then_resumes(
        db, tmp_path, processes):
    env = noc_environment(tmp_path, NOC_FEED_TOKEN=TOKEN)
    async with (running_simulator(speed=20, cps=60, token=TOKEN) as (sim, url),
                paced_by_store(sim, db)):
        ingest = processes.noc("ingest", "--feed", url, "--db", str(db), env=env)
        await wait_until(lambda: stored_seq(db) > 1_000, what="ingest to store")
        stored_before = stored_seq(db)
        ingest.process.send_signal(signal.SIGTERM)  # while events keep coming
        assert await ingest.wait() == 0, ingest.stderr
        assert_only_state_changes_logged(ingest)
        state = feed_state(db)
        assert state["status"] == "stopped" and state["last_seq"] >= stored_before
        # What is stored is whole: exactly the first `last_seq` events, no call half-applied.
        assert_matches_reference(read_report(db), sim.history[:state["last_seq"]])

        ingest = processes.noc("ingest", "--feed", url, "--db", str(db), env=env)
        await wait_until(lambda: stored_seq(db) > state["last_seq"] + 1_000,
                         what="the restarted ingest to store")
        await stop_once_everything_sent_is_stored(sim, ingest, db, signal.SIGTERM)
    report = read_report(db)
    assert (report["last_seq"], report["gaps"], report["quarantined"]) == (sim.head, [], 0)
    assert_matches_reference(report, sim.history)
    assert feed_state(db)["duplicates"] == 0


async def test_sigint_stores_everything_received_then_exits_0(db, processes):
    async with running_simulator(speed=20, cps=60) as (sim, url), paced_by_store(sim, db):
        ingest = processes.noc("ingest", "--feed", url, "--db", str(db))
        await wait_until(lambda: stored_seq(db) > 1_000, what="ingest to store")
        await stop_once_everything_sent_is_stored(sim, ingest, db, signal.SIGINT)
    report = read_report(db)
    assert (report["last_seq"], report["gaps"], report["quarantined"]) == (sim.head, [], 0)
    assert feed_state(db)["status"] == "stopped"
    assert_matches_reference(report, sim.history)


async def test_kill_9_mid_stream_then_a_restart_stores_every_call_once(any_db, processes):
    db = any_db
    total = 20_000
    # The feed holds back its second half until the kill, so that ingest is killed mid-stream
    # however slowly the machine lets it store.
    async with running_simulator(speed=20, cps=300, limit=total // 2) as (sim, url):
        ingest = processes.noc("ingest", "--feed", url, "--db", str(db))
        await wait_until(lambda: stored_seq(db) >= total // 4, what="ingest to store")
        ingest.process.send_signal(signal.SIGKILL)
        sim.limit = total
        assert await ingest.wait() == -signal.SIGKILL
        killed_at = stored_seq(db)
        assert killed_at < total
        # Every commit is whole: the stored state is that of the first `killed_at` events.
        assert_matches_reference(read_report(db), sim.history[:killed_at])

        restarted = processes.noc("ingest", "--feed", url, "--db", str(db))
        await wait_until(lambda: stored_seq(db) == total, what="the restart to catch up")
        restarted.process.send_signal(signal.SIGTERM)
        assert await restarted.wait() == 0, restarted.stderr
    closed, still_open = calls_by_outcome(sim.history)
    calls, open_calls = stored_calls(db)
    assert len(calls) == len(closed) and set(calls) == closed  # each call once, none lost
    assert open_calls == still_open
    # `noc report` over everything, and over a range in Unix seconds to ISO 8601 whose ragged
    # edges are read from the records.
    time_from, time_to = T0 + 10, T0 + 30.5
    iso_to = datetime.fromtimestamp(time_to, UTC).isoformat().replace("+00:00", "Z")
    printed = processes.noc("report", "--json", "--db", str(db))
    ranged = processes.noc("report", "--json", "--db", str(db), "--from", str(time_from),
                           "--to", iso_to)
    assert await printed.wait() == 0, printed.stderr
    report = json.loads(printed.stdout)
    assert report == json.loads(json.dumps(read_report(db)))
    assert (report["last_seq"], report["gaps"], report["quarantined"]) == (total, [], 0)
    assert_matches_reference(report, sim.history)
    assert await ranged.wait() == 0, ranged.stderr
    report = json.loads(ranged.stdout)
    assert (report["from"], report["to"]) == (time_from, time_to)
    expected = reference_report(sim.history, time_from=time_from, time_to=time_to)
    assert report["customers"] == expected["customers"]
    assert report["carriers"] == expected["carriers"]
    state = feed_state(db)
    assert (state["events"], state["duplicates"]) == (total, 0)

