"""Outside code run apart and bounded: a rule's template, or a script area's function, runs in a
child process within a time and a memory bound, so that a template that loops for ever or
builds a string of gigabytes costs its rule a refusal with the reason, never the writer its
memory, its rounds or its database lock.

The child (`python -m console.alerting.bounded`, a fresh interpreter: never a fork of the
writer's threads, nor a re-run of its main script) serves one call at a time over a socket. A
call over its time is ended by killing the child; one over its memory fails inside the child,
whose address space is capped (RLIMIT_AS); either way the next call starts a fresh child. The
child's start, and its import of the called function's module, are not part of the bound.
"""

from __future__ import annotations

import importlib
import resource
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

START_S = 60.0  # a child's start on a busy machine
CPU_MARGIN = 10  # a child left alone (its parent killed) dies after this many bounds of CPU
_OK, _ERROR, _MEMORY = "ok", "error", "memory"


class OverBound(Exception):
    """A call went over its bound, or its process could not serve it; str() says which."""


@dataclass(frozen=True)
class Bounds:
    seconds: float
    memory_mib: int


class BoundedProcess:
    """Calls `function(*args)` in a child process within `bounds`, one call at a time (from
    any thread). The function and its arguments must pickle: a module-level function, plain
    values; so must its result."""

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self._lock = threading.Lock()
        self._child: subprocess.Popen | None = None
        self._connection: Connection | None = None
        self._imported: set[str] = set()  # modules the child has imported

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """The function's result, or its exception; OverBound if it went over a bound."""
        with self._lock:
            connection = self._connection or self._start()
            if function.__module__ not in self._imported:
                self._exchange(connection, START_S, _import, function.__module__)
                self._imported.add(function.__module__)
            status, value = self._exchange(connection, self.bounds.seconds, function, *args)
        if status == _ERROR:
            raise value
        return value

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _start(self) -> Connection:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            self._child = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno()),
                 str(self.bounds.memory_mib << 20), str(self.bounds.seconds * CPU_MARGIN)],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._connection = Connection(ours.detach())
        self._receive(self._connection, START_S)  # ready
        return self._connection

    def _exchange(self, connection: Connection, seconds: float,
                  function: Callable[..., Any], *args: Any) -> tuple[str, Any]:
        try:
            connection.send((function, args))
        except OSError:
            self._stop()
            raise OverBound("ended unexpectedly") from None
        return self._receive(connection, seconds)

    def _receive(self, connection: Connection, seconds: float) -> tuple[str, Any]:
        try:
            if not connection.poll(seconds):
                self._stop()
                raise OverBound(f"took longer than {seconds:g} s")
            status, value = connection.recv()
        except (EOFError, OSError):
            self._stop()
            raise OverBound("ended unexpectedly") from None
        if status == _MEMORY:
            self._stop()
            raise OverBound(f"needed more than {self.bounds.memory_mib} MiB")
        return status, value

    def _stop(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child.wait()
            self._connection.close()
        self._child = self._connection = None
        self._imported.clear()


def _import(module: str) -> None:
    importlib.import_module(module)


def serve(connection: Connection, memory_bytes: int, cpu_seconds: float) -> None:
    """The child: cap its memory, then answer calls until the parent goes away. Each call also
    caps the child's CPU time, so that a child whose parent was killed mid-call ends anyway."""
    space = _address_space()
    if space:
        resource.setrlimit(resource.RLIMIT_AS, (space + memory_bytes, space + memory_bytes))
    connection.send((_OK, None))
    while True:
        try:
            function, args = connection.recv()
        except (EOFError, OSError):
            return
        usage = resource.getrusage(resource.RUSAGE_SELF)
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = int(usage.ru_utime + usage.ru_stime + cpu_seconds) + 1
        resource.setrlimit(resource.RLIMIT_CPU,
                           (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))
        try:
            reply = (_OK, function(*args))
        except MemoryError:
            reply = (_MEMORY, None)
        except Exception as error:
            reply = (_ERROR, error)
        try:
            connection.send(reply)
        except Exception as error:  # a result or an exception that does not pickle
            connection.send((_ERROR, RuntimeError(f"{type(error).__name__}: {error}")))


def _address_space() -> int:
    """The child's address space now (Linux; elsewhere 0, and only the time bound holds)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError):
        return 0


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])), int(sys.argv[2]), float(sys.argv[3]))
