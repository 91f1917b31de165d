"""`noc serve` over real HTTP on loopback: the token, the Origin check, the cap on sessions,
read-only viewers, and a real headless Chromium that loads the console and gets its dashboard
(skipped, saying why, where Chromium is not installed)."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import tempfile

import aiohttp
import psutil
import pytest

from console import testing
from tests.feedkit import free_port, noc_environment, wait_until
from tests.test_cli import assert_one_line_error

TOKEN = "a-token-for-the-tests-0123456789"


@pytest.fixture
def served(noc_seeded_template, tmp_path, processes):
    """A `noc serve` of a seeded database with at most one session: (process, base URL)."""
    db = testing.copy_database(noc_seeded_template, tmp_path / "noc.db")
    port = free_port()
    env = noc_environment(tmp_path, NOC_SERVE_TOKEN=TOKEN)
    process = processes.noc("serve", "--db", str(db), "--port", str(port), "--sessions", "1",
                            env=env)
    return process, f"http://127.0.0.1:{port}"


async def serving(base: str) -> None:
    """Wait until `noc serve` answers (a start-up takes seconds on a busy machine)."""
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"{base}/static/css/xterm.css") as reply:
                    if reply.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


async def read_until(ws: aiohttp.ClientWebSocketResponse, text: bytes) -> bytes:
    """What the console's session sent, up to the first time it holds `text`."""
    seen = b""
    async for message in ws:
        if message.type == aiohttp.WSMsgType.BINARY:
            seen += message.data
            if text in seen:
                return seen
    raise AssertionError(f"the session ended before showing {text!r}: {seen[-500:]!r}")


def sessions_of(server: psutil.Process) -> list[list[str]]:
    """The command lines of the consoles `server` runs (not the shells that start them); a
    console that has ended but is not yet reaped (a zombie) or is gone is not running."""
    commands = []
    for child in server.children(recursive=True):
        try:
            command = child.cmdline()
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
        if command[1:3] == ["-m", "console.shell.cli"]:
            commands.append(command)
    return commands


async def test_the_console_in_a_browser_needs_the_token_and_is_a_read_only_viewer(served):
    process, base = served
    await serving(base)
    server = psutil.Process(process.pid)
    assert {c.laddr.ip for c in server.net_connections() if c.status == "LISTEN"} == {
        "127.0.0.1"}
    # A browser keeps a loopback address's cookies; aiohttp's jar needs telling ("unsafe").
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as anyone:
        for url in (f"{base}/", f"{base}/?token=wrong", f"{base}/ws"):
            async with anyone.get(url) as reply:
                assert reply.status == 403, url
                assert "token" in await reply.text()
        async with anyone.get(f"{base}/?token={TOKEN}", headers={"Host": "noc.example:80"}) as page:
            assert page.status == 200  # its session at the address the browser used
            assert 'data-session-websocket-url="ws://noc.example:80/ws"' in await page.text()
        assert any(cookie.key == "noc_serve_token" for cookie in anyone.cookie_jar)
        with pytest.raises(aiohttp.WSServerHandshakeError) as elsewhere:
            await anyone.ws_connect(f"{base}/ws", headers={"Origin": "http://evil.example"})
        assert elsewhere.value.status == 403  # another site's page cannot use the cookie
        origin = {"Origin": base}
        async with anyone.ws_connect(f"{base}/ws?width=120&height=40", headers=origin) as ws:
            assert b"Dashboard" in await asyncio.wait_for(read_until(ws, b"Dashboard"), 120)
            (command,) = sessions_of(server)
            assert command[-3:] == ["console.shell.cli", "--viewer", "--read-only"]
            assert not any("noc.db" in part for part in command)  # the database: in its env
            with pytest.raises(aiohttp.WSServerHandshakeError) as capped:
                await anyone.ws_connect(f"{base}/ws", headers=origin)
            assert capped.value.status == 503
    await wait_until(lambda: not sessions_of(server), what="the session's console to end")
    assert "session opened" in process.stderr and TOKEN not in process.stderr  # logs keep it


async def test_a_short_token_is_refused_in_one_line(tmp_path, processes):
    env = noc_environment(tmp_path, NOC_SERVE_TOKEN="short")
    process = processes.noc("serve", "--db", str(tmp_path / "noc.db"), env=env)
    assert_one_line_error(process, await process.wait(), "NOC_SERVE_TOKEN", "16 characters")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get "
                    "install chromium); the browser test needs a real one")
async def test_headless_chromium_loads_the_console_and_gets_the_dashboard(served):
    """The real page and its script, in a real browser: what it receives over its session
    (read through the DevTools protocol: the terminal draws on a canvas) holds the dashboard."""
    _, base = served
    await serving(base)
    port = free_port()
    profile = tempfile.mkdtemp(prefix="noc-chromium-")
    browser = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
         f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
         "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as session:
            targets = await _devtools_targets(session, port)
            page = next(target for target in targets if target["type"] == "page")
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as tab:
                await tab.send_json({"id": 1, "method": "Network.enable"})
                await tab.send_json({"id": 2, "method": "Page.navigate",
                                     "params": {"url": f"{base}/?token={TOKEN}"}})
                received = await asyncio.wait_for(_frames_until(tab, b"Dashboard"), 120)
        assert b"Dashboard" in received
    finally:
        browser.terminate()
        browser.wait(30)
        shutil.rmtree(profile, ignore_errors=True)


async def _devtools_targets(session: aiohttp.ClientSession, port: int) -> list[dict]:
    while True:
        try:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as reply:
                return await reply.json()
        except aiohttp.ClientError:
            await asyncio.sleep(0.1)


async def _frames_until(tab: aiohttp.ClientWebSocketResponse, text: bytes) -> bytes:
    """The websocket frames the page received, up to the first time they hold `text`."""
    seen = b""
    async for message in tab:
        event = json.loads(message.data)
        if event.get("method") == "Network.webSocketFrameReceived":
            frame = event["params"]["response"]
            data = frame["payloadData"]
            seen += base64.b64decode(data) if frame["opcode"] == 2 else data.encode()
            if text in seen:
                return seen
    raise AssertionError("the browser's DevTools connection ended")
