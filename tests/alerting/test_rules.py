"""Rules as people write them: validation messages, sandboxed templates, TOML round trips."""

from __future__ import annotations

import pytest

from console.alerting import exchange, templates
from console.alerting.rules import RuleInvalid, rule_fields, save_rule, save_template, validate
from store import alerting as store
from store.alerting import AlertData
from store.database import prepare
from tests.alerting.kit import T0_MS
from tests.conftest import STORES, database_of

LOW_ASR = dict(title="Low ASR Warning", kind="customer", company="acme",
               recipients=["noc@example.com"], area="asr", operator="<=", threshold=30,
               reset_threshold=31, sample_period=300)


@pytest.fixture(params=STORES)
def db(request, tmp_path):
    """Rules are kept alike in a SQLite file and a PostgreSQL database."""
    return database_of(request, tmp_path)


def problems(**changes) -> dict[str, str]:
    fields = {name: value for name, value in (LOW_ASR | changes).items() if value is not None}
    with pytest.raises(RuleInvalid) as invalid:
        validate(fields, named_templates={})
    return {error.field: error.message for error in invalid.value.errors}


@pytest.mark.parametrize(("changes", "field", "message"), [
    (dict(reset_threshold=29), "reset_threshold",
     "for `ASR ≤ 30%`, the reset threshold must be above 30%"),
    (dict(reset_threshold=30), "reset_threshold",
     "for `ASR ≤ 30%`, the reset threshold must be above 30%"),
    (dict(operator=">", threshold=5, reset_threshold=6, area="pdd"), "reset_threshold",
     "for `PDD > 5 s`, the reset threshold must be 5 s or below"),
    (dict(operator=">", threshold=6000, reset_threshold=4.5, area="pdd"), "threshold",
     "PDD is in seconds: 6000 s is over 120 s; for milliseconds (as files before noc's "
     "schema 7 gave them) write 6"),
    (dict(operator="=", reset_threshold=1), "reset_threshold",
     "`=` clears as soon as the value differs: leave the reset threshold empty"),
    (dict(area="asrr"), "area", "unknown area 'asrr'; one of balance, asr, ner, acd, pdd, "
     "consecutive_failures, failovers, channels, cps, channel_breaches, cps_breaches, "
     "quarantined, no_traffic, script"),
    (dict(area="balance", reset_threshold=None), "sample_period",
     "Balance has no sample period: it is read as it is now"),
    (dict(area="cps", reset_threshold=None), "sample_period",
     "CPS has no sample period: it is read as it is now"),
    (dict(area="consecutive_failures", kind="carrier", sample_period=None, operator=">=",
          reset_threshold=None, company=None), "company",
     'an account id, "*" for all, or a tag instead'),
    (dict(area="consecutive_failures", sample_period=None, reset_threshold=None), "kind",
     "Consecutive failures is a carrier's: kind must be carrier"),
    (dict(operator="=>"), "operator", "one of < <= = >= >"),
    (dict(threshold="thirty"), "threshold", "must be a number, not 'thirty'"),
    (dict(recipients=["bob"]), "recipients",
     "'bob' is neither an email address, a phone number nor a URL"),
    (dict(penalty="soon"), "penalty", "seconds, or text such as 90s, 5m, 1h, 1d; not 'soon'"),
    (dict(level="panic"), "level", "one of info, warning, error, critical"),
    (dict(minimum_sample=10, area="failovers", kind="carrier", reset_threshold=None,
          operator=">"), "minimum_sample",
     "a minimum sample applies to ASR, NER, ACD and PDD only (attempts in the window), "
     "not to Failovers"),
    (dict(template="nosuch"), "template", "no template named 'nosuch'"),
    (dict(template="Hello {{ account.nme }}"), "template", "body: 'dict object' has no "
     "attribute 'nme'"),
    (dict(template="line one\n{{ value value }}"), "template",
     "body: line 2: expected token 'end of print statement', got 'value'"),
    (dict(colour="red"), "colour", "unknown field; the fields are title, kind, company, tag, "
     "recipients, area, operator, threshold, reset_threshold, sample_period, minimum_sample, "
     "pending, penalty, template, script, repeat, level, enabled"),
])
def test_validation_names_the_field_and_says_what_is_wrong(changes, field, message):
    assert problems(**changes)[field] == message


