"""The writer's store trouble: why a write failed, in words for the user, whether waiting can mend
it, and who is told.

Every part of the writer that writes (the ingest, the alert engine, the control requests it
carries out) reports its failures and recoveries to one StoreHealth. It logs each change in one
line and publishes the troubles in the writer's lock file (see WriterLock), which every console
reads: a writer whose commits fail cannot say so in the database itself.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from store.database import BackendError, WriterLock

log = logging.getLogger(__name__)

DETAIL_CHARS = 200
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0

# What waiting (or the operator) can mend, by SQLite's primary result code, in a user's words.
PASSING = {
    sqlite3.SQLITE_BUSY: "database locked by another process",
    sqlite3.SQLITE_LOCKED: "database locked by another process",
    sqlite3.SQLITE_FULL: "disk full",
    sqlite3.SQLITE_IOERR: "I/O error",
    sqlite3.SQLITE_READONLY: "database read-only",
    sqlite3.SQLITE_CANTOPEN: "cannot open the database files",
    sqlite3.SQLITE_NOMEM: "out of memory",
    sqlite3.SQLITE_PROTOCOL: "database locked by another process",
}
LASTING = {
    sqlite3.SQLITE_CORRUPT: "database file corrupt",
    sqlite3.SQLITE_NOTADB: "database file corrupt",
}

# The same for a PostgreSQL server, by SQLSTATE (or its class, the first two characters).
SERVER_PASSING = {
    "08": "database server unreachable",
    "53100": "disk full",
    "53200": "out of memory",
    "53300": "too many connections to the database server",
    "57P01": "database server restarting",
    "57P02": "database server restarting",
    "57P03": "database server restarting",
    "55P03": "database locked by another process",
    "40001": "database busy (serialization failure)",
    "40P01": "database busy (deadlock)",
    "25006": "database read-only",
}
SERVER_LASTING = {"XX001": "database corrupt", "XX002": "database corrupt"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class StoreFault:
    """A failed write: its cause in a user's words ("disk full"), SQLite's own, and whether it
    is worth trying again (a lock held, a full disk) or not (a corrupt file, a bug)."""

    cause: str
    detail: str
    passing: bool

    def __str__(self) -> str:
        return self.cause if self.detail in ("", self.cause) else f"{self.cause} ({self.detail})"


def fault_of(error: BaseException) -> StoreFault:
    detail = str(error)[:DETAIL_CHARS]
    if isinstance(error, BackendError):
        for known, passing in ((SERVER_PASSING, True), (SERVER_LASTING, False)):
            cause = known.get(error.code) or known.get(error.code[:2])
            if cause:
                return StoreFault(cause, detail, passing=passing)
        return StoreFault("database server error", detail, passing=False)
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        primary = code & 0xFF
        if primary in PASSING:
            return StoreFault(PASSING[primary], detail, passing=True)
        if primary in LASTING:
            return StoreFault(LASTING[primary], detail, passing=False)
    if isinstance(error, sqlite3.OperationalError):  # no code: SQLite's words tell
        return StoreFault(detail, detail, passing="locked" in detail or "full" in detail)
    return StoreFault(f"{type(error).__name__}", detail, passing=False)


def backoff() -> Iterator[float]:
    """1 s doubling to 30 s between tries of a failed write."""
    delay = BACKOFF_FIRST_S
    while True:
        yield delay
        delay = min(delay * 2, BACKOFF_MAX_S)


@dataclass
class Trouble:
    part: str  # what failed to write: "ingest", "alert engine", "control requests"
    cause: str
    detail: str
    since_ms: int
    tries: int
    retry_at_ms: int | None


class StoreHealth:
    """The writer's store troubles, told to the log and to every console (through `lock`)."""

    def __init__(self, lock: WriterLock | None = None,
                 clock: Callable[[], int] = now_ms) -> None:
        self.lock = lock
        self.clock = clock
        self.troubles: dict[str, Trouble] = {}
        self.findings: list[str] = []  # what the start-up check found wrong
        self.stopped = ""  # why the writer stopped, if its store made it
        self.catching_up: tuple[int, int] | None = None  # (seq stored, the feed's head)

    def failed(self, part: str, fault: StoreFault, retry_in_s: float | None) -> None:
        """`part` could not write; it tries again in `retry_in_s` (None: it does not)."""
        now = self.clock()
        known = self.troubles.get(part)
        retry_at = None if retry_in_s is None else now + round(retry_in_s * 1000)
        self.troubles[part] = Trouble(part, fault.cause, fault.detail,
                                      known.since_ms if known else now,
                                      (known.tries if known else 0) + 1, retry_at)
        then = f"retrying in {retry_in_s:.0f} s" if retry_in_s is not None else "not retried"
        log.warning("store: %s, %s (%s could not write: %s)", fault.cause, then, part,
                    fault.detail)
        self._publish()

    def recovered(self, part: str) -> None:
        trouble = self.troubles.pop(part, None)
        if trouble is None:
            return
        log.warning("store: %s writes again, after %.0f s and %d failed tries (%s)", part,
                    (self.clock() - trouble.since_ms) / 1000, trouble.tries, trouble.cause)
        self._publish()

    def found(self, finding: str) -> None:
        """Something the store should never hold (a start-up check's finding): said loudly."""
        log.error("store: %s", finding)
        self.findings.append(finding)
        self._publish()

    def stopping(self, why: str) -> None:
        """The writer stops because of its store: consoles see why after it has gone."""
        self.stopped = why
        self._publish()

    def behind(self, stored: int, head: int | None) -> None:
        """The store holds the feed up to `stored` of `head` (None: it is current): consoles
        say it is catching up rather than show a backlog's figures as today's."""
        catching_up = None if head is None else (stored, head)
        if catching_up != self.catching_up:
            self.catching_up = catching_up
            self._publish()

    def _publish(self) -> None:
        if self.lock is not None:
            self.lock.publish({"troubles": [asdict(t) for t in self.troubles.values()],
                               "findings": self.findings[-5:], "stopped": self.stopped,
                               "catching_up": self.catching_up})
