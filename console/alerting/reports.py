"""Scheduled reports: a daily summary per account (balance now; yesterday's attempts, ASR, ACD,
minutes and money from rollup_day), queued through the outbox at a UTC time of day.

Each report is queued once per UTC day: at its time, or as soon as the engine runs after it that
day (a writer down at 06:00 sends the 06:00 report when it comes back, not twice).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime

from console.alerting import templates
from console.alerting.recipients import delivery_channel
from console.alerting.settings import ReportSettings
from store import conditions, metrics
from store.alerting import Message, Template
from store.metrics import TOTALS_FIELDS, Totals

DAY_MS = 86_400_000


def due(reports: list[ReportSettings], runs: Mapping[str, int],
        now_ms: int) -> list[ReportSettings]:
    """The reports whose time has come today and that have not been queued today."""
    today = now_ms - now_ms % DAY_MS
    return [report for report in reports
            if now_ms - today >= report.at_ms and runs.get(report.title, -1) < today]


def compose(db: sqlite3.Connection, report: ReportSettings, named: Mapping[str, Template],
            tags: Mapping[tuple[str, str], tuple[str, ...]], now_ms: int) -> list[Message]:
    """One message per account in the report's scope and per recipient."""
    today = now_ms - now_ms % DAY_MS
    yesterday = today - DAY_MS
    accounts = {account: (name, balance, currency) for account, name, balance, currency in
                db.execute("SELECT id, name, balance, currency FROM account WHERE kind = ?",
                           (report.kind,))}
    if report.tag:
        chosen = [a for a in tags.get((report.kind, report.tag), ()) if a in accounts]
    elif report.company == "*":
        chosen = sorted(accounts)
    else:
        chosen = [report.company] if report.company in accounts else []
    totals = {account: Totals(*values) for account, *values in db.execute(
        f"SELECT account, {', '.join(TOTALS_FIELDS)} FROM rollup_day WHERE kind = ? "
        "AND route = '' AND bucket = ?", (report.kind, yesterday))}
    template = templates.resolve(report.template, named, templates.REPORT_TEMPLATE)
    day = datetime.fromtimestamp(yesterday / 1000, UTC).strftime("%Y-%m-%d")
    messages = []
    failed = ""  # once the report's own template failed, the rest go by the default at once
    for account in chosen:
        name, balance, currency = accounts[account]
        context = _context(report, account, name or account, balance, currency,
                           totals.get(account, Totals()), day)
        if not failed:
            try:
                subject, body = templates.render(template, context)
            except templates.TemplateProblem as problem:
                failed = str(problem)
        if failed:
            subject, body = templates.render(templates.REPORT_TEMPLATE, context)
            body += f"\n(The report's own template failed: {failed})\n"
        messages += [Message(None, report.title, report.kind, account, "report", "info",
                             delivery_channel(recipient), recipient, subject, body)
                     for recipient in report.recipients]
    return messages


def _context(report: ReportSettings, account: str, name: str, balance: float | None,
             currency: str | None, t: Totals, day: str) -> dict[str, object]:
    money = f" {currency}" if currency else ""
    return {
        "report": report.title, "day": day,
        "account": {"kind": report.kind, "id": account, "name": name},
        "balance": balance,
        "balance_text": "unknown" if balance is None else f"{balance:,.2f}{money}",
        "day_totals": {
            "attempts": t.attempts, "answered": t.answered,
            "asr": metrics.asr(t), "asr_text": conditions.amount("asr", metrics.asr(t)),
            "acd": metrics.acd(t), "acd_text": conditions.amount("acd", metrics.acd(t)),
            "minutes": f"{metrics.minutes(t):,.1f}",
            "revenue": f"{metrics.revenue(t):,.2f}{money}",
            "cost": f"{metrics.cost(t):,.2f}{money}",
            "profit": f"{metrics.profit(t):,.2f}{money}",
        },
    }

