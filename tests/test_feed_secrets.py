"""The feed's secret has one place, the bearer token: a password in the feed URL is refused
(a URL shows in `ps` and was stored in clear in feed_state), never echoed; a token about to
cross a network in clear (ws:// to another machine) is warned about in the log and on the
console."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

from console import testing
from console.feed.client import token_in_clear
from console.feed.service import IngestService
from console.shell.app import NocApp
from console.shell.cli import main
from console.shell.options import ConsoleOptions
from store.database import prepare

SECRET = "s3cret-pa55"
REMOTE = "ws://switch.example:8765/feed"


@pytest.mark.parametrize("how", ["--feed", "NOC_FEED_URL"])
def test_a_password_in_the_feed_url_is_refused_and_never_shown(tmp_path, how):
    url = f"ws://noc:{SECRET}@127.0.0.1:9/feed"
    args, env = (["--feed", url], {}) if how == "--feed" else ([], {"NOC_FEED_URL": url})
    result = CliRunner().invoke(main, ["ingest", *args, "--db", str(tmp_path / "noc.db")],
                                env={"NOC_CONFIG": str(tmp_path / "none.toml"), **env})
    assert result.exit_code == 1
    assert "holds a password" in result.output and "noc:***@127.0.0.1:9" in result.output
    assert "NOC_FEED_TOKEN" in result.output
    assert SECRET not in result.output
    assert not (tmp_path / "noc.db").exists()  # nothing stored it


def test_only_a_token_in_clear_to_another_machine_is_warned_about():
    assert "in clear over ws:// to switch.example" in token_in_clear(REMOTE, "t")
    for url, token in ((REMOTE, None), ("wss://switch.example:8765/feed", "t"),
                       ("ws://127.0.0.1:8765/feed", "t"), ("ws://localhost:8765/feed", "t"),
                       ("ws://[::1]:8765/feed", "t")):
        assert token_in_clear(url, token) is None, url


async def test_the_writer_logs_it_and_its_console_shows_it(tmp_path, caplog):
    prepare(tmp_path / "noc.db")
    service = IngestService(tmp_path / "noc.db", REMOTE, token="t")
    service.stop()  # stopped before it runs: it never connects (tests talk to loopback only)
    options = ConsoleOptions(db_path=tmp_path / "noc.db", watchdog=False, cursor_blink=False)
    app = NocApp(options, service=service)
    with caplog.at_level(logging.WARNING, logger="console.feed.service"):
        async with app.run_test(size=(120, 40)) as pilot:
            await testing.until(pilot, lambda: any(
                "in clear over ws://" in n.message for n in app._notifications))
            await app.action_quit()
    assert any("token is sent in clear over ws:// to switch.example" in record.getMessage()
               for record in caplog.records)
