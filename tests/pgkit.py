"""A throwaway PostgreSQL cluster for the tests: Debian's binaries, a free loopback port, a fresh
database per test. Skips, saying why, where the binaries are missing (.ci/run installs them).

The cluster runs as the invoking user, or as `postgres` when that is root (initdb refuses root).
It trades durability for speed (fsync off): a kill -9 of the writer is still a real one, since
only the server's own crash would lose what fsync keeps.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.feedkit import free_port

BIN_GLOB = "/usr/lib/postgresql/*/bin"
ROOT_PREFIX = "noc-pg-"
OWNER = "owner"  # the pid of the test session a cluster belongs to


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl: $NOC_PG_BIN, else the newest Debian PostgreSQL."""
    found = [Path(os.environ["NOC_PG_BIN"])] if os.environ.get("NOC_PG_BIN") else sorted(
        (Path(p) for p in glob.glob(BIN_GLOB)), key=lambda p: int(p.parent.name)
        if p.parent.name.isdigit() else 0)
    for folder in reversed(found):
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


class Cluster:
    """A running cluster; `database()` makes a new empty database and returns its URL."""

    def __init__(self, bin_dir: Path, folder: Path | None = None) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX, dir=folder))
        self.user = None if os.geteuid() else "postgres"
        self._names = itertools.count(1)

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return _as_owner(list(args), self.bin_dir)

    def start(self) -> None:
        (self.root / OWNER).write_text(str(os.getpid()))
        if self.user:
            account = pwd.getpwnam(self.user)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.root / "data"), "-A", "trust", "-U", "postgres",
                  "--no-sync")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200 -c shared_buffers=32MB")
        self._run("pg_ctl", "-D", str(self.root / "data"), "-o", options, "-l",
                  str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        name = f"noc_{os.getpid()}_{next(self._names)}"
        from store.postgres import raw_connection

        with raw_connection(self.url()) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def stop_orphans(bin_dir: Path, folder: Path | None = None) -> list[Path]:
    """Stop and remove the clusters of test sessions that died without stopping theirs (killed
    by a timeout, say: pg_ctl's server outlives them); those of live sessions are left alone."""
    stopped = []
    for root in Path(folder or tempfile.gettempdir()).glob(f"{ROOT_PREFIX}*"):
        try:
            owner = int((root / OWNER).read_text())
            os.kill(owner, 0)
            continue  # its session runs
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue  # not ours to judge (another user's, or being made)
        with contextlib.suppress(subprocess.CalledProcessError):
            _as_owner(["pg_ctl", "-D", str(root / "data"), "-m", "immediate", "-w", "stop"],
                      bin_dir)
        shutil.rmtree(root, ignore_errors=True)
        stopped.append(root)
    return stopped


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster | str]:
    """A started cluster, or the reason there can be none here."""
    bin_dir = binaries()
    if bin_dir is not None:
        stop_orphans(bin_dir)
    if bin_dir is None:
        yield (f"PostgreSQL is not installed (no initdb under {BIN_GLOB}; .ci/run installs "
               "Debian's postgresql)")
        return
    if os.geteuid() == 0 and not _has_user("postgres"):
        yield "running as root and there is no `postgres` user to run the cluster as"
        return
    cluster = Cluster(bin_dir)
    try:
        cluster.start()
    except subprocess.CalledProcessError as error:
        cluster.stop()
        yield f"the PostgreSQL cluster did not start: {error.stderr.strip()[-300:]}"
        return
    try:
        yield cluster
    finally:
        cluster.stop()


def _as_owner(args: list[str], bin_dir: Path) -> subprocess.CompletedProcess:
    """One of PostgreSQL's programs, as the user clusters run as (`postgres` for root)."""
    command = [str(bin_dir / args[0]), *args[1:]]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, check=True, capture_output=True, text=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
