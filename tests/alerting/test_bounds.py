"""Templates and scripts cannot exhaust the writer: each render and each script call runs in a
child process within a time and a memory bound. A template over them is refused at import with
the reason; one that goes over only with real data (at a test or at send) falls back to the
default text, saying why; a script over its time leaves its rule without a value, saying why."""

from __future__ import annotations

import json

import psutil
import pytest

from console.alerting import exchange, templates
from console.alerting.messages import send_test
from console.alerting.rules import sample_context
from store.alerting import AlertData
from tests.alerting.kit import MINUTE_MS, T0_MS, engine, rule

MEMORY = "needed more than 64 MiB"
TIME = "took longer than 2 s"
HOSTILE = {  # each was accepted at import, then used 1.2 GB or ran for minutes
    "centred": ("{{ 'x'|center(300000000) }}", MEMORY),
    "padded": ("{{ '%0300000000d'|format(1) }}", MEMORY),
    "doubled": ("{% set s = namespace(text='xx') %}{% for n in range(40) %}"
                "{% set s.text = s.text ~ s.text %}{% endfor %}{{ s.text|length }}", MEMORY),
    "looped": ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}"
               "{% endfor %}", TIME),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_template_over_its_bounds_is_refused_at_import_with_the_reason(network, db, name):
    body, reason = HOSTILE[name]
    before = psutil.Process().memory_info().rss
    with pytest.raises(exchange.ImportInvalid) as refused:
        exchange.import_text(db, f"[[template]]\nname = {json.dumps(name)}\n"
                                 f"subject = 'Alert'\nbody = {json.dumps(body)}\n", now_ms=T0_MS)
    [problem] = refused.value.problems
    assert problem.startswith(f"template 1 ('{name}'): rendering {reason}")
    assert psutil.Process().memory_info().rss - before < 50 << 20  # the child paid, not us
    subject, _ = templates.render(templates.DEFAULTS["asr"], sample_context())
    assert subject.startswith("[WARNING] Sample rule")  # a fresh child renders the next


# Cubic in the account's name: fine on the sample name at import, not on a feed's long name.
SLOW_ON_LONG_NAMES = ("{% for a in account.name %}{% for b in account.name %}"
                      "{% for c in account.name %}{% endfor %}{% endfor %}{% endfor %}"
                      "{{ account.name }} is low")


def test_at_test_and_at_send_a_template_over_its_bounds_falls_back_and_says_why(network, db):
    network.account("customer", "acme", name="A" * 5000)
    rule(db, template=f"Subject: ASR\n{SLOW_ON_LONG_NAMES}")
    alerts = engine(db, [T0_MS + MINUTE_MS + 30_000])
    network.traffic("acme", answered=1, failed=9, end_ms=T0_MS + MINUTE_MS + 30_000)
    alerts.evaluate_round()
    send_test(db, "Low ASR Warning", now_ms=T0_MS + MINUTE_MS + 40_000)
    messages = AlertData(db).outbox()
    assert sorted(m.event for m in messages) == ["fired", "test"]
    for message in messages:
        assert message.body.startswith("Low ASR Warning is firing")  # the default text
        assert f"(The rule's own template failed: rendering {TIME}" in message.body


def test_a_script_over_its_time_leaves_its_rule_without_a_value_and_says_why(network, db,
                                                                             tmp_path):
    plugin = tmp_path / "alert_scripts.py"
    plugin.write_text("def forever(context):\n    while True:\n        pass\n\n\n"
                      "def one(context):\n    return 1\n")
    for title, script in (("Stuck", "forever"), ("Works", "one")):
        rule(db, title=title, area="script", script=script, operator=">=", threshold=1,
             reset_threshold=None, sample_period=None)
    alerts = engine(db, script_module=str(plugin), script_timeout=0.5)
    alerts.evaluate_round(T0_MS + 1000)
    states = {s.title: (s.value, s.detail) for s in AlertData(db).states()}
    assert states["Stuck"] == (None, "script took longer than 0.5 s")
    assert states["Works"] == (1.0, "")  # a fresh child serves the next script
    alerts.scripts.close()
