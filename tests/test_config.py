"""The config file is hostile until shown otherwise: every value is checked, and a bad one is
refused naming the file's line (or the environment variable) and what is wrong; the whole file
is one typed tree, the alerting sections included, read once."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from console.shell.cli import main
from console.shell.config import ConfigError, load


def refusal(tmp_path: Path, text: str | bytes, environ: dict[str, str] | None = None) -> str:
    path = tmp_path / "config.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load(path, environ or {})
    return str(refused.value)


@pytest.mark.parametrize(("text", "line", "says"), [
    # -1 was accepted, and the writer then deleted the event log; a huge value crashed it
    ("[store]\npath = 'x.db'\nevent_log_days = -1\n", 3,
     "store.event_log_days: Expected `int` >= 1"),
    ("[store]\nminute_rollup_days = 1000000000000\n", 2,
     "store.minute_rollup_days: Expected `int` <= 36500"),
    # the bounds of the writer's memory: none at all would let a feed grow it without end
    ("[store]\nmax_open_calls = 0\n", 2, "store.max_open_calls: Expected `int` >= 1000"),
    ("[store]\nmax_accounts = 10000000000\n", 2,
     "store.max_accounts: Expected `int` <= 100000000"),
    ("[carrier]\nfailure_codes = [408, 99]\n", 2, "carrier.failure_codes: 99 is not within"),
    ("[carrier]\nfailure_codes = ['500-700']\n", 2, "'500-700' is not within the SIP codes"),
    ("[carrier]\nfailure_codes = ['599-500']\n", 2, "'599-500' runs backwards: write low-high"),
    ("[carrier]\nfailure_codes = ['5xx']\n", 2, "'5xx' is neither a code nor a range"),
    ("[console]\nrefresh = 1.0\ntheme = 'neon'\n", 3, "console.theme: unknown theme 'neon'"),
    ("[console]\ntimezone = 'Mars/Olympus'\n", 2, "console.timezone: unknown time zone"),
    ("[console]\nrefresh = 0\n", 2, "console.refresh: Expected `float` >= 0.1"),
    ("[feed]\nurl = 'http://switch:8765/feed'\n", 2, "feed.url: bad feed URL"),
    ("[store]\npath = 'x.db'\n\n[bogus]\nanswer = 42\n", 4, "bogus: no such setting here"),
    ("[store]\npath = 'x.db'\nretention = 3\n", 3, "store.retention: no such setting here"),
    ("[console]\ntimezone = 'UTC'\n[alerts]\ntimezone = 'Nowhere/City'\n", 4,
     "alerts.timezone: unknown time zone 'Nowhere/City'"),
    ("[[alerts.report]]\ntitle = 'a'\n[[alerts.report]]\ntitle = 'b'\nat = '25:00'\n", 5,
     "alerts.report[1].at: report 'b': must be HH:MM"),
    ("[email]\nhost = 'smtp'\nport = 70000\n", 3, "email.port: 70000 is no TCP port"),
])
def test_a_bad_value_is_refused_naming_its_line(tmp_path, text, line, says):
    message = refusal(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'config.toml'}, line {line}: ")
    assert says in message


def test_a_file_that_is_not_utf8_is_refused_with_its_line_not_a_traceback(tmp_path):
    (tmp_path / "config.toml").write_bytes(b"[console]\ntimezone = 'Europe/Z\xfcrich'\n")
    result = CliRunner().invoke(main, ["report", "--config", str(tmp_path / "config.toml")])
    assert result.exit_code == 1
    assert result.output.startswith(f"noc: {tmp_path / 'config.toml'}, line 2: not UTF-8 text")
    assert "Traceback" not in result.output


def test_a_bad_environment_value_names_the_variable_not_its_value(tmp_path):
    message = refusal(tmp_path, "", {"NOC_REFRESH": "0.01"})
    assert message == "NOC_REFRESH: console.refresh: Expected `float` >= 0.1"
    secret = "ws://noc:hunter2@switch:8765/feed"
    message = refusal(tmp_path, "", {"NOC_FEED_URL": secret})
    assert message.startswith("NOC_FEED_URL: feed.url: the feed URL") and "hunter2" not in message


def test_one_tree_holds_every_section_alerting_included(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[console]\ntimezone = 'Europe/Berlin'\n[alerts]\ninterval = 2.0\n"
                    "[[alerts.report]]\ntitle = 'Daily'\nrecipients = ['a@example.net']\n"
                    "[email]\nhost = 'smtp.example.net'\nport = 587\nstarttls = true\n")
    settings = load(path, {"NOC_SMTP_PORT": "2525"})
    alerting = settings.alerting
    assert (alerting.interval, alerting.timezone, alerting.report[0].title) == (
        2.0, "Europe/Berlin", "Daily")
    assert (alerting.email.host, alerting.email.port, alerting.email.starttls) == (
        "smtp.example.net", 2525, True)
    assert load(tmp_path / "none.toml", {}).email.host == ""  # no mail server named
