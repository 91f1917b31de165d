"""The schema: SQLModel tables for years of CDRs, their rollups, and the writer's live state.

Times are integer milliseconds since the Unix epoch (UTC); money is integer micro-units; buckets
are UTC. Calls and attempts are keyed by the `seq` of their `call.start` event, which is unique and
time-ordered, so inserts append to the end of the primary key.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

CALLS_KEPT_FROM = "calls_kept_from_ms"


class Meta(SQLModel, table=True):
    """Identifies the file as noc's and records its schema version, and since when the CDRs are
    kept (key CALLS_KEPT_FROM, ms; absent while `store.call_days` has pruned none)."""

    __tablename__ = "noc_meta"
    key: str = Field(primary_key=True)
    value: str


class FeedState(SQLModel, table=True):
    """One row: where the feed stands, written in the same transaction as the data it covers."""

    __tablename__ = "feed_state"
    id: int = Field(default=1, primary_key=True)
    feed_url: str = ""
    last_seq: int = 0
    newest_ms: int = 0
    status: str = "never connected"
    detail: str = ""
    reconnect_at_ms: int | None = None
    connected_since_ms: int | None = None
    last_frame_ms: int | None = None
    events: int = 0
    duplicates: int = 0
    quarantined: int = 0
    gaps: int = 0
    lost_calls: int = 0
    capped_calls: int = 0  # closed as lost: more calls open than the writer's cap
    updated_ms: int = 0
    writer_pid: int | None = None


class Account(SQLModel, table=True):
    __tablename__ = "account"
    kind: str = Field(primary_key=True)
    id: str = Field(primary_key=True)
    name: str = ""
    channels: int | None = None
    cps: float | None = None
    balance: float | None = None
    currency: str | None = None
    enabled: bool = True
    updated_ms: int = 0


class Call(SQLModel, table=True):
    """A call's record, final once written (the CDR)."""

    __tablename__ = "call"
    __table_args__ = (Index("ix_call_customer_start", "customer", "start_ms"),)
    seq: int = Field(primary_key=True)
    call_id: str
    customer: str
    cli: str = ""
    dst: str = ""
    route: str = ""
    carrier: str = ""
    attempts: int = 0
    start_ms: int = Field(index=True)
    end_ms: int
    code: int
    duration_ms: int = 0
    billed_ms: int = 0
    charge_micro: int = 0
    cost_micro: int = 0
    progress_ms: int | None = None
    dtmf_count: int = 0
    hangup: str = ""


class Attempt(SQLModel, table=True):
    """One carrier attempt of a call; a call's later attempts are its failovers."""

    __tablename__ = "attempt"
    __table_args__ = (Index("ix_attempt_carrier_start", "carrier", "start_ms"),)
    call_seq: int = Field(primary_key=True)
    attempt: int = Field(primary_key=True)
    carrier: str
    route: str = ""
    start_ms: int = Field(index=True)
    end_ms: int
    code: int
    progress_ms: int | None = None
    duration_ms: int = 0
    cost_micro: int = 0
    reason: str | None = None
    # Of an answered attempt: its call's billed time and charge (the carrier's revenue).
    billed_ms: int = 0
    charge_micro: int = 0


class Reject(SQLModel, table=True):
    """A `call.reject`: refused by the switch before any carrier attempt."""

    __tablename__ = "reject"
    __table_args__ = (Index("ix_reject_customer_ts", "customer", "ts_ms"),)
    seq: int = Field(primary_key=True)
    ts_ms: int = Field(index=True)  # ragged edges of a report, everyone's latest rejects
    customer: str
    cli: str = ""
    dst: str = ""
    code: int
    reason: str
    # The customer's longest known route (one of its calls' routes) that prefixes `dst`, '' if
    # none: the route its breaches count for in the rollups (store/routes.py).
    route: str = ""


class EventLog(SQLModel, table=True):
    """Every stored event as the feed sent it, for replay and audit: a row per frame, `raw` the
    frame as received (one event object, or an array of them) when all of it was stored, else
    the stored events' own texts sliced from it (one, or an array). Duplicates, quarantined
    items, heartbeats and gaps are not events stored: they are not in it."""

    __tablename__ = "event_log"
    first_seq: int = Field(primary_key=True)
    last_seq: int
    events: int  # how many it holds
    ts_ms: int = Field(index=True)  # the newest of theirs: the row is pruned once it is old
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class OpenCall(SQLModel, table=True):
    """A call in progress (a dialog), persisted at each flush so a restart or a viewer sees it."""

    __tablename__ = "open_call"
    seq: int = Field(primary_key=True)
    call_id: str = Field(index=True)
    customer: str
    carrier: str = ""
    dst: str = ""
    start_ms: int
    answer_ms: int | None = None
    last_ms: int
    state: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class CarrierState(SQLModel, table=True):
    __tablename__ = "carrier_state"
    carrier: str = Field(primary_key=True)
    consecutive_failures: int = 0
    updated_ms: int = 0


