"""The state machine of one rule for one subject (a customer, a carrier, the feed), pure.

    ok ──condition──▶ pending ──held for the pending period──▶ firing ──reset condition──▶ ok
     ▲                  │ condition gone                          │
     └──────────────────┘                                         └ repeats every `repeat` s

Below the minimum sample (or with no value at all) the subject is "insufficient data": that
neither fires nor clears, so a firing alert stays firing, while a pending one starts its pending
period again once data is back (the condition must hold without interruption).

A firing alert is announced (its message sent, its penalty applied) once it is not silenced:
at once, or when its silence ends. It repeats while firing, announced and not acknowledged, and
sends one resolved message when it clears, if it was announced.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

OK, PENDING, FIRING, INSUFFICIENT = "ok", "pending", "firing", "insufficient"

# What `step` reports, for the engine to record and act on.
FIRED = "fired"  # became firing (announced at once unless silenced)
NOTIFIED = "notified"  # a firing alert announced late, after its silence ended
REPEAT = "repeat"
RESOLVED = "resolved"
RESOLVED_UNANNOUNCED = "resolved unannounced"  # cleared before its silence ended: no message

COMPARE = {"<": operator.lt, "<=": operator.le, "=": operator.eq, ">=": operator.ge,
           ">": operator.gt}


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule's trigger and its direction-aware reset."""

    operator: str
    threshold: float
    reset: float | None = None

    def fires(self, value: float) -> bool:
        return COMPARE[self.operator](value, self.threshold)

    def clears(self, value: float) -> bool:
        if self.reset is None or self.operator == "=":
            return not self.fires(value)
        if self.operator in ("<", "<="):
            return value >= self.reset
        return value <= self.reset


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything of a rule that the state machine needs."""

    condition: Condition
    minimum_sample: int = 0
    pending_ms: int = 0
    repeat_ms: int = 0


@dataclass(slots=True)
class SubjectState:
    """Mutable, cached by the engine; `changed` and `value_changed` say what to persist."""

    state: str = OK
    value: float | None = None
    sample: int | None = None
    detail: str = ""
    since_ms: int = 0
    fired_ms: int | None = None
    resolved_ms: int | None = None
    next_repeat_ms: int | None = None
    notified: bool = False
    silenced: bool = False
    acked: bool = False
    changed: bool = False
    value_changed: bool = False

    def enter(self, state: str, now_ms: int) -> None:
        self.state, self.since_ms, self.changed = state, now_ms, True


AT_REST = frozenset({OK, INSUFFICIENT})


def at_rest(s: SubjectState, value: float | None, sample: int | None, silenced: bool) -> bool:
    """True when `step` would change nothing: the subject is ok or without data, and its
    reading and silence are those of the last round (time alone moves only pending and firing
    subjects on). The engine skips `step` for these, most subjects in most rounds; after a rule
    changes it evaluates every subject in full once."""
    return (s.state in AT_REST and value == s.value and sample == s.sample
            and silenced == s.silenced)


def step(policy: Policy, s: SubjectState, value: float | None, sample: int | None, now_ms: int,
         *, silenced: bool = False) -> list[str]:
    """Advance `s` to `now_ms` given this round's value; return what happened (events)."""
    if value != s.value or sample != s.sample:
        s.value, s.sample, s.value_changed = value, sample, True
    events: list[str] = []
    if value is None or (sample is not None and sample < policy.minimum_sample):
        if s.state not in (FIRING, INSUFFICIENT):
            s.enter(INSUFFICIENT, now_ms)
        s.detail = "no data" if value is None else (
            f"{sample} attempts, below the minimum of {policy.minimum_sample}")
    elif s.state == FIRING:
        s.detail = ""
        if policy.condition.clears(value):
            events.append(RESOLVED if s.notified else RESOLVED_UNANNOUNCED)
            s.enter(OK, now_ms)
            s.resolved_ms, s.next_repeat_ms, s.notified, s.acked = now_ms, None, False, False
    elif policy.condition.fires(value):
        s.detail = ""
        if s.state != PENDING:
            s.enter(PENDING, now_ms)
        if now_ms - s.since_ms >= policy.pending_ms:
            s.enter(FIRING, now_ms)
            s.fired_ms, s.notified = now_ms, False
            events.append(FIRED)
    elif s.state != OK:
        s.detail = ""
        s.enter(OK, now_ms)
    if s.silenced != silenced:
        s.silenced, s.changed = silenced, True
    if s.state == FIRING and not silenced:
        _announce(policy, s, now_ms, events)
    return events


def _announce(policy: Policy, s: SubjectState, now_ms: int, events: list[str]) -> None:
    if not s.notified:
        if not events:
            events.append(NOTIFIED)
        s.notified, s.changed = True, True
        s.next_repeat_ms = now_ms + policy.repeat_ms if policy.repeat_ms else None
    elif s.next_repeat_ms is not None and now_ms >= s.next_repeat_ms and not s.acked:
        events.append(REPEAT)
        s.next_repeat_ms, s.changed = now_ms + policy.repeat_ms, True