def test_every_problem_is_reported_at_once():
    assert set(problems(title="", operator="?", threshold=None, level="x")) == {
        "title", "operator", "threshold", "level"}


def test_durations_read_as_people_write_them():
    rule = validate(LOW_ASR | dict(pending="90s", penalty="1h", repeat="15m", sample_period="5m"),
                    named_templates={})
    assert (rule.pending_s, rule.penalty_s, rule.repeat_s, rule.sample_period_s) == (
        90, 3600, 900, 300)


def test_no_traffic_has_its_own_condition():
    rule = validate(dict(title="Quiet", kind="customer", company="*", area="no_traffic",
                         sample_period="15m"), named_templates={})
    assert (rule.operator, rule.threshold, rule.reset_threshold, rule.scope) == (
        "=", 0.0, None, "all")


@pytest.mark.parametrize("text", [
    "{{ rule.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ account.name.format.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{{ 'x' * 100000000 }}",
])
def test_a_template_cannot_run_code(text):
    context = dict(rule={"title": "t"}, account={"name": "n"}, cycler=None)
    with pytest.raises(templates.TemplateProblem):
        templates.render(templates.Template("evil", text, text), context)
    assert "template" in problems(template=text)


def test_a_rule_title_is_unique(tmp_path):
    db = tmp_path / "noc.db"
    prepare(db)
    save_rule(db, LOW_ASR, now_ms=T0_MS)
    with pytest.raises(RuleInvalid, match="a rule titled 'Low ASR Warning' exists"):
        save_rule(db, LOW_ASR, now_ms=T0_MS)


RULES_FILE = '''
[[template]]
name = "short"
subject = "{{ rule.title }}: {{ value_text }}"
body = """
{{ account.name }} is at {{ value_text }} ({{ state }})
"""

[[rule]]
title = "Low ASR Warning"
kind = "customer"
company = "acme"
recipients = ["noc@example.com", "+44 7700 900123", "json://127.0.0.1:9/hook"]
area = "asr"
operator = "<="
threshold = 30
reset_threshold = 31
sample_period = "5m"
minimum_sample = 20
pending = 60
template = "short"
repeat = "1h"
level = "error"

[[rule]]
title = "Carrier down"
kind = "carrier"
company = "*"
area = "consecutive_failures"
operator = ">="
threshold = 50
reset_threshold = 0
penalty = 300

[[rule]]
title = "Gold customers quiet"
kind = "customer"
tag = "gold"
area = "no_traffic"
sample_period = 900
template = """Subject: {{ account.name }} is quiet
No call from {{ account.name }} in {{ rule.window }}."""
enabled = false

[[tag]]
name = "gold"
kind = "customer"
accounts = ["acme", "blue-voip"]
'''


def test_toml_round_trip(tmp_path):
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    for db in (first, second):
        prepare(db)
    assert exchange.import_text(first, RULES_FILE, now_ms=T0_MS) == exchange.ImportResult(
        3, 0, 1, 1)
    exported = exchange.export_text(first)
    assert exchange.import_text(second, exported, now_ms=T0_MS) == exchange.ImportResult(
        3, 0, 1, 1)
    assert exchange.export_text(second) == exported
    assert AlertData(second).tags() == [("customer", "acme", "gold"),
                                        ("customer", "blue-voip", "gold")]
    assert [rule_fields(r) for r in AlertData(second).rules()] == [
        rule_fields(r) for r in AlertData(first).rules()]
    assert AlertData(second).templates() == AlertData(first).templates()
    # Importing again replaces the rules of the same titles.
    assert exchange.import_text(second, exported, now_ms=T0_MS) == exchange.ImportResult(
        0, 3, 1, 1)