class LiveAccount(SQLModel, table=True):
    """Channels and calls per second now, per account, as the writer saw them at its last flush."""

    __tablename__ = "live_account"
    kind: str = Field(primary_key=True)
    id: str = Field(primary_key=True)
    channels: int = 0
    cps: int = 0
    updated_ms: int = 0


class Quarantine(SQLModel, table=True):
    """Feed input that could not be used, kept whole with the reason."""

    __tablename__ = "quarantine"
    id: int | None = Field(default=None, primary_key=True)
    received_ms: int = Field(index=True)
    seq: int | None = None
    reason: str
    raw: str


class Gap(SQLModel, table=True):
    """Events the server said (or the sequence showed) are lost for good."""

    __tablename__ = "gap"
    id: int | None = Field(default=None, primary_key=True)
    from_seq: int
    to_seq: int
    detected_ms: int
    announced: bool = True


class ControlRequest(SQLModel, table=True):
    """An action asked for by any console (disable, enable), carried out by the writer."""

    __tablename__ = "control_request"
    id: str = Field(primary_key=True)
    created_ms: int
    action: str
    kind: str = ""
    account: str = ""
    call_id: str = ""
    until_ms: int | None = None
    reason: str = ""
    requested_by: str = ""
    status: str = "pending"
    error: str = ""
    done_ms: int | None = None


# Rollups are only ever read and upserted by their primary key: stored in its order (SQLite's
# WITHOUT ROWID), an account's buckets sit side by side, and there is one B-tree to write, not two.
CLUSTERED = {"sqlite_with_rowid": False}


class _RollupKey(SQLModel):
    kind: str = Field(primary_key=True)
    account: str = Field(primary_key=True)
    route: str = Field(primary_key=True, default="")
    bucket: int = Field(primary_key=True)


class RollupTotals(_RollupKey):
    """The columns of store.metrics.Totals, in the same order."""

    attempts: int = 0
    answered: int = 0
    ner_answered: int = 0
    duration_ms: int = 0
    billed_ms: int = 0
    pdd_sum_ms: int = 0
    pdd_count: int = 0
    dtmf_calls: int = 0
    revenue_micro: int = 0
    cost_micro: int = 0
    code_200: int = 0
    code_404: int = 0
    failover: int = 0
    failover_answered: int = 0
    lost: int = 0
    breach_channel: int = 0
    breach_cps: int = 0
    breach_other: int = 0
    peak_cps: int = 0
    peak_channels: int = 0


class RollupMinute(RollupTotals, table=True):
    """Per account and route (route '' is the account's total) per UTC minute; pruned after days
    (by bucket: its index finds the oldest minute kept and the ones to prune at once)."""

    __tablename__ = "rollup_minute"
    __table_args__ = (Index("ix_rollup_minute_bucket", "bucket"), CLUSTERED)


class RollupEndedMinute(RollupTotals, table=True):
    """Per account (route '') per UTC minute in which calls and attempts ENDED: what an alert's
    sample period covers ("calls whose end falls in (now - P, now]"); pruned like the minutes."""

    __tablename__ = "rollup_ended_minute"
    __table_args__ = (Index("ix_rollup_ended_minute_bucket", "bucket"), CLUSTERED)


class RollupEndedHour(RollupTotals, table=True):
    """RollupEndedMinute by UTC hour, kept like the hours: what live graphs of ratios plot, so
    that their newest points are not biased by the calls still talking."""

    __tablename__ = "rollup_ended_hour"
    __table_args__ = CLUSTERED


class RollupEndedDay(RollupTotals, table=True):
    __tablename__ = "rollup_ended_day"
    __table_args__ = CLUSTERED


class RollupHour(RollupTotals, table=True):
    __tablename__ = "rollup_hour"
    __table_args__ = CLUSTERED


class RollupDay(RollupTotals, table=True):
    __tablename__ = "rollup_day"
    __table_args__ = CLUSTERED


class CodeHour(SQLModel, table=True):
    """Final SIP codes per account per UTC hour (calls for customers, attempts for carriers)."""

    __tablename__ = "code_hour"
    __table_args__ = CLUSTERED
    kind: str = Field(primary_key=True)
    account: str = Field(primary_key=True)
    bucket: int = Field(primary_key=True)
    code: int = Field(primary_key=True)
    count: int = 0


ROLLUP_TABLES = {"minute": RollupMinute, "hour": RollupHour, "day": RollupDay}
ENDED_TABLES = {"minute": RollupEndedMinute, "hour": RollupEndedHour, "day": RollupEndedDay}
BUCKET_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
# The bulky tables, by the column of the day each row belongs to: what retention cuts by, and
# what a PostgreSQL store partitions them by (store/postgres.py), so that a day drops at once.
DAY_COLUMNS = {"event_log": "ts_ms", "call": "start_ms", "attempt": "start_ms", "reject": "ts_ms"}


# Alerting: rules, their state, silences, history, penalties, the outbox (store/alerting.py) ----

