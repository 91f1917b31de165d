"""pytest fixtures for testing noc (loaded automatically once noc-console is installed).

    def test_carriers_screen(noc_app, snap_compare):
        assert snap_compare(noc_app(), terminal_size=(80, 24), press=["3"],
                            run_before=noc_settle)

Fixtures: `noc_db` (a private copy of the seeded database, alert engine state included, with a
writer lock held so the feed shows healthy), `noc_clock` (the fixed clock: 2026-11-20 11:58:30
UTC), `noc_app` (a factory of viewer consoles on `noc_db`), `noc_feed` (a started ScriptedFeed),
and `noc_settle` (pass as `run_before` or await with a pilot: waits for the screen's first data).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_asyncio

from console import testing

_SEED_FIXTURE = "noc_seeded_template"
_prebuild: subprocess.Popen | None = None


def shared_seed(folder: str | Path) -> Path:
    """The seeded database in `folder`, built there by the first caller (of any process) while
    the others wait on a lock, then read by all."""
    shared = Path(folder)
    shared.mkdir(exist_ok=True)
    built = shared / "seeded.db"
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not built.exists():
            testing.seed_database(shared / "building.db").rename(built)
    return built


def _shared_seed_folder(config: pytest.Config) -> Path:
    return config._tmp_path_factory.getbasetemp().parent / "noc-seed"


def pytest_collection_finish(session: pytest.Session) -> None:
    """With pytest-xdist, the first worker starts building the seeded database in a process of
    its own as soon as the tests are known, so that the tests before the first that needs it
    run meanwhile, rather than a worker waiting for it idle."""
    global _prebuild
    if os.environ.get("PYTEST_XDIST_WORKER") != "gw0" or not any(
            _SEED_FIXTURE in getattr(item, "fixturenames", ()) for item in session.items):
        return
    folder = _shared_seed_folder(session.config)
    _prebuild = subprocess.Popen(
        [sys.executable, "-c", "import sys; from console.pytest_plugin import shared_seed; "
         "shared_seed(sys.argv[1])", str(folder)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pytest_sessionfinish() -> None:
    global _prebuild
    if _prebuild is not None:  # a run ended (or was cut short) before the seed was needed
        _prebuild.kill()
        _prebuild.wait()
        _prebuild = None


@pytest.fixture(scope="session")
def noc_seeded_template(tmp_path_factory, pytestconfig) -> object:
    """The seeded database, built once per test run: with pytest-xdist, in the run's shared
    folder (see `pytest_collection_finish`), read by every worker."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return testing.seed_database(tmp_path_factory.mktemp("noc-seed") / "seeded.db")
    return shared_seed(_shared_seed_folder(pytestconfig))


@pytest.fixture
def noc_db(noc_seeded_template, tmp_path):
    path = testing.copy_database(noc_seeded_template, tmp_path / "noc.db")
    lock = testing.hold_writer_lock(path)
    yield path
    lock.release()


@pytest.fixture
def noc_clock():
    return testing.fixed_clock()


@pytest.fixture
def noc_app(noc_db, noc_clock):
    def factory(**options):
        options.setdefault("clock", noc_clock)
        return testing.make_app(noc_db, **options)

    return factory


@pytest.fixture
def noc_settle():
    return testing.settle


@pytest_asyncio.fixture
async def noc_feed():
    feed = await testing.ScriptedFeed().start()
    yield feed
    await feed.stop()
