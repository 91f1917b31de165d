"""How an alert's value reads: the metric, the value with its unit, the threshold, the reset,
and never a false comparison (`5 > 5`, `4 > 5` while firing)."""

from __future__ import annotations

import operator
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.conditions import MEASURES, amount, describe, rule_condition

TRUE_OF = {"<": operator.lt, "≤": operator.le, "=": operator.eq, "≥": operator.ge,
           ">": operator.gt, "≠": operator.ne}
OPERATORS = ("<", "<=", "=", ">=", ">")


@pytest.mark.parametrize(("args", "firing", "text"), [
    (("asr", 29.8, "<=", 30, 31), True, "ASR 29.8% ≤ 30%, clears at ≥ 31%"),
    (("asr", 30.5, "<=", 30, 31), True, "ASR 30.5%, fired at ≤ 30%, clears at ≥ 31%"),
    (("asr", 31.0, "<=", 30, 31), False, "ASR 31.0% > 30%"),
    (("cps_breaches", 5, ">", 5, 0), True, "CPS breaches 5, fired at > 5, clears at ≤ 0"),
    (("cps_breaches", 4, ">", 5, 0), True, "CPS breaches 4, fired at > 5, clears at ≤ 0"),
    (("consecutive_failures", 2963, ">=", 100, 0), True,
     "Consecutive failures 2,963 ≥ 100, clears at ≤ 0"),
    (("consecutive_failures", 1412, ">=", 1000, None), True, "Consecutive failures 1,412 ≥ 1,000"),
    (("pdd", 6.2345, ">", 6, 4.5), True, "PDD 6.2 s > 6 s, clears at ≤ 4.5 s"),
    (("acd", 12.25, "<", 20, 40), False, "ACD 12.2 s < 20 s"),
    (("quarantined", None, ">", 0, None), True, "Quarantined events: no data"),
])
def test_an_alert_value_names_its_metric_unit_threshold_and_reset(args, firing, text):
    assert describe(*args, firing=firing) == text


def test_a_balance_is_in_its_currency():
    assert describe("balance", 45.2, "<", 100, 200, firing=True, unit="EUR") == (
        "Balance 45.20 EUR < 100 EUR, clears at ≥ 200 EUR")
    assert amount("balance", -3.5, "USD") == "-3.50 USD"


def test_a_rules_condition():
    assert rule_condition("asr", "<=", 30, 35) == "ASR ≤ 30%, clears at ≥ 35%"
    assert rule_condition("consecutive_failures", ">=", 100, 0, name="Consec. failures") == (
        "Consec. failures ≥ 100, clears at ≤ 0")
    assert rule_condition("acd", "=", 0.5, None) == "ACD = 0.5 s"


def shown_number(text: str) -> float:
    return float(text.replace(",", ""))


@settings(max_examples=300, deadline=None)
@given(area=st.sampled_from(sorted(MEASURES)), op=st.sampled_from(OPERATORS),
       value=st.integers(-10**7, 10**7).map(lambda n: n / 100),
       threshold=st.integers(-10**5, 10**5).map(lambda n: n / 10),
       firing=st.booleans())
def test_every_comparison_shown_is_true_of_the_figures_shown(area, op, value, threshold,
                                                             firing):
    """Whatever the value, the comparison written holds between the two figures written (the
    value as rounded for showing), and the metric's name comes first."""
    text = describe(area, value, op, threshold, None, firing=firing)
    assert text.startswith(MEASURES[area].name + " ")
    found = re.search(r" (-?[\d,]+(?:\.\d+)?)(?: \S+)? ([<>=≤≥≠]) (-?[\d,]+(?:\.\d+)?)", text)
    if found:  # "fired at" texts compare nothing
        left, sign, right = found.groups()
        assert TRUE_OF[sign](shown_number(left), shown_number(right)), text


def test_a_value_is_shown_with_the_decimals_that_tell_it_from_its_threshold():
    assert describe("asr", 29.96, "<", 30, None, firing=True) == "ASR 29.96% < 30%"
    assert describe("asr", 30.0004, "<=", 30, 31, firing=True) == (
        "ASR 30.0004%, fired at ≤ 30%, clears at ≥ 31%")
