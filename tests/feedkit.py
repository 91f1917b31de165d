"""Helpers for the end-to-end feed tests: the real simulator, the real client, a real SQLite file.

Everything runs on 127.0.0.1 with ports picked by the kernel. Tests wait on conditions (polling
with a deadline), never on fixed sleeps, and every helper that starts something stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from console.feed.service import IngestService, IngestSettings
from console.feed.simulator import Simulator
from store.database import STORE_ERRORS, connect, is_postgres
from store.queries import Reader
from store.writer import StoreWriter
from tests.reference import reference_report

T0 = 1_763_700_000.0  # simulated start, a whole hour (UTC)
REPO = Path(__file__).resolve().parent.parent


# Waiting -----------------------------------------------------------------------------------


async def wait_until(predicate: Callable[[], object], *, interval: float = 0.02,
                     what: str = "") -> object:
    """Poll `predicate` (sync or async) until it returns something truthy; return that.

    No deadline of its own: on a busy machine anything may take long, and the test's timeout
    (pytest-timeout) ends a wait that never ends, its traceback showing the call and `what`.
    """
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(interval)


# The simulator and the ingest service, in this process ------------------------------------


@contextlib.asynccontextmanager
async def running_simulator(*, port: int = 0, refuse: Callable | None = None,
                            **options) -> AsyncIterator[tuple[Simulator, str]]:
    """A Simulator on a loopback port (a free one unless told) that keeps its history; yields it
    and its URL. With `refuse(connection, request)`, each handshake goes to it first: it may
    answer with an HTTP error (a switch restarting), or None to let the handshake go on.

    Its resume buffer holds everything too (its history is kept anyway): on a busy machine a
    subscriber may be minutes late, and a gap the test did not ask for would fail it."""
    options = {"start": T0, "heartbeat": 0.3, "keep_history": True, "buffer": 10_000_000,
               **options}
    sim = Simulator(**options)
    if refuse is not None:
        authorize = sim.server._authorize
        sim.server._authorize = lambda connection, request: (
            refuse(connection, request) or authorize(connection, request))
    port = await sim.start("127.0.0.1", port)
    try:
        yield sim, f"ws://127.0.0.1:{port}/feed"
    finally:
        await sim.stop()


@contextlib.asynccontextmanager
async def paced_by_store(sim: Simulator, db: Path, *, ahead: int = 2_000) -> AsyncIterator[None]:
    """Keep `sim` at most `ahead` events past what `db` has stored, while the block runs.

    Events keep coming while the test acts, but a machine that stores slowly is not handed a
    longer feed to store and check: paced by the wall clock alone, a busy machine made a
    signal test ten times longer (its feed grew with every second the writer took to start)."""
    async def follow() -> None:
        while True:
            sim.limit = stored_seq(db) + ahead
            await asyncio.sleep(0.05)

    following = asyncio.create_task(follow(), name="pace the feed by the store")
    try:
        yield
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following


@contextlib.asynccontextmanager
async def bare_feed(handler: Callable[[ServerConnection], Awaitable[None]]) -> AsyncIterator[str]:
    """A bare websockets server running `handler` for each connection (a feed that misbehaves
    in a way the simulator cannot); yields its URL."""
    async with serve(handler, "127.0.0.1", 0) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/feed"


@dataclass
class Ingesting:
    """An IngestService running in this loop, and the task that runs it."""

    service: IngestService
    task: asyncio.Task

    def check_running(self) -> None:
        """Fail at once (with the service's own error) if the service has died."""
        if self.task.done():
            self.task.result()  # raises what killed it
            raise AssertionError("the ingest service stopped by itself")

    async def until_committed(self, seq: int | Callable[[], int]) -> None:
        """Wait until everything up to `seq` (a number, or a function giving it) is committed."""
        target = seq if callable(seq) else (lambda: seq)

        def reached() -> bool:
            self.check_running()
            return self.service.committed_seq >= target()

        await wait_until(reached, what=f"the ingest to commit seq {target()}")


@contextlib.asynccontextmanager
async def run_service(db: Path, url: str, *, settings: IngestSettings | None = None,
                      writer: type[StoreWriter] | None = None,
                      token: str | None = None) -> AsyncIterator[Ingesting]:
    """Open `db` as its writer and ingest `url` until the block ends (then stop cleanly).

    `writer` replaces the StoreWriter class, for a store slower than the feed.
    """
    service = IngestService(db, url, token=token, settings=settings)
    if writer is not None:
        service.writer = writer(db, service.settings.retention)
    await service.open()
    task = asyncio.create_task(service.run(), name="ingest service")
    running = Ingesting(service, task)
    try:
        yield running
    except BaseException:
        service.stop()
        with contextlib.suppress(Exception):  # the block's own failure is the one to show
            await task
        raise
    service.stop()
    await task


# Reading the database back ------------------------------------------------------------------


def read_report(db: Path, time_from_ms: int | None = None, time_to_ms: int | None = None) -> dict:
    return Reader(db).report(time_from_ms, time_to_ms)


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows from a read-only connection (what a viewer would see)."""
    with contextlib.closing(connect(db)) as connection:
        return connection.execute(sql, params).fetchall()


def feed_state(db: Path) -> dict:
    """The feed_state row as a dict; empty while the database does not exist yet."""
    if not is_postgres(db) and not Path(db).exists():
        return {}
    try:
        with contextlib.closing(connect(db)) as connection:
            cursor = connection.execute("SELECT * FROM feed_state WHERE id = 1")
            row = cursor.fetchone()
            names = [column[0] for column in cursor.description]
    except STORE_ERRORS:  # created but not migrated yet
        return {}
    return dict(zip(names, row, strict=True)) if row is not None else {}


def stored_seq(db: Path) -> int:
    return feed_state(db).get("last_seq", 0)


def quarantine_rows(db: Path) -> list[tuple[int | None, str, str]]:
    """(seq, reason, raw) of every quarantined item, in the order received."""
    return query(db, "SELECT seq, reason, raw FROM quarantine ORDER BY id")


# The reference -------------------------------------------------------------------------------


def assert_matches_reference(report: dict, events: Iterable[dict]) -> None:
    """The report's customers and carriers equal the brute-force reference, figure for figure."""
    expected = reference_report(list(events))
    assert report["customers"] == expected["customers"]
    assert report["carriers"] == expected["carriers"]


def calls_by_outcome(events: Iterable[dict]) -> tuple[set[tuple[int, str]], set[tuple[int, str]]]:
    """(seq of call.start, call_id) of the calls that ended, and of those still open."""
    started: dict[str, int] = {}
    ended: set[str] = set()
    for event in events:
        if event["type"] == "call.start":
            started[event["call_id"]] = event["seq"]
        elif event["type"] == "call.end":
            ended.add(event["call_id"])
    closed = {(seq, call_id) for call_id, seq in started.items() if call_id in ended}
    still_open = {(seq, call_id) for call_id, seq in started.items() if call_id not in ended}
    return closed, still_open


def stored_calls(db: Path) -> tuple[list[tuple[int, str]], set[tuple[int, str]]]:
    """The call table's (seq, call_id) rows (a list, so a row stored twice would show) and the
    open calls' set."""
    calls = query(db, "SELECT seq, call_id FROM call ORDER BY seq")
    open_calls = set(query(db, "SELECT seq, call_id FROM open_call"))
    return calls, open_calls


def read_record(path: Path) -> list[dict]:
    """The events a `noc simulate --record` (or Simulator(record=...)) wrote, in order."""
    return [json.loads(line) for line in path.read_bytes().splitlines() if line]


# Subprocesses -------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nothing listens on (the kernel's pick, released at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def noc_environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The environment for a `noc` subprocess: no NOC_* of the caller's, no config file."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("NOC_")}
    env["NOC_CONFIG"] = str(tmp_path / "absent-config.toml")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(variables)
    return env


class NocProcess:
    """`python -m console.shell.cli ARGS` with its output in files, waited on without blocking."""

    def __init__(self, args: list[str], *, env: dict[str, str], log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        name = f"{args[0]}-{len(list(log_dir.iterdir()))}"
        self.stdout_path = log_dir / f"{name}.out"
        self.stderr_path = log_dir / f"{name}.err"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "console.shell.cli", *args], cwd=REPO, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.process.poll() is None

    async def wait(self) -> int:
        """The exit code, polled so that an in-process simulator keeps serving meanwhile."""
        await wait_until(lambda: not self.running(),
                         what=f"pid {self.pid} to exit (stderr: {self.stderr[-500:]!r})")
        return self.process.returncode

    def kill(self) -> None:
        if self.running():
            self.process.kill()
            self.process.wait(5)


class Processes:
    """Every process a test starts, killed at the end whatever happened."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.started: list[NocProcess] = []

    def noc(self, *args: str, env: dict[str, str] | None = None) -> NocProcess:
        process = NocProcess(list(args), env=env or self.env, log_dir=self.log_dir)
        self.started.append(process)
        return process

    def kill_all(self) -> None:
        for process in self.started:
            process.kill()

    async def simulate(self, *args: str, env: dict[str, str] | None = None,
                       ) -> tuple[NocProcess, str]:
        """`noc simulate --port 0 ARGS`; return it and its feed URL once it serves."""
        process = self.noc("simulate", "--port", "0", *args, env=env)

        def serving() -> str | None:
            if not process.running():
                raise AssertionError(f"noc simulate exited: {process.stderr}")
            found = re.search(r"serving (ws://\S+)", process.stderr)
            return found[1] if found else None

        url = await wait_until(serving, what="noc simulate to serve")
        return process, url


class RecordTail:
    """How many events a simulator has recorded so far (its head), read as the file grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._count = 0

    def head(self) -> int:
        if self.path.exists():
            with self.path.open("rb") as record:
                record.seek(self._offset)
                data = record.read()
            complete = data.rfind(b"\n") + 1  # a line being written counts once it is whole
            self._count += data.count(b"\n", 0, complete)
            self._offset += complete
        return self._count
