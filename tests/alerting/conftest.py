"""Fixtures the alerting tests share: a database file, and a network of one customer (Acme
Telecom) ingested into it by the real path."""

from __future__ import annotations

import pytest

from tests.alerting.kit import Network


@pytest.fixture
def db(tmp_path):
    return tmp_path / "noc.db"


@pytest.fixture
def network(db):
    net = Network(db)
    net.account("customer", "acme", name="Acme Telecom")
    yield net
    net.close()
