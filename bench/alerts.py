"""Alert evaluation: 10,000 rules over 1,000 accounts against a busy store; the time of a round.

    python bench/alerts.py [--rules N] [--accounts N] [--hours H] [--rounds N]

The store is seeded directly (for the benchmark only): accounts, `--hours` of per-minute ended
rollups for every account (what the ingest path writes), live channels and CPS, carrier failure
counters, quarantined input. Rules are spread over the areas (ASR, NER, ACD, PDD on 5, 15 and 60
minute windows, balance, channels, CPS, consecutive failures, failovers, breaches, no traffic),
ten per account, plus a few rules on all accounts of a kind.

Each timed round runs at a clock one second later than the last, after the "ingest" has added
random calls to the current minute of a fifth of the accounts, so values move (wildly: dozens of
alerts fire and clear every second, far more than a real network), states change, and values
are written every five seconds, as in production. The first round (which loads the rules and
evaluates and writes every pair) is reported apart. Target: a median round under 100 ms of wall
clock; CPU time is printed too, as this machine may be shared.
"""

from __future__ import annotations

import argparse
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from console.alerting.engine import AlertEngine
from console.alerting.rules import validate
from console.alerting.settings import AlertSettings
from store import alerting as store
from store.database import configure, prepare
from store.metrics import TOTALS_FIELDS

TARGET_MS = 100.0
ADDED = ("attempts", "answered", "duration_ms", "pdd_sum_ms", "pdd_count")  # by a second's calls
NOW_MS = 1_763_700_000_000 + 7 * 3_600_000 + 30_000
MINUTE_MS = 60_000

SHAPES = [  # (area, operator, threshold, reset, sample period, minimum sample)
    ("asr", "<=", 30, 31, "5m", 20),
    ("asr", "<=", 25, 28, "15m", 50),
    ("asr", "<", 20, 22, "1h", 100),
    ("ner", "<=", 60, 62, "15m", 20),
    ("acd", "<", 30, 35, "1h", 20),
    ("pdd", ">", 5000, 4000, "15m", 20),
    ("balance", "<", 500, 600, None, 0),
    ("channels", ">=", 180, 150, None, 0),
    ("cps", ">=", 20, 15, None, 0),
    ("no_traffic", None, None, None, "15m", 0),
]
CARRIER_SHAPES = [("consecutive_failures", ">=", 50, 0, None, 0),
                  ("failovers", ">", 30, 20, "5m", 0)]
CUSTOMER_SHAPES = [("channel_breaches", ">", 20, 5, "5m", 0)]


def seed(path: Path, accounts: int, hours: int, rng: random.Random) -> list[tuple[str, str]]:
    prepare(path)
    db = sqlite3.connect(path, isolation_level=None)
    configure(db, writer=True)
    subjects = [("customer" if i % 10 < 7 else "carrier", f"acct-{i:04d}")
                for i in range(accounts)]
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO account (kind, id, name, balance, currency, enabled, updated_ms) "
        "VALUES (?, ?, ?, ?, 'USD', 1, ?)",
        [(kind, account, account.upper(), rng.uniform(0, 20_000), NOW_MS)
         for kind, account in subjects])
    columns = ("kind", "account", "route", "bucket", *TOTALS_FIELDS)
    sql = (f"INSERT INTO rollup_ended_minute ({', '.join(columns)}) "
           f"VALUES ({', '.join('?' * len(columns))})")
    last = NOW_MS - NOW_MS % MINUTE_MS
    for minute in range(hours * 60):
        bucket = last - minute * MINUTE_MS
        db.executemany(sql, [(kind, account, "", bucket, *minute_totals(rng))
                             for kind, account in subjects])
    db.executemany("INSERT INTO live_account (kind, id, channels, cps, updated_ms) "
                   "VALUES (?, ?, ?, ?, ?)",
                   [(kind, account, rng.randint(0, 200), rng.randint(0, 25), NOW_MS)
                    for kind, account in subjects])
    db.executemany("INSERT INTO carrier_state (carrier, consecutive_failures, updated_ms) "
                   "VALUES (?, ?, ?)", [(account, rng.randint(0, 80), NOW_MS)
                                        for kind, account in subjects if kind == "carrier"])
    db.executemany("INSERT INTO quarantine (received_ms, seq, reason, raw) VALUES (?, ?, ?, ?)",
                   [(NOW_MS - i * 1000, None, "bad", "{}") for i in range(200)])
    db.execute("COMMIT")
    db.close()
    return subjects


def minute_totals(rng: random.Random) -> tuple[int, ...]:
    """One account-minute of a busy network: about 20 calls."""
    attempts = rng.randint(0, 40)
    answered = rng.randint(0, attempts)
    values = dict.fromkeys(TOTALS_FIELDS, 0) | dict(
        attempts=attempts, answered=answered, ner_answered=min(attempts, answered + 3),
        duration_ms=answered * rng.randint(20_000, 200_000), billed_ms=answered * 60_000,
        pdd_sum_ms=attempts * rng.randint(1_000, 6_000), pdd_count=attempts,
        revenue_micro=answered * 50_000, cost_micro=answered * 40_000,
        code_200=answered, failover=rng.randint(0, 8), breach_channel=rng.randint(0, 6),
        peak_cps=rng.randint(0, 10), peak_channels=rng.randint(0, 100))
    return tuple(values[name] for name in TOTALS_FIELDS)


