"""Account lists read a page at a time, sorted and searched in SQL: checked against every account
read whole and sorted and searched in Python, on accounts built to make sorts tie and case fold
(an ß, a dotted İ, names equal but for case, no balance, no traffic, disabled, short of credit)."""

from __future__ import annotations

import random

import pytest

from store.views import ACCOUNT_SORTS, AccountRow, ConsoleData
from tests.test_ingest import T0, Harness, ev

NOW_MS = round((T0 + 600) * 1000)
NAMES = ["Straße Telecom", "STRASSE telecom", "İstanbul Net", "istanbul net", "Øresund",
         "acme", "Acme", "ACME", "Zeta", "zeta 2", "Blue", "blue"]

def trouble(a: AccountRow) -> tuple:
    """Stopped (penalised or disabled) first, then the most of: failing, at the channel or CPS
    limit, short of credit; then the most consecutive failures, then by name."""
    score = ((a.consecutive_failures or 0) >= 50) + bool(
        a.channel_limit and a.channels >= a.channel_limit) + bool(
        a.cps_limit and a.cps >= a.cps_limit) + (
        a.kind == "customer" and a.balance is not None and a.balance < 50)
    return (a.status not in ("penalty", "disabled"), -score, -(a.consecutive_failures or 0),
            a.name.casefold(), a.id)


# The same orders, as a person would state them (ties by id).
REFERENCE = {
    "trouble": trouble,
    "name": lambda a: (a.name.casefold(), a.id),
    "channels": lambda a: (-a.channels, a.name.casefold(), a.id),
    "asr": lambda a: (a.asr is None, a.asr or 0.0, -a.attempts, a.id),
    "attempts": lambda a: (-a.attempts, a.name.casefold(), a.id),
    "failures": lambda a: (-(a.consecutive_failures or 0), a.name.casefold(), a.id),
    "balance": lambda a: (a.balance is None, a.balance or 0.0, a.name.casefold(), a.id),
}


def build(path) -> None:
    pick = random.Random(11)
    events = []
    for n in range(60):
        for kind, prefix in (("customer", "u"), ("carrier", "k")):
            events.append(ev(0, "account", -3600, kind=kind, id=f"{prefix}{n:02d}",
                             name=pick.choice(NAMES) if n % 3 else f"{kind} {n}",
                             channels=50, cps=5, enabled=n != 7,  # one of each kind disabled
                             **({"balance": pick.choice([0, 10, 10, 250.5]), "currency": "USD"}
                                if kind == "customer" and n % 4 else {})))
    for n in range(400):
        customer, carrier = f"u{pick.randrange(40):02d}", f"k{pick.randrange(40):02d}"
        at, call = -pick.randrange(1, 3000), f"call-{n}"
        code = pick.choice([200, 200, 503, 404])
        events += [
            ev(0, "call.start", at, call_id=call, customer=customer, cli="1", dst="44"),
            ev(0, "call.attempt", at, call_id=call, attempt=1, carrier=carrier, route="44"),
        ]
        if n % 10 == 0:  # still in progress: a live channel
            continue
        events += [
            ev(0, "call.attempt_end", at + 5, call_id=call, attempt=1, code=code),
            ev(0, "call.end", at + 5, call_id=call, code=code, duration=5.0 if code == 200 else 0),
        ]
    harness = Harness(path)
    harness.feed([{**event, "seq": seq} for seq, event in enumerate(events, 1)])
    harness.flush()
    harness.writer._connection.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> ConsoleData:
    path = tmp_path_factory.mktemp("pages") / "noc.db"
    build(path)
    return ConsoleData(path)


def found(rows: list[AccountRow], search: str) -> list[AccountRow]:
    needle = search.strip().casefold()
    return [a for a in rows if needle in a.id.casefold() or needle in a.name.casefold()]


@pytest.mark.parametrize("kind", ["customer", "carrier"])
@pytest.mark.parametrize("sort", list(ACCOUNT_SORTS))
@pytest.mark.parametrize("search", ["", "strasse", "İSTANBUL", " acme ", "u1", "nothing"])
def test_a_page_is_the_slice_of_every_account_sorted_and_searched(data, kind, sort, search):
    every = data.accounts(kind, NOW_MS)
    expected = sorted(found(every, search), key=REFERENCE[sort])
    for offset, limit in ((0, 7), (5, 20), (len(expected) - 3, 10), (500, 10)):
        offset = max(0, offset)
        page = data.account_page(kind, NOW_MS, sort=sort, search=search, offset=offset,
                                 limit=limit)
        assert (page.total, page.matched, page.offset) == (len(every), len(expected), offset)
        assert list(page.rows) == expected[offset:offset + limit]


def test_the_account_kept_is_found_wherever_the_sort_puts_it(data):
    every = data.accounts("customer", NOW_MS)
    for sort in ACCOUNT_SORTS:
        order = [a.id for a in sorted(every, key=REFERENCE[sort])]
        for kept in ("u05", "u31", "u59"):
            page = data.account_page("customer", NOW_MS, sort=sort, limit=5, keep=kept)
            assert page.kept == order.index(kept)
            assert [a.id for a in page.rows] == order[:5]
    assert data.account_page("customer", NOW_MS, search="zeta", keep="u00").kept is None


def test_one_account_reads_as_in_the_list(data):
    every = {a.id: a for a in data.accounts("carrier", NOW_MS)}
    assert data.account("carrier", "k07", NOW_MS) == every["k07"]
    assert data.account("carrier", "u07", NOW_MS) is None  # a customer's id


def test_a_page_that_follows_the_account_kept_reads_around_it_in_one_go(data):
    """After a sort or a search the list reads the rows around the highlighted account where
    the new order puts it (the rows it shows already, if it is among them), or from the top
    when the account is gone."""
    order = [a.id for a in sorted(data.accounts("customer", NOW_MS), key=REFERENCE["name"])]
    far = order[40]
    page = data.account_page("customer", NOW_MS, offset=0, limit=9, keep=far, follow=True)
    assert (page.offset, page.kept) == (37, 40)
    assert [a.id for a in page.rows] == order[37:46]
    near = order[3]
    page = data.account_page("customer", NOW_MS, offset=2, limit=9, keep=near, follow=True)
    assert page.offset == 2 and page.rows[1].id == near
    page = data.account_page("customer", NOW_MS, search="zeta", offset=30, limit=9,
                             keep="u00", follow=True)
    assert (page.offset, page.kept) == (0, None)
