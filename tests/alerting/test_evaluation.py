"""The state machine of one rule for one subject, value by value."""

from __future__ import annotations

import pytest

from console.alerting.evaluation import (
    FIRED,
    FIRING,
    INSUFFICIENT,
    NOTIFIED,
    OK,
    PENDING,
    REPEAT,
    RESOLVED,
    RESOLVED_UNANNOUNCED,
    Condition,
    Policy,
    SubjectState,
    step,
)

MINUTE = 60_000


def run(policy: Policy, values, *, every_ms: int = MINUTE, state: SubjectState | None = None,
        silenced=()) -> tuple[SubjectState, list[tuple[int, list[str]]]]:
    """Step through (value, sample) pairs, one every `every_ms`; return the state and events."""
    state = state or SubjectState()
    happened = []
    for index, reading in enumerate(values):
        value, sample = reading if isinstance(reading, tuple) else (reading, None)
        events = step(policy, state, value, sample, index * every_ms,
                      silenced=index in silenced)
        if events:
            happened.append((index, events))
    return state, happened


@pytest.mark.parametrize(("operator", "threshold", "reset", "fires_at", "holds_at", "clears_at"), [
    ("<=", 30, 31, 30, 30.9, 31),
    ("<", 30, 31, 29.9, 30, 31),
    (">", 5000, 4000, 5001, 4001, 4000),
    (">=", 5000, 4000, 5000, 4000.5, 3999),
    ("=", 0, None, 0, None, 1),
    ("<=", 30, None, 30, None, 30.1),
])
def test_hysteresis_knows_the_direction(operator, threshold, reset, fires_at, holds_at,
                                        clears_at):
    condition = Condition(operator, threshold, reset)
    assert condition.fires(fires_at)
    if holds_at is not None:
        assert not condition.fires(holds_at) and not condition.clears(holds_at)
    assert condition.clears(clears_at) and not condition.fires(clears_at)


def test_the_seeds_example_fires_at_30_holds_at_30_5_clears_at_31():
    policy = Policy(Condition("<=", 30, 31))
    state, happened = run(policy, [35, 30, 30.5, 31])
    assert happened == [(1, [FIRED]), (3, [RESOLVED])]
    assert state.state == OK


def test_a_flapping_value_fires_once_and_does_not_storm():
    policy = Policy(Condition("<=", 30, 31))
    _, happened = run(policy, [35, 29.5, 30.5, 29.8, 30.9, 29.9, 30.2, 30.4])
    assert happened == [(1, [FIRED])]


def test_a_pending_period_swallows_a_flap_and_fires_when_it_holds():
    policy = Policy(Condition(">", 5000, 4000), pending_ms=2 * MINUTE)
    state, happened = run(policy, [6000, 3000, 6000, 3000, 6000])
    assert happened == [] and state.state == PENDING
    state, happened = run(policy, [6000, 6000, 6000])
    assert happened == [(2, [FIRED])] and state.state == FIRING


def test_below_the_minimum_sample_it_neither_fires_nor_clears():
    policy = Policy(Condition("<=", 30, 31), minimum_sample=20)
    state, happened = run(policy, [(0.0, 5), (10.0, 40), (100.0, 3), (None, 0), (50.0, 40)])
    assert happened == [(1, [FIRED]), (4, [RESOLVED])]
    state, happened = run(policy, [(0.0, 5)])
    assert (state.state, happened) == (INSUFFICIENT, [])
    assert state.detail == "5 attempts, below the minimum of 20"


def test_a_firing_alert_stays_firing_without_data():
    policy = Policy(Condition("<=", 30, 31), minimum_sample=10)
    state, _ = run(policy, [(10.0, 40), (None, 0), (100.0, 2)])
    assert state.state == FIRING


def test_insufficient_data_restarts_the_pending_period():
    policy = Policy(Condition("<=", 30, 31), minimum_sample=10, pending_ms=2 * MINUTE)
    state, happened = run(policy, [(10.0, 40), (10.0, 40), (None, 0), (10.0, 40), (10.0, 40)])
    assert happened == [] and state.state == PENDING


def test_repeats_while_firing_until_acknowledged():
    policy = Policy(Condition("<=", 30, 31), repeat_ms=3 * MINUTE)
    state, happened = run(policy, [10] * 7)
    assert happened == [(0, [FIRED]), (3, [REPEAT]), (6, [REPEAT])]
    state.acked = True
    assert step(policy, state, 10, None, 9 * MINUTE) == []
    assert step(policy, state, 40, None, 10 * MINUTE) == [RESOLVED]
    assert not state.acked


def test_a_silenced_alert_is_announced_when_its_silence_ends():
    policy = Policy(Condition("<=", 30, 31))
    state, happened = run(policy, [10, 10, 10, 10], silenced={0, 1})
    assert happened == [(0, [FIRED]), (2, [NOTIFIED])]
    assert state.notified


def test_an_alert_that_clears_while_silenced_was_never_announced():
    policy = Policy(Condition("<=", 30, 31))
    _, happened = run(policy, [10, 40], silenced={0, 1})
    assert happened == [(0, [FIRED]), (1, [RESOLVED_UNANNOUNCED])]
