"""Fixtures the feed's tests share: a database (a SQLite file, or a PostgreSQL database where a
test asks for both stores), and the noc processes a test starts."""

from __future__ import annotations

import pytest

from tests.feedkit import Processes, noc_environment
from tests.pgkit import Cluster, running_cluster

STORES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_cluster():
    """One PostgreSQL cluster per test session (per xdist worker): started on first use."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_db(postgres_cluster):
    """The URL of a new, empty PostgreSQL database; the test is skipped where none can run."""
    if not isinstance(postgres_cluster, Cluster):
        pytest.skip(postgres_cluster)
    return postgres_cluster.database()


def database_of(request, tmp_path):
    """The database a test parametrized over STORES (as `store`) runs against."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return request.getfixturevalue("postgres_db")
    return tmp_path / "noc.db"


@pytest.fixture
def db(tmp_path):
    return tmp_path / "noc.db"


@pytest.fixture(params=STORES)
def any_db(request, tmp_path):
    """A database of either store: the test runs once against each."""
    return database_of(request, tmp_path)


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path / "logs", noc_environment(tmp_path))
    yield started
    started.kill_all()
