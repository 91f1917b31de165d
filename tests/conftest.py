"""Fixtures the feed's tests share: a database path, and the noc processes a test starts."""

from __future__ import annotations

import pytest

from tests.feedkit import Processes, noc_environment


@pytest.fixture
def db(tmp_path):
    return tmp_path / "noc.db"


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path / "logs", noc_environment(tmp_path))
    yield started
    started.kill_all()
