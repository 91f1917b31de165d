"""How an alert's value reads, wherever one is shown: the dashboard's checklist, the Alerts tabs,
the history, the acknowledge dialog, mails. One formatter, so that every place says the same
true thing: the metric, its value with its unit, the threshold, and while the reset holds a
firing alert, the reset:

    ASR 29.8% ≤ 30%, clears at ≥ 31%
    CPS breaches 4, fired at > 5, clears at ≤ 0
    Consecutive failures 2,963 ≥ 100, clears at ≤ 0

Pure, below every layer: the store's checklist uses it as the engine and the screens do.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Measure:
    """What an area's value is called and how it is written."""

    name: str
    unit: str = ""  # written after the number: "29.8%", "4.5 s"
    decimals: int = 0


MEASURES: dict[str, Measure] = {
    "balance": Measure("Balance", decimals=2),  # the unit is the account's currency
    "asr": Measure("ASR", "%", 1),
    "ner": Measure("NER", "%", 1),
    "acd": Measure("ACD", "s", 1),
    "pdd": Measure("PDD", "s", 1),  # seconds, thresholds too (milliseconds before schema 7)
    "consecutive_failures": Measure("Consecutive failures"),
    "failovers": Measure("Failovers"),
    "channels": Measure("Channels"),
    "cps": Measure("CPS"),
    "channel_breaches": Measure("Channel breaches"),
    "cps_breaches": Measure("CPS breaches"),
    "quarantined": Measure("Quarantined events"),
    "no_traffic": Measure("Attempts"),
    "script": Measure("Value", decimals=2),
}
SIGNS = {"<": "<", "<=": "≤", "=": "=", ">=": "≥", ">": ">"}
NOT_SIGNS = {"<": "≥", "<=": ">", "=": "≠", ">=": "<", ">": "≤"}
# The side a reset threshold clears on: a rule firing at <= 30 with reset 35 clears at >= 35.
CLEARS_SIGNS = {"<": "≥", "<=": "≥", ">=": "≤", ">": "≤"}
MAX_DECIMALS = 6
FIRES = {"<": float.__lt__, "<=": float.__le__, "=": float.__eq__, ">=": float.__ge__,
         ">": float.__gt__}


def measure(area: str) -> Measure:
    return MEASURES.get(area) or Measure(area.replace("_", " ").capitalize(), decimals=2)


def number(value: float, decimals: int = 0) -> str:
    """A figure with thousands grouped; a whole one without decimals when none are asked."""
    return f"{round(value, decimals) + 0.0:,.{decimals}f}"


def threshold_text(value: float) -> str:
    """A threshold as the rule has it: 30, 0.5, 6,000 (never rounded away)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.6f}".rstrip("0")


PERCENT = "%"


def with_unit(text: str, unit: str) -> str:
    """A figure and its unit as every screen writes them: `29.8%` (the percent sign close),
    `4.5 s`, `45.20 USD`."""
    if not unit:
        return text
    return f"{text}{unit}" if unit == PERCENT else f"{text} {unit}"


def amount(area: str, value: float | None, unit: str | None = None, *,
           beside: float | None = None) -> str:
    """The value with its unit: `29.8%`, `2,963`, `45.20 USD`; `no data` without one. Shown
    `beside` a threshold, with the decimals it takes to stand on the same side of it: 29.96
    against 30 reads `29.96%`, not a false `30.0% < 30%`."""
    if value is None:
        return "no data"
    m = measure(area)
    decimals = m.decimals
    if beside is not None:
        while decimals < MAX_DECIMALS and _side(round(value, decimals), beside) != _side(
                value, beside):
            decimals += 1
    return with_unit(number(value, decimals), m.unit if unit is None else unit)


def _side(value: float, threshold: float) -> int:
    return (value > threshold) - (value < threshold)


def limit(area: str, value: float, unit: str | None = None) -> str:
    m = measure(area)
    return with_unit(threshold_text(value), m.unit if unit is None else unit)


def rule_condition(area: str, operator: str, threshold: float, reset: float | None,
                   unit: str | None = None, name: str | None = None) -> str:
    """A rule's condition: `ASR ≤ 30%, clears at ≥ 35%` (`name` in place of the metric's)."""
    text = (f"{name or measure(area).name} {SIGNS.get(operator, operator)} "
            f"{limit(area, threshold, unit)}")
    return text + _clears(area, operator, reset, unit)


def describe(area: str, value: float | None, operator: str, threshold: float,
             reset: float | None, *, firing: bool, unit: str | None = None) -> str:
    """An alert's value, read against its rule: true whatever the value.

    Firing, with its reset when it has one (what the value must reach to clear); otherwise
    (pending, cleared, ok) the value and how it stands to the threshold."""
    m = measure(area)
    if value is None:
        return f"{m.name}: no data"
    shown, bound = amount(area, value, unit, beside=threshold), limit(area, threshold, unit)
    fires = FIRES[operator](float(value), float(threshold)) if operator in FIRES else None
    if fires:
        text = f"{m.name} {shown} {SIGNS[operator]} {bound}"
    elif firing:  # held by its reset: the value no longer meets the threshold
        text = f"{m.name} {shown}, fired at {SIGNS.get(operator, operator)} {bound}"
    elif fires is None:
        text = f"{m.name} {shown} (fires at {operator} {bound})"
    else:
        text = f"{m.name} {shown} {NOT_SIGNS[operator]} {bound}"
    return text + (_clears(area, operator, reset, unit) if firing else "")


def _clears(area: str, operator: str, reset: float | None, unit: str | None) -> str:
    if reset is None or operator not in CLEARS_SIGNS:
        return ""
    return f", clears at {CLEARS_SIGNS[operator]} {limit(area, reset, unit)}"
