"""Rules as people write them (a console form, a TOML file), validated into store.alerting.Rule.

Every problem is reported at once, each naming its field, so that a form can mark them all and an
import can say which rule and field is wrong. Field names are those of the TOML file:

    title, kind, company (an id, or "*" for all of the kind) or tag, recipients, area, operator,
    threshold, reset_threshold, sample_period, minimum_sample, pending, penalty, template,
    script, repeat, level, enabled

Durations (sample_period, pending, penalty, repeat) are seconds, or text such as "90s", "5m",
"1h", "1d"; "none" or 0 means no penalty, no pending period, no repeat.

Hysteresis: for < and <= the rule clears when the value is at or above the reset threshold, for
> and >= when it is at or below it, for = when the value differs from the threshold (no reset).
Without a reset threshold, a rule clears as soon as its condition no longer holds.

Thresholds are in the unit the area is shown in (store.conditions): ASR, NER and profit in %,
ACD and PDD in seconds, balance in the account's currency. PDD was in milliseconds before schema
7: a PDD threshold over MAX_PDD_S is refused as one written in milliseconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC
from pathlib import Path

from console.alerting import templates
from console.alerting.areas import (
    AREAS,
    DEFAULT_SAMPLE_PERIOD_S,
    INSTANT,
    MAX_SAMPLE_PERIOD_S,
    SCRIPT,
)
from console.alerting.recipients import RecipientError, channel_of
from store import alerting as store
from store import conditions
from store.alerting import FEED, LEVELS, Rule, Template

OPERATORS = ("<", "<=", "=", ">=", ">")
PENALTIES = {"none": 0, "1 min": 60, "5 min": 300, "15 min": 900, "1 h": 3_600,
             "1 day": 86_400}  # the choices a form offers; any other number of seconds is custom
FIELDS = ("title", "kind", "company", "tag", "recipients", "area", "operator", "threshold",
          "reset_threshold", "sample_period", "minimum_sample", "pending", "penalty", "template",
          "script", "repeat", "level", "enabled")
MAX_TITLE = 100
MAX_DURATION_S = 366 * 86_400
UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
MAX_PDD_S = 120  # no call rings that long before its first 180/183: more is milliseconds


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class RuleInvalid(ValueError):
    """A rule that cannot be saved; `errors` names each field at fault."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(map(str, errors)))
        self.errors = errors


def validate(fields: Mapping[str, object], *, named_templates: Mapping[str, Template],
             rule_id: int | None = None, now_ms: int = 0, created_ms: int | None = None) -> Rule:
    """A Rule from form or file fields; RuleInvalid listing every problem."""
    checker = _Checker(fields)
    rule = checker.rule(rule_id, now_ms, created_ms)
    if rule is not None:
        checker.template(rule, named_templates)
    if checker.errors:
        raise RuleInvalid(checker.errors)
    assert rule is not None
    return rule


def save_rule(path: str | Path, fields: Mapping[str, object], *, now_ms: int,
              rule_id: int | None = None) -> Rule:
    """Validate and store a rule (a new one, or `rule_id` replaced); return it with its id."""
    with store.writing(path) as db:
        existing = None
        if rule_id is not None:
            existing = db.execute("SELECT created_ms FROM alert_rule WHERE id = ?",
                                  (rule_id,)).fetchone()
            if existing is None:
                raise RuleInvalid([FieldError("title", f"no rule with id {rule_id}")])
        rule = validate(fields, named_templates=store.load_templates(db), rule_id=rule_id,
                        now_ms=now_ms, created_ms=existing[0] if existing else None)
        clash = db.execute("SELECT id FROM alert_rule WHERE title = ? AND id IS DISTINCT FROM ?",
                           (rule.title, rule_id)).fetchone()
        if clash:
            raise RuleInvalid([FieldError("title", f"a rule titled {rule.title!r} exists")])
        return replace(rule, id=store.write_rule(db, rule))


def save_template(path: str | Path, name: str, subject: str, body: str, *, now_ms: int) -> None:
    """Validate (a trial render) and store a named template."""
    if not name or templates.looks_inline(name):
        raise ValueError("a template's name is one word, without spaces or braces")
    template = Template(name, subject, body, now_ms)
    templates.check(template, sample_context())
    with store.writing(path) as db:
        store.write_template(db, template)