class AlertRule(SQLModel, table=True):
    """A rule as validated by console.alerting.rules; `recipients` is a JSON list of strings."""

    __tablename__ = "alert_rule"
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(unique=True)
    kind: str  # customer, carrier, or feed (quarantined events)
    scope: str  # account (company = its id), tag (company = the tag), all (company = '')
    company: str = ""
    recipients: str = "[]"
    area: str
    operator: str
    threshold: float
    reset_threshold: float | None = None
    sample_period_s: int | None = None
    minimum_sample: int = 0
    pending_s: int = 0
    penalty_s: int = 0
    template: str = ""
    script: str = ""
    repeat_s: int = 0
    level: str = "warning"
    enabled: bool = True
    created_ms: int = 0
    updated_ms: int = 0


class AlertState(SQLModel, table=True):
    """Where one rule stands for one subject; written by the engine, so that a restart goes on."""

    __tablename__ = "alert_state"
    rule_id: int = Field(primary_key=True)
    kind: str = Field(primary_key=True)
    account: str = Field(primary_key=True)
    state: str = "ok"  # one of STATES
    value: float | None = None
    sample: int | None = None  # attempts in the window, for areas that have one
    detail: str = ""
    since_ms: int = 0  # when the current state began
    fired_ms: int | None = None  # the last firing's start
    resolved_ms: int | None = None
    next_repeat_ms: int | None = None
    notified: bool = False  # the current firing has been announced
    silenced: bool = False
    acked_by: str = ""
    acked_ms: int | None = None
    ack_comment: str = ""
    updated_ms: int = 0


class AlertSilence(SQLModel, table=True):
    """Mutes the rules it matches until `until_ms`: every field set must match (rule, account,
    area); a silenced alert still changes state and is recorded, but sends nothing and penalises
    no one."""

    __tablename__ = "alert_silence"
    id: int | None = Field(default=None, primary_key=True)
    rule_id: int | None = None
    kind: str = ""
    account: str = ""
    area: str = ""
    until_ms: int = Field(index=True)
    comment: str = ""
    created_by: str = ""
    created_ms: int = 0


class AlertHistory(SQLModel, table=True):
    __tablename__ = "alert_history"
    __table_args__ = (Index("ix_alert_history_subject", "kind", "account", "ts_ms"),)
    id: int | None = Field(default=None, primary_key=True)
    ts_ms: int = Field(index=True)
    event: str  # one of HISTORY_EVENTS
    rule_id: int | None = None
    rule_title: str = ""
    kind: str = ""
    account: str = ""
    area: str = ""
    level: str = ""
    value: float | None = None
    threshold: float | None = None
    detail: str = ""
    recipient: str = ""
    message_id: str = ""
    actor: str = ""


class AlertOutbox(SQLModel, table=True):
    """A message to send, written in the transaction that decided it; the delivery worker sends
    it and marks it sent, or retries it with backoff."""

    __tablename__ = "alert_outbox"
    __table_args__ = (Index("ix_alert_outbox_due", "status", "next_attempt_ms"),)
    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(unique=True)
    rule_id: int | None = None
    rule_title: str = ""
    kind: str = ""
    account: str = ""
    event: str = ""  # fired, notified, repeat, resolved, test, report
    level: str = "warning"
    channel: str  # email, sms, apprise
    recipient: str
    subject: str
    body: str
    created_ms: int
    attempts: int = 0
    next_attempt_ms: int
    status: str = "pending"  # pending, sent, failed
    last_error: str = ""
    sent_ms: int | None = None


class AlertPenalty(SQLModel, table=True):
    """An account disabled by a rule until `until_ms`; re-enabled by the engine when it is due."""

    __tablename__ = "alert_penalty"
    id: int | None = Field(default=None, primary_key=True)
    rule_id: int | None = None
    rule_title: str = ""
    kind: str
    account: str
    start_ms: int
    until_ms: int
    status: str = Field(default="active", index=True)  # active, releasing, ended
    disable_request: str = ""
    enable_request: str = ""
    ended_ms: int | None = None
    detail: str = ""


class AlertTemplate(SQLModel, table=True):
    """A named message template (Jinja2, sandboxed): subject and body."""

    __tablename__ = "alert_template"
    name: str = Field(primary_key=True)
    subject: str = ""
    body: str = ""
    updated_ms: int = 0


class AccountTag(SQLModel, table=True):
    """Groups of accounts a rule may target by tag."""

    __tablename__ = "account_tag"
    __table_args__ = (Index("ix_account_tag_tag", "kind", "tag"),)
    kind: str = Field(primary_key=True)
    account: str = Field(primary_key=True)
    tag: str = Field(primary_key=True)


class AlertMeta(SQLModel, table=True):
    __tablename__ = "alert_meta"
    key: str = Field(primary_key=True)
    value: int = 0


class AlertReportRun(SQLModel, table=True):
    """The last UTC day (its start, ms) each scheduled report was queued for."""

    __tablename__ = "alert_report_run"
    report: str = Field(primary_key=True)
    day_ms: int = 0
