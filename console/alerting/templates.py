"""Alert texts from Jinja2 templates, sandboxed: a template can read the values it is given and
format them, but cannot reach Python (attribute access to internals, calls to unsafe methods),
so that a rule's author cannot run code in the writer process. Nor can a template exhaust it:
every render (a trial at import, a test message, a message sent) runs in a child process within
RENDER_BOUNDS (console.alerting.bounded), and one over them (`center(300000000)`, a string
doubled in a loop, loops nested a billion deep) is refused with the reason.

A rule's `template` is '' (the area's default), the name of a stored template, or inline text
whose first line may be `Subject: ...`. Undefined names are errors (StrictUndefined), caught
when the rule is saved by a trial render, with the line at fault.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2 import Template as JinjaTemplate
from jinja2.sandbox import SandboxedEnvironment

from console.alerting.areas import AREAS
from console.alerting.bounded import BoundedProcess, Bounds, OverBound
from store.alerting import Rule, Template

MAX_OUTPUT = 20_000  # characters of a rendered text
MAX_SEQUENCE = 10_000  # longest string or list a template may build by *
SEQUENCES = (str, list, tuple)
# A message renders in microseconds and a few KiB: these bounds only stop the hostile.
RENDER_BOUNDS = Bounds(seconds=2.0, memory_mib=64)
_renderer = BoundedProcess(RENDER_BOUNDS)


class TemplateProblem(ValueError):
    """A template that cannot be used; str() says why and, when known, on which line."""


class BoundedSandbox(SandboxedEnvironment):
    """The sandbox, plus a bound on `*` and `**`, which could otherwise exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, op, left, right):
        if op == "**":
            if abs(right) > 100:
                raise TemplateProblem("exponent too large in a template")
            return operator.pow(left, right)
        sequence, count = (left, right) if isinstance(left, SEQUENCES) else (right, left)
        if (isinstance(sequence, SEQUENCES) and isinstance(count, int)
                and len(sequence) * count > MAX_SEQUENCE):
            raise TemplateProblem("a template may not build a text that long")
        return operator.mul(left, right)


ENVIRONMENT = BoundedSandbox(undefined=StrictUndefined, autoescape=False)

DEFAULT_SUBJECT = (
    "{% if test %}[TEST] {% endif %}[{{ 'RESOLVED' if state == 'resolved' else level|upper }}] "
    "{{ rule.title }}: {{ account.name }}, {{ condition }}"
)
DEFAULT_BODY = """\
{{ rule.title }} is {{ state }}{% if event == 'repeat' %} (reminder){% endif %}\
{% if test %} (a test message){% endif %}.

{{ account.kind|capitalize }}: {{ account.name }} ({{ account.id }})
{{ condition }}{% if sample is not none %}, over {{ sample }} attempts\
{% endif %}{% if rule.window %} in the last {{ rule.window }}{% endif %}
Rule: {{ rule.condition }}
Level: {{ level }}
Time: {{ time }} ({{ time_utc }})
"""
NO_TRAFFIC_BODY = """\
{{ rule.title }} is {{ state }}{% if test %} (a test message){% endif %}.

{{ account.kind|capitalize }}: {{ account.name }} ({{ account.id }})
{% if state == 'resolved' %}Traffic is back: {{ value_text }} in the last {{ rule.window }}.\
{% else %}No attempt at all in the last {{ rule.window }}.{% endif %}

Level: {{ level }}
Time: {{ time }} ({{ time_utc }})
"""
REPORT_SUBJECT = "{{ report }}: {{ account.name }}, {{ day }}"
REPORT_BODY = """\
{{ report }} for {{ account.name }} ({{ account.id }}), {{ day }} (UTC)

Balance now: {{ balance_text }}
Attempts: {{ day_totals.attempts }}   Connected: {{ day_totals.answered }}
ASR: {{ day_totals.asr_text }}   ACD: {{ day_totals.acd_text }}   Minutes: {{ day_totals.minutes }}
Revenue: {{ day_totals.revenue }}   Cost: {{ day_totals.cost }}   Profit: {{ day_totals.profit }}
"""
DEFAULTS = {area: Template(area, DEFAULT_SUBJECT,
                           NO_TRAFFIC_BODY if area == "no_traffic" else DEFAULT_BODY)
            for area in AREAS}
REPORT_TEMPLATE = Template("daily report", REPORT_SUBJECT, REPORT_BODY)


def split_inline(text: str) -> Template:
    """Inline template text: an optional `Subject: ...` first line, then the body."""
    first, _, rest = text.partition("\n")
    if first.lower().startswith("subject:"):
        return Template("", first[len("subject:"):].strip(), rest.lstrip("\n"))
    return Template("", DEFAULT_SUBJECT, text)