def write_rules(path: Path, subjects: list[tuple[str, str]], count: int) -> int:
    """`count` rules: ten per account, the rest on all accounts of a kind."""
    templates = {}

    def shaped(shape, kind: str, company: str, title: str):
        area, operator, threshold, reset, period, minimum = shape
        key = (shape, kind, company == "*")
        if key not in templates:  # validate each shape once: 10,000 trial renders are slow
            fields = dict(title="x", kind=kind, company=company, area=area,
                          recipients=["noc@example.com"], operator=operator,
                          threshold=threshold, reset_threshold=reset, sample_period=period,
                          minimum_sample=minimum)
            templates[key] = validate({k: v for k, v in fields.items() if v is not None},
                                      named_templates={}, now_ms=NOW_MS)
        return replace(templates[key], title=title, company="" if company == "*" else company)

    rules = []
    for kind, account in subjects:
        own = SHAPES + (CARRIER_SHAPES if kind == "carrier" else CUSTOMER_SHAPES)
        for index in range(10):
            shape = own[index % len(own)]
            if shape[0] == "no_traffic" and index >= len(SHAPES):
                continue
            rules.append(shaped(shape, kind, account, f"{account} {index} {shape[0]}"))
    rules = rules[:count - 10]
    for index, shape in enumerate(SHAPES[:5] * 2):
        kind = "customer" if index < 5 else "carrier"
        rules.append(shaped(shape, kind, "*", f"all {kind}s {index} {shape[0]}"))
    with store.writing(path) as db:
        for rule in rules:
            store.write_rule(db, rule)
    return len(rules)


def ingest_a_second(path: Path, subjects, now_ms: int, rng: random.Random) -> None:
    """What the writer adds in a second: calls ended in the current minute of some accounts."""
    bucket = now_ms - now_ms % MINUTE_MS
    columns = ("kind", "account", "route", "bucket", *TOTALS_FIELDS)
    sql = (f"INSERT INTO rollup_ended_minute ({', '.join(columns)}) "
           f"VALUES ({', '.join('?' * len(columns))}) "
           "ON CONFLICT(kind, account, route, bucket) DO UPDATE SET "
           + ", ".join(f"{name} = {name} + excluded.{name}" for name in ADDED))
    db = sqlite3.connect(path, isolation_level=None)
    configure(db, writer=True)
    db.execute("BEGIN")
    db.executemany(sql, [(kind, account, "", bucket, *minute_totals(rng))
                         for kind, account in rng.sample(subjects, len(subjects) // 5)])
    db.execute("COMMIT")
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--hours", type=int, default=6, help="history of per-minute rollups")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        started = time.perf_counter()
        subjects = seed(path, args.accounts, args.hours, rng)
        rules = write_rules(path, subjects, args.rules)
        print(f"seeded {args.accounts:,} accounts, {args.hours * 60 * args.accounts:,} minute "
              f"rollups, {rules:,} rules in {time.perf_counter() - started:.1f} s")
        clock = [NOW_MS]
        engine = AlertEngine(path, AlertSettings(), clock=lambda: clock[0])
        started = time.perf_counter()
        first = engine.evaluate_round()
        first_ms = (time.perf_counter() - started) * 1000
        timings, cpu, reports = [], [], []
        for _ in range(args.rounds):
            clock[0] += 1000
            ingest_a_second(path, subjects, clock[0], rng)
            started, started_cpu = time.perf_counter(), time.process_time()
            reports.append(engine.evaluate_round())
            timings.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        engine.database.close_now()
    median = statistics.median(timings)
    print(f"python {platform.python_version()}, {platform.machine()}, sqlite "
          f"{sqlite3.sqlite_version}")
    print(f"first round (loads {first.rules:,} rules, writes {first.subjects:,} new states, "
          f"{first.events:,} events): {first_ms:.0f} ms")
    evaluated = statistics.mean(r.evaluated for r in reports)
    print(f"{args.rounds} rounds over {reports[-1].subjects:,} (rule, account) pairs, "
          f"{evaluated:,.0f} evaluated a round on average (their reading changed, or they are "
          f"pending or firing), {sum(r.events for r in reports)} events in all")
    print(f"round, wall clock: median {median:.1f} ms, mean {statistics.mean(timings):.1f}, "
          f"min {min(timings):.1f}, max {max(timings):.1f} (a round that writes values)")
    print(f"round, CPU time: median {statistics.median(cpu):.1f} ms, "
          f"mean {statistics.mean(cpu):.1f}")
    verdict = "met" if median < TARGET_MS else "NOT met"
    print(f"target: a round under {TARGET_MS:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
