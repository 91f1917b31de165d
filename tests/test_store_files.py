"""The database's files: every connection opens them the same way, and the ones noc creates are
private (0600 files in a 0700 folder)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from console import testing
from store.database import private_folder
from store.queries import Reader
from tests.feedkit import run_service, running_simulator
from widgets.feed_badge import FeedBadge


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask():
    """The umask most systems give a user (022), whatever the test runner's."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


async def test_a_database_whose_folder_name_holds_a_hash_shows_in_the_console(
        noc_seeded_template, noc_clock, tmp_path):
    folder = tmp_path / "site #1?x=%20"
    folder.mkdir()
    path = testing.copy_database(noc_seeded_template, folder / "noc.db")
    seeded = Reader(noc_seeded_template).report()
    assert Reader(path).report() == seeded  # `noc report` reads it
    lock = testing.hold_writer_lock(path)
    try:
        app = testing.make_app(path, clock=noc_clock)
        async with app.run_test(size=(120, 40)) as pilot:
            await testing.settle(pilot)
            badge = app.screen.query_one(FeedBadge).state
            assert (badge.status, badge.last_seq) == ("connected", seeded["last_seq"])
            await pilot.press("2")
            await testing.settle(pilot)
            assert "Acme Telecom" in str(app.screen.query_one("WindowTable").rows[0])
    finally:
        lock.release()


async def test_the_files_noc_creates_are_private(tmp_path, usual_umask):
    folder = private_folder(tmp_path / "data" / "noc")
    assert mode(folder) == 0o700
    db = folder / "noc.db"
    async with (running_simulator(speed=0, limit=2_000) as (_sim, url),
                run_service(db, url) as ingesting):
        await ingesting.until_committed(2_000)
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}.writer")]
        assert {file.name: mode(file) for file in files} == {file.name: 0o600 for file in files}
