"""A rule's messages: its template rendered once per event, one outbox row per recipient; and
`send_test`, which queues a rule's message now, marked as a test."""

from __future__ import annotations

import logging
from datetime import UTC, tzinfo
from pathlib import Path

from console.alerting import templates
from console.alerting.recipients import delivery_channel
from store import alerting as store
from store.alerting import Message, Rule, Template

log = logging.getLogger(__name__)


def compose(rule: Rule, template: Template, context: dict[str, object], *, kind: str,
            account: str, event: str) -> list[Message]:
    """The messages of one event of `rule`, one per recipient."""
    if not rule.recipients:
        return []
    try:
        subject, body = templates.render(template, context)
    except templates.TemplateProblem as problem:  # a stored template edited since: still alert
        log.warning("template of rule %r failed (%s); the default is used", rule.title, problem)
        subject, body = templates.render(templates.DEFAULTS[rule.area], context)
        body += f"\n(The rule's own template failed: {problem})\n"
    return [Message(rule.id, rule.title, kind, account, event, rule.level,
                    delivery_channel(recipient),
                    recipient, subject, body) for recipient in rule.recipients]


def send_test(path: str | Path, title: str, *, now_ms: int, zone: tzinfo = UTC,
              by: str = "") -> list[str]:
    """Queue the rule's message to its recipients now, as a test; return the message ids.

    The value shown is the rule's latest one for its first subject, else its threshold. The
    writer's engine delivers it (at once if it runs, else when a writer starts)."""
    with store.writing(path) as db:
        rule = next((r for r in store.load_rules(db) if r.title == title), None)
        if rule is None:
            raise LookupError(f"no rule titled {title!r}")
        if not rule.recipients:
            raise LookupError(f"rule {title!r} has no recipients")
        latest = db.execute(
            "SELECT s.kind, s.account, s.value, s.sample, coalesce(a.name, s.account) "
            "FROM alert_state s LEFT JOIN account a ON a.kind = s.kind AND a.id = s.account "
            "WHERE s.rule_id = ? ORDER BY s.state = 'firing' DESC, s.account LIMIT 1",
            (rule.id,)).fetchone()
        if latest is None:
            account = rule.company if rule.scope == "account" else ""
            latest = (rule.kind, account, rule.threshold, None, account or rule.scope_label)
        kind, account, value, sample, name = latest
        template = templates.resolve(rule.template, store.load_templates(db),
                                     templates.DEFAULTS[rule.area])
        context = templates.alert_context(
            rule, kind=kind, account=account, account_name=name, value=value, sample=sample,
            state="firing", event="test", now_ms=now_ms, zone=zone, test=True)
        messages = compose(rule, template, context, kind=kind, account=account, event="test")
        ids = store.queue_messages(db, messages, now_ms)
        store.record_history(db, [dict(
            ts_ms=now_ms, event="test", rule_id=rule.id, rule_title=rule.title, kind=kind,
            account=account, area=rule.area, level=rule.level, value=value,
            threshold=rule.threshold, detail=f"test message to {len(ids)} recipients",
            actor=by)])
    return ids
