"""A list of thousands of accounts: the store sorts and searches it, and the table holds only the
rows around those shown."""

from __future__ import annotations

import pytest

from console import testing
from tests.test_ingest import Harness, ev
from widgets.window_table import WindowTable

ACCOUNTS = 3_000


@pytest.fixture
def many(tmp_path):
    """Customers c0000 to c2999, named "Customer 0000"..., the first with the most money."""
    path = tmp_path / "noc.db"
    harness = Harness(path)
    harness.feed([ev(seq, "account", 0, kind="customer", id=f"c{n:04d}", name=f"Customer {n:04d}",
                     balance=float(ACCOUNTS - n), currency="USD")
                  for seq, n in enumerate(range(ACCOUNTS), 1)])
    harness.flush()
    harness.writer._connection.close()
    lock = testing.hold_writer_lock(path)
    yield path
    lock.release()


def listed(table: WindowTable) -> list[str]:
    return [key for key, _ in table.rows]


async def test_thousands_of_accounts_are_read_a_window_at_a_time(many):
    app = testing.make_app(many)
    async with app.run_test(size=(80, 24)) as pilot:
        await testing.settle(pilot)
        await pilot.press("2")
        await testing.settle(pilot)
        table = app.screen.query_one(WindowTable)
        assert table.total == ACCOUNTS and len(table.rows) <= 100
        # Trouble first: the 49 customers with less than 50 USD left, then the others.
        assert listed(table)[:2] == ["c2951", "c2952"]
        assert "3,000 customers · sorted by trouble ▼ (s)" in str(
            app.screen.query_one("#list-status").render())
        await pilot.press("s")  # by name: the cursor stays on its customer
        await testing.settle(pilot)
        assert table.highlighted_key == "c2951"
        await pilot.press("home")
        await testing.settle(pilot)
        assert listed(table)[:2] == ["c0000", "c0001"]
        await pilot.press("end")
        await testing.settle(pilot)
        assert table.highlighted_key == "c2999" and len(table.rows) <= 100
        assert "3,000 customers · sorted by name ▲ (s)" in str(
            app.screen.query_one("#list-status").render())
        await pilot.press(*"ssss")  # channels, ASR, attempts, then balance, lowest first
        await testing.settle(pilot)
        assert (table.highlighted_key, table.cursor) == ("c2999", 0)
        await pilot.press("slash", *"0042")
        await testing.settle(pilot)
        assert listed(table) == ["c0042"] and table.total == 1
