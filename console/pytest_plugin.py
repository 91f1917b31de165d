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

import pytest
import pytest_asyncio

from console import testing


@pytest.fixture(scope="session")
def noc_seeded_template(tmp_path_factory) -> object:
    """The seeded database, built once per test run: with pytest-xdist, the first worker builds
    it in the run's shared folder while the others wait on a lock, then all read the one file."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return testing.seed_database(tmp_path_factory.mktemp("noc-seed") / "seeded.db")
    shared = tmp_path_factory.getbasetemp().parent / "noc-seed"
    shared.mkdir(exist_ok=True)
    built = shared / "seeded.db"
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not built.exists():
            testing.seed_database(shared / "building.db").rename(built)
    return built


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