def resolve(name_or_text: str, named: Mapping[str, Template], default: Template) -> Template:
    """The template a rule's `template` field designates."""
    if not name_or_text:
        return default
    if name_or_text in named:
        return named[name_or_text]
    return split_inline(name_or_text)


def looks_inline(text: str) -> bool:
    """Inline text has spaces, lines or Jinja markup; anything else is a template's name."""
    return any(mark in text for mark in (" ", "\n", "{{", "{%"))


def render(template: Template, context: Mapping[str, object]) -> tuple[str, str]:
    """(subject, body), rendered apart within RENDER_BOUNDS; TemplateProblem, naming the part
    at fault, if the template fails or goes over a bound. The subject is one line: whatever
    the feed's names hold, no CR or LF reaches a mail header."""
    try:
        return _renderer.call(_render_parts, template.subject, template.body, dict(context))
    except OverBound as over:
        raise TemplateProblem(
            f"rendering {over}: a template must render within {RENDER_BOUNDS.seconds:g} s and "
            f"{RENDER_BOUNDS.memory_mib} MiB") from None


def check(template: Template, context: Mapping[str, object]) -> None:
    """Refuse a template that does not compile, fails on a sample context or goes over a
    bound with it."""
    render(template, context)


def one_line(text: str) -> str:
    """Every run of white space (line breaks of any kind included) as one space."""
    return " ".join(text.split())


def _render_parts(subject: str, body: str, context: dict[str, object]) -> tuple[str, str]:
    """(subject, body), in the renderer's child process."""
    return one_line(_render_part("subject", subject, context)), _render_part("body", body, context)


def _render_part(part: str, text: str, context: dict[str, object]) -> str:
    try:
        return _render(text, context)
    except TemplateProblem as problem:
        raise TemplateProblem(f"{part}: {problem}") from None


@functools.lru_cache(maxsize=1024)
def _compiled(text: str) -> JinjaTemplate:
    """Compiling costs milliseconds, rendering microseconds: templates are compiled once."""
    return ENVIRONMENT.from_string(text)


def _render(text: str, context: Mapping[str, object]) -> str:
    try:
        return _compiled(text).render(context)[:MAX_OUTPUT]
    except TemplateProblem:
        raise
    except TemplateSyntaxError as error:
        raise TemplateProblem(f"line {error.lineno}: {error.message}") from None
    except TemplateError as error:  # undefined names, unsafe access (SecurityError)
        raise TemplateProblem(str(error)) from None
    except (TypeError, ValueError, ArithmeticError) as error:
        raise TemplateProblem(f"{type(error).__name__}: {error}") from None


@dataclass(frozen=True)
class Moment:
    """A time as a template shows it: in UTC and in the display time zone."""

    utc: str
    local: str

    @classmethod
    def of(cls, now_ms: int, zone: tzinfo) -> Moment:
        moment = datetime.fromtimestamp(now_ms / 1000, UTC)
        return cls(moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
                   moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z"))


def alert_context(rule: Rule, *, kind: str, account: str, account_name: str,
                  value: float | None, sample: int | None, state: str, event: str,
                  now_ms: int, zone: tzinfo, test: bool = False) -> dict[str, object]:
    """What an alert template sees: plain values only (no store objects to climb out of)."""
    area = AREAS[rule.area]
    moment = Moment.of(now_ms, zone)
    window = ""
    if area.windowed and rule.sample_period_s:
        window = _duration(rule.sample_period_s)
    return {
        "rule": {
            "title": rule.title, "area": rule.area, "area_label": area.label,
            "operator": rule.operator, "threshold": rule.threshold,
            "reset_threshold": rule.reset_threshold, "sample_period_s": rule.sample_period_s,
            "window": window, "minimum_sample": rule.minimum_sample, "level": rule.level,
            "scope": rule.scope_label, "penalty_s": rule.penalty_s,
            "condition": rule.condition,
        },
        "account": {"kind": kind, "id": account, "name": account_name or account},
        "value": value, "value_text": area.format(value), "sample": sample,
        "condition": rule.describe(value, firing=state == "firing"),
        "threshold": f"{rule.threshold:g}",
        "reset_threshold": None if rule.reset_threshold is None else f"{rule.reset_threshold:g}",
        "state": state, "event": event, "level": rule.level, "test": test,
        "time": moment.local, "time_utc": moment.utc, "timestamp_ms": now_ms,
    }


def _duration(seconds: int) -> str:
    for size, unit in ((86_400, "day"), (3_600, "hour"), (60, "minute")):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"