def rule_fields(rule: Rule) -> dict[str, object]:
    """A rule as form or file fields (the inverse of `validate`); unset values left out."""
    fields: dict[str, object] = {"title": rule.title}
    if rule.kind != FEED:
        fields["kind"] = rule.kind
        if rule.scope == "tag":
            fields["tag"] = rule.company
        else:
            fields["company"] = "*" if rule.scope == "all" else rule.company
    fields |= {"recipients": list(rule.recipients), "area": rule.area}
    if rule.area != "no_traffic":
        fields |= {"operator": rule.operator, "threshold": rule.threshold}
        if rule.reset_threshold is not None:
            fields["reset_threshold"] = rule.reset_threshold
    optional = {"sample_period": rule.sample_period_s, "minimum_sample": rule.minimum_sample,
                "pending": rule.pending_s, "penalty": rule.penalty_s, "template": rule.template,
                "script": rule.script, "repeat": rule.repeat_s}
    fields |= {name: value for name, value in optional.items() if value}
    fields |= {"level": rule.level, "enabled": rule.enabled}
    return fields


SAMPLE_RULE = Rule(None, "Sample rule", "customer", "account", "acme", (), "asr", "<=", 30.0,
                   31.0, 300, 10, 0, 0, "", "", 0, "warning", True)


def sample_context(rule: Rule = SAMPLE_RULE) -> dict[str, object]:
    """The context a template is tried with when it is saved."""
    return templates.alert_context(
        rule, kind=rule.kind, account=rule.company or "acme", account_name="Acme Telecom",
        value=rule.threshold, sample=rule.minimum_sample, state="firing", event="fired",
        now_ms=0, zone=UTC)


