"""The engine's own connection to the store, used from one thread at a time.

Rounds and outbox bookkeeping run on a dedicated thread (`call`), so that a busy store (the
ingest writer holding the lock for a commit) never stalls the event loop a console draws from.
Tests may also use `connection` directly from their own thread, between calls.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from store.database import connect, locate

T = TypeVar("T")


class EngineConnection:
    def __init__(self, path: str | Path) -> None:
        self.path = locate(path)
        self._connection: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection, opened again if the server has ended it (a PostgreSQL restart)."""
        if self._connection is not None and getattr(self._connection, "lost", False):
            self.close_now()
        if self._connection is None:
            self._connection = connect(self.path, mode="rw")
        return self._connection

    async def call(self, function: Callable[..., T], *args) -> T:
        """Run `function(*args)` on the connection's thread."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="noc-alerts")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def close(self) -> None:
        if self._executor is not None:
            await self.call(self.close_now)
            self._executor.shutdown(wait=True)
            self._executor = None
        self.close_now()

    def close_now(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