def test_an_import_with_a_bad_rule_changes_nothing(tmp_path):
    db = tmp_path / "noc.db"
    prepare(db)
    bad = RULES_FILE.replace("reset_threshold = 31", "reset_threshold = 29")
    with pytest.raises(exchange.ImportInvalid) as invalid:
        exchange.import_text(db, bad + "\n[extra]\nx = 1\n", now_ms=T0_MS)
    assert invalid.value.problems == [
        "unknown section [extra]: the file holds [[rule]], [[template]] and [[tag]] tables",
        "rule 1 ('Low ASR Warning', line 9): reset_threshold: for `ASR ≤ 30%`, the reset "
        "threshold must be above 30%",
    ]
    assert AlertData(db).rules() == [] and AlertData(db).templates() == []


OLD_PDD_RULE = """
[[rule]]
title = "PDD high"
kind = "carrier"
company = "*"
area = "pdd"
operator = ">"
threshold = 6000
reset_threshold = 4500
"""


def test_pdd_is_in_seconds_and_a_file_in_milliseconds_is_refused_naming_the_unit(tmp_path):
    db = tmp_path / "noc.db"
    prepare(db)
    with pytest.raises(exchange.ImportInvalid) as invalid:
        exchange.import_text(db, OLD_PDD_RULE, now_ms=T0_MS)
    assert invalid.value.problems == [
        "rule 1 ('PDD high', line 2): threshold: PDD is in seconds: 6000 s is over 120 s; for "
        "milliseconds (as files before noc's schema 7 gave them) write 6",
        "rule 1 ('PDD high', line 2): reset_threshold: PDD is in seconds: 4500 s is over 120 "
        "s; for milliseconds (as files before noc's schema 7 gave them) write 4.5"]
    in_seconds = OLD_PDD_RULE.replace("6000", "6").replace("4500", "4.5")
    exchange.import_text(db, in_seconds, now_ms=T0_MS)
    rule = AlertData(db).rule("PDD high")
    assert (rule.threshold, rule.reset_threshold, rule.condition) == (
        6, 4.5, "PDD > 6 s, clears at ≤ 4.5 s")
    assert 'threshold = 6.0\nreset_threshold = 4.5' in exchange.export_text(db)


def test_a_template_in_use_cannot_be_deleted(tmp_path):
    db = tmp_path / "noc.db"
    prepare(db)
    save_template(db, "short", "{{ rule.title }}", "{{ value_text }}", now_ms=T0_MS)
    save_rule(db, LOW_ASR | dict(template="short"), now_ms=T0_MS)
    with pytest.raises(ValueError, match="used by Low ASR Warning"):
        store.delete_template(db, "short")


def test_a_tag_in_a_file_has_exactly_the_members_listed(tmp_path):
    db = tmp_path / "noc.db"
    prepare(db)
    exchange.import_text(db, RULES_FILE, now_ms=T0_MS)
    smaller = '[[tag]]\nname = "gold"\nkind = "customer"\naccounts = ["acme"]\n'
    assert exchange.import_text(db, smaller, now_ms=T0_MS).tags == 1
    assert AlertData(db).tags() == [("customer", "acme", "gold")]


def test_a_bad_tag_is_refused_by_name(tmp_path):
    db = tmp_path / "noc.db"
    prepare(db)
    bad = '[[tag]]\nname = "gold"\nkind = "feed"\naccounts = ["acme"]\n'
    with pytest.raises(exchange.ImportInvalid, match=r"tag 1 \('gold'\): kind: customer or "
                                                      "carrier"):
        exchange.import_text(db, bad, now_ms=T0_MS)
    assert AlertData(db).tags() == []