class _Checker:
    """Reads each field, noting every problem instead of stopping at the first."""

    def __init__(self, fields: Mapping[str, object]) -> None:
        self.fields = fields
        self.errors: list[FieldError] = []
        for name in fields:
            if name not in FIELDS:
                self.fail(name, f"unknown field; the fields are {', '.join(FIELDS)}")

    def fail(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def given(self, name: str) -> bool:
        value = self.fields.get(name)
        return value is not None and value != ""

    def rule(self, rule_id: int | None, now_ms: int, created_ms: int | None) -> Rule | None:
        title = self.text("title").strip()
        if not title:
            self.fail("title", "a rule needs a title")
        elif len(title) > MAX_TITLE:
            self.fail("title", f"at most {MAX_TITLE} characters")
        area_name = self.text("area").strip().lower()
        area = AREAS.get(area_name)
        if area is None:
            self.fail("area", f"unknown area {area_name!r}; one of {', '.join(AREAS)}"
                      if area_name else f"a rule needs an area: one of {', '.join(AREAS)}")
            return None
        kind, scope, company = self.scope(area)
        operator, threshold, reset = self.condition(area)
        sample_period = self.sample_period(area)
        minimum_sample = self.count("minimum_sample")
        if minimum_sample and not area.has_sample:
            self.fail("minimum_sample", "a minimum sample applies to ASR, NER, ACD and PDD "
                      f"only (attempts in the window), not to {area.label}")
        penalty = self.duration("penalty")
        if penalty and kind == FEED:
            self.fail("penalty", "a penalty disables an account: the feed has none")
        script = self.text("script").strip()
        if area.source == SCRIPT and not script.isidentifier():
            self.fail("script", "the name of a function of the plug-in module (script_module)")
        elif area.source != SCRIPT and script:
            self.fail("script", "only script rules name a function")
        level = self.text("level").strip().lower() or "warning"
        if level not in LEVELS:
            self.fail("level", f"one of {', '.join(LEVELS)}")
        return Rule(
            id=rule_id, title=title, kind=kind, scope=scope, company=company,
            recipients=self.recipients(), area=area.name, operator=operator,
            threshold=threshold, reset_threshold=reset, sample_period_s=sample_period,
            minimum_sample=minimum_sample, pending_s=self.duration("pending"),
            penalty_s=penalty, template=self.text("template").strip(), script=script,
            repeat_s=self.duration("repeat"), level=level, enabled=self.flag("enabled"),
            created_ms=now_ms if created_ms is None else created_ms, updated_ms=now_ms,
        )

    def scope(self, area) -> tuple[str, str, str]:
        """(kind, scope, company)."""
        if area.kinds == (FEED,):
            for name in ("company", "tag"):
                if self.given(name) and self.fields[name] != "*":
                    self.fail(name, f"{area.label} concern the feed as a whole, no account")
            return FEED, "all", ""
        kind = self.text("kind").strip().lower()
        if kind not in area.kinds:
            whose = " or ".join(area.kinds)
            self.fail("kind", f"{area.label} is a {whose}'s: kind must be {whose}"
                      if kind in ("customer", "carrier") else f"customer or carrier, not {kind!r}"
                      if kind else "customer or carrier")
        company, tag = self.text("company").strip(), self.text("tag").strip()
        if company and tag:
            self.fail("tag", "give a company or a tag, not both")
        if tag:
            return kind, "tag", tag
        if company == "*":
            return kind, "all", ""
        if not company:
            self.fail("company", 'an account id, "*" for all, or a tag instead')
        return kind, "account", company

    def condition(self, area) -> tuple[str, float, float | None]:
        if area.name == "no_traffic":  # its own condition: no attempt in the window
            return "=", 0.0, None
        operator = self.text("operator").strip() or "?"
        if operator == "==":
            operator = "="
        if operator not in OPERATORS:
            self.fail("operator", f"one of {' '.join(OPERATORS)}")
        threshold = self.number("threshold", required=True)
        reset = self.number("reset_threshold")
        if area.name == "pdd":
            self.seconds_of_pdd("threshold", threshold)
            self.seconds_of_pdd("reset_threshold", reset)
        if reset is None or threshold is None or operator not in OPERATORS:
            return operator, threshold or 0.0, reset
        limit = area.format_limit(threshold)
        described = (f"for `{conditions.rule_condition(area.name, operator, threshold, None)}`, "
                     "the reset threshold must be")
        if operator == "=":
            self.fail("reset_threshold", "`=` clears as soon as the value differs: leave the "
                      "reset threshold empty")
        elif operator == "<=" and reset <= threshold:
            self.fail("reset_threshold", f"{described} above {limit}")
        elif operator == "<" and reset < threshold:
            self.fail("reset_threshold", f"{described} {limit} or above")
        elif operator == ">=" and reset >= threshold:
            self.fail("reset_threshold", f"{described} below {limit}")
        elif operator == ">" and reset > threshold:
            self.fail("reset_threshold", f"{described} {limit} or below")
        return operator, threshold, reset

    def seconds_of_pdd(self, name: str, value: float | None) -> None:
        if value is not None and value > MAX_PDD_S:
            self.fail(name, f"PDD is in seconds: {value:g} s is over {MAX_PDD_S} s; for "
                      f"milliseconds (as files before noc's schema 7 gave them) write "
                      f"{value / 1000:g}")

    def sample_period(self, area) -> int | None:
        if area.source in (INSTANT, SCRIPT):
            if self.given("sample_period"):
                self.fail("sample_period", f"{area.label} has no sample period: it is read as "
                          "it is now" if area.source == INSTANT else
                          "a script reads what it wants")
            return None
        period = self.duration("sample_period") or DEFAULT_SAMPLE_PERIOD_S
        if period > MAX_SAMPLE_PERIOD_S:
            self.fail("sample_period", f"at most {MAX_SAMPLE_PERIOD_S} s (a day)")
        return period

    def recipients(self) -> tuple[str, ...]:
        value = self.fields.get("recipients") or ()
        if isinstance(value, str):
            value = re.split(r"[,;\n]", value)
        if not isinstance(value, list | tuple):
            self.fail("recipients", "a list of email addresses, phone numbers or URLs")
            return ()
        found = []
        for item in value:
            text = str(item).strip()
            if not text:
                continue
            try:
                channel_of(text)
            except RecipientError as error:
                self.fail("recipients", str(error))
            found.append(text)
        return tuple(dict.fromkeys(found))

    def template(self, rule: Rule, named: Mapping[str, Template]) -> None:
        if rule.template and not templates.looks_inline(rule.template) \
                and rule.template not in named:
            self.fail("template", f"no template named {rule.template!r}")
            return
        chosen = templates.resolve(rule.template, named, templates.DEFAULTS[rule.area])
        try:
            templates.check(chosen, sample_context(rule))
        except templates.TemplateProblem as problem:
            self.fail("template", str(problem))

    # Values --------------------------------------------------------------------------------

    def text(self, name: str) -> str:
        value = self.fields.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.fail(name, "must be text")
            return ""
        return value

    def number(self, name: str, *, required: bool = False) -> float | None:
        value = self.fields.get(name)
        if value is None or value == "":
            if required:
                self.fail(name, "a number is needed")
            return None
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value.replace(",", "") if isinstance(value, str) else value)
        except (TypeError, ValueError):
            self.fail(name, f"must be a number, not {value!r}")
            return None
        if not math.isfinite(number):
            self.fail(name, "must be a finite number")
            return None
        return number

    def count(self, name: str) -> int:
        number = self.number(name)
        if number is None:
            return 0
        if number < 0 or not number.is_integer():
            self.fail(name, "a whole number, 0 or more")
            return 0
        return int(number)

    def duration(self, name: str) -> int:
        value = self.fields.get(name)
        if value is None or value == "" or value == "none":
            return 0
        seconds = _seconds(value)
        if seconds is None or seconds < 0:
            self.fail(name, f"seconds, or text such as 90s, 5m, 1h, 1d; not {value!r}")
            return 0
        if seconds > MAX_DURATION_S:
            self.fail(name, "at most a year")
            return 0
        return seconds

    def flag(self, name: str) -> bool:
        value = self.fields.get(name, True)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "off", "0"):
            return False
        self.fail(name, "true or false")
        return True


def _seconds(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        found = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", value.lower())
        if found:
            return int(found[1]) * UNITS.get(found[2] or "s", 1)
    return None
