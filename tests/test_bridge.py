"""The Kamailio bridge's parts that need no Kamailio: its config file, the evapi stream (a scripted
evapi server on loopback stands in where a fault must be provoked), its durable buffer, and its
answers when Kamailio cannot be reached. tests/test_kamailio.py runs it against the real thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import msgspec
import pytest
import trustme
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from console.bridge.bridge import BridgeError, KamailioBridge, netstrings
from console.bridge.buffer import Batch, BufferError, EventBuffer
from console.bridge.kamailio import FOREVER, desired_tables
from console.bridge.settings import BridgeConfigError, parse
from console.bridge.translate import KamailioEvent, Translator, feed_call_id
from console.feed.client import FeedClient
from tests.feedkit import (
    free_port,
    read_report,
    run_service,
    wait_until,
)

SETTINGS = """
[[customer]]
id = "acme"
name = "Acme Telecom"
addresses = ["127.0.0.1"]

[[carrier]]
id = "atlas"
address = "127.0.0.1:5090"

[[carrier]]
id = "old"
address = "127.0.0.1"
enabled = false

[[route]]
prefix = "44"
carriers = ["atlas"]
price = 0.06
cost = { atlas = 0.03 }
"""


# The config file ---------------------------------------------------------------------------------

async def test_a_bad_config_file_is_refused_naming_every_problem(tmp_path, processes):
    config = tmp_path / "bridge.toml"
    config.write_text("""
[kamailio]
sip = "localhost:5060"

[[customer]]
id = "acme telecom"
addresses = ["300.1.1.1"]
channels = 0

[[carrier]]
id = "atlas"
address = "10.0.0.1:99999"

[[route]]
prefix = "44x"
carriers = ["atlas", "nowhere"]
price = -1
""")
    bridge = processes.noc("bridge", "kamailio", "--config", str(config))
    assert await bridge.wait() == 1
    for problem in (
        "kamailio.sip: 'localhost:5060' is not an IP address and port",
        "customer[1] (acme telecom).id: 'acme telecom' must be 1 to 64 letters",
        "customer[1] (acme telecom).addresses: '300.1.1.1' is not an IP address",
        "customer[1] (acme telecom).channels: must be 1 or more",
        "carrier[1] (atlas).address: '10.0.0.1:99999': port '99999' is not 1 to 65535",
        "route[1] (44x).prefix: '44x' must be 1 to 32 digits",
        "route[1] (44x).carriers: 'nowhere' is not a [[carrier]]",
        "route[1] (44x).cost: no cost for 'atlas'",
        "route[1] (44x).price: -1.0 is not 0 or more",
    ):
        assert problem in bridge.stderr
    assert bridge.stderr.startswith(f"noc: {config} is not valid:")
    assert "Traceback" not in bridge.stderr


def test_a_mistyped_key_is_named_with_its_table():
    with pytest.raises(BridgeConfigError, match=r"customer\[2\]: Object contains unknown field "
                                                 r"`chanels`"):
        parse(SETTINGS + '[[customer]]\nid = "blue"\nuser = "b"\npassword = "p"\nchanels = 3\n')


def test_a_missing_config_file_says_what_to_write(tmp_path):
    from console.bridge.settings import load

    with pytest.raises(BridgeConfigError, match="no such file.*Run against Kamailio"):
        load(tmp_path / "absent.toml", environ={})


# The evapi stream -------------------------------------------------------------------------------

def test_netstrings_are_taken_whole_and_a_cut_one_is_skipped():
    data = bytearray(b'3:abc,5:hel')
    assert list(netstrings(data)) == [b"abc"]
    data += b"lo,"
    assert list(netstrings(data)) == [b"hello"]
    # evapi writes without waiting: a slow reader may get an event cut short, then the next.
    data += b'30:{"ev":"start","k":1,' + b'11:{"ev":"x" },' + b'\n2:{},'
    assert list(netstrings(data)) == [b'{"ev":"x" }', b"{}"]
    assert data == b""


# The buffer --------------------------------------------------------------------------------------

async def test_the_buffer_keeps_events_and_lost_runs_across_a_restart(tmp_path):
    path = tmp_path / "bridge.db"
    buffer = EventBuffer(path)
    assert buffer.open().k == 0
    await buffer.commit(Batch(
        events=[(1, 1.0, None, b'{"seq":1}'), (2, 2.0, 5, None), (6, 3.0, None, b'{"seq":6}')],
        position=(1_700_000_000, 9), calls={"a": b"{}"},
        penalties={("carrier", "atlas"): (2e9, "down")}))
    assert (buffer.head, buffer.oldest) == (6, 1)
    assert buffer.after(0, 10) == [b'{"seq":1}']  # stops at the lost run
    assert [buffer.lost_after(seq) for seq in (1, 3, 5)] == [5, 5, 0]
    assert buffer.after(5, 10) == [b'{"seq":6}']
    assert await buffer.prune(now=2.0 + 7 * 86400) == 1  # stored 7 days and more ago
    assert await buffer.prune(now=1e10) == 1  # all but the newest
    assert (buffer.oldest, buffer.head) == (6, 6)
    with pytest.raises(BufferError, match="in use by another bridge"):
        EventBuffer(path).open()
    buffer.close()
    again = EventBuffer(path)
    saved = again.open()
    try:
        assert (saved.boot, saved.k, again.head) == (1_700_000_000, 9, 6)
        assert saved.calls == {"a": b"{}"}
        assert saved.penalties == {("carrier", "atlas"): (2e9, "down")}
    finally:
        again.close()


def test_kamailio_is_told_who_is_disabled_until_when():
    tables = desired_tables(parse(SETTINGS), {("customer", "acme"): 1_700_000_000.2,
                                              ("carrier", "old"): 1_700_000_000.0})
    accounts = tables["noc_acct"]
    assert accounts["c:acme:off"] == 1_700_000_001  # rounded up: a penalty never lifts early
    assert accounts["g:old:off"] == FOREVER  # off in its config file, whatever the penalty
    assert "g:atlas:off" not in accounts
    assert (accounts["s:127.0.0.1"], accounts["g:old:addr"]) == ("acme", "127.0.0.1:5060")
    assert tables["noc_route"] == {"44": 1, "44:1": "atlas", "maxlen": 2}


# Translating ------------------------------------------------------------------------------------

def event(ev: str, k: int, **fields) -> KamailioEvent:
    return KamailioEvent(ev=ev, k=k, boot=1, ts=fields.pop("ts", "1000.0"), **fields)


def test_an_answered_call_whose_start_was_missed_is_made_whole_from_its_end():
    translator = Translator(parse(SETTINGS))
    call = {"call_id": "c1", "customer": "acme", "cli": "100", "dst": "4420", "route": "44",
            "start": "990.0", "attempt": 2, "carrier": "atlas", "attempt_ts": "990.5",
            "answer": "991.0"}
    assert translator.translate(event("answer", 7, call_id="c1", attempt=2)) == []
    made = translator.translate(event("answered_attempt_end", 8, ts="1051.5", **call))
    made += translator.translate(event("hangup", 9, ts="1051.5", hangup="caller", **call))
    assert [(e["type"], e["ts"]) for e in made] == [
        ("call.start", 990.0), ("call.attempt", 990.5), ("call.answer", 991.0),
        ("call.attempt_end", 1051.5), ("call.end", 1051.5)]
    end = made[-1]
    assert (end["duration"], end["billed"], end["charge"], end["cost"]) == (60.5, 61, 0.061,
                                                                            0.0305)
    assert (translator.calls, translator.dropped) == ({}, 1)


def test_a_call_whose_last_events_were_missed_is_ended_whole_from_its_ending():
    """What the bridge reads back from Kamailio for a call that ended while it was away: the
    attempt (or answer) whose own events were lost ends with the call."""
    translator = Translator(parse(SETTINGS))
    for call_id in ("rung", "talked"):
        translator.translate(event("start", 1, call_id=call_id, customer="acme", dst="4420"))
        translator.translate(event("attempt", 2, call_id=call_id, attempt=1, carrier="atlas",
                                   route="44"))
    failed = translator.translate(event("failed", 9, call_id="rung", attempt=1, code=486,
                                        reason="Busy Here", ts="1003.0"))
    assert [(e["type"], e.get("code"), e.get("reason")) for e in failed] == [
        ("call.attempt_end", 486, "Busy Here"), ("call.end", 486, None)]
    hung_up = translator.translate(event(
        "hangup", 10, call_id="talked", ts="1010.0", hangup="caller", customer="acme",
        route="44", attempt=1, carrier="atlas", start="1000.0", attempt_ts="1000.0",
        answer="1004.0"))
    assert [(e["type"], e["ts"]) for e in hung_up] == [
        ("call.answer", 1004.0), ("call.attempt_end", 1010.0), ("call.end", 1010.0)]
    assert (hung_up[-1]["duration"], hung_up[-1]["hangup"]) == (6.0, "caller")
    assert (translator.calls, translator.dropped) == ({}, 0)


def test_a_sip_call_id_the_protocol_cannot_carry_is_named_by_its_digest():
    long_id = "x" * 65 + "@host"
    assert feed_call_id("abc@host") == "abc@host"
    assert feed_call_id(long_id) == feed_call_id(long_id)
    assert feed_call_id(long_id).startswith("sha1-") and len(feed_call_id(long_id)) <= 64
    assert feed_call_id("bad\x1bid").startswith("sha1-")


# The bridge, with no Kamailio to talk to ------------------------------------------------------

def bridge_settings(tmp_path, token: str | None = None, evapi: int | None = None):
    ports = (evapi or free_port(), free_port(), free_port())
    return parse(f'[kamailio]\nevapi = "127.0.0.1:{ports[0]}"\nrpc = "127.0.0.1:{ports[1]}"\n'
                 f'[feed]\nlisten = "127.0.0.1:{ports[2]}"\n'
                 + (f'token = "{token}"\n' if token else "")
                 + f'[buffer]\npath = "{tmp_path / "bridge.db"}"\n' + SETTINGS)


async def control(url: str, token: str, message: dict) -> dict:
    """Send one control message as noc does; return the ack."""
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.send(json.dumps({"type": "subscribe", "since": 0}))
        await ws.send(json.dumps({"type": "control", **message}))
        while True:
            frame = json.loads(await ws.recv())
            if isinstance(frame, dict) and frame.get("type") == "control.ack":
                return frame


async def test_controls_answer_ok_false_with_the_reason_when_kamailio_is_unreachable(tmp_path):
    settings = bridge_settings(tmp_path, token="t0k")
    bridge = KamailioBridge(settings)
    port = await bridge.start()
    url = f"ws://127.0.0.1:{port}/feed"
    try:
        with pytest.raises(InvalidStatus):  # no token, no feed
            async with connect(url):
                pass
        rpc = f"http://{settings.kamailio.rpc}/RPC"
        ack = await control(url, "t0k", {"id": "1", "action": "disable", "kind": "carrier",
                                         "account": "atlas", "reason": "down"})
        assert ack["ok"] is False and f"cannot reach Kamailio's JSON-RPC at {rpc}" in ack["error"]
        ack = await control(url, "t0k", {"id": "2", "action": "hangup", "call_id": "c1"})
        assert ack["ok"] is False and "cannot reach Kamailio" in ack["error"]
        ack = await control(url, "t0k", {"id": "3", "action": "disable", "kind": "customer",
                                         "account": "zeta"})
        assert ack == {"type": "control.ack", "id": "3", "ok": False,
                       "error": "no customer 'zeta' in the bridge's config file"}
        ack = await control(url, "t0k", {"id": "4", "action": "enable", "kind": "carrier",
                                         "account": "old"})
        assert "disabled in the bridge's config file (enabled = false)" in ack["error"]
    finally:
        await bridge.stop()


class SlowBuffer(EventBuffer):
    """A real buffer on a slow disk: each write and prune takes `delay` seconds longer."""

    delay = 1.0

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.began: list[str] = []
        self.finished: list[str] = []

    def _writer_or_fail(self, doing: str):
        self.began.append(doing)
        time.sleep(self.delay)
        return super()._writer_or_fail(doing)

    def _commit_now(self, batch: Batch) -> None:
        super()._commit_now(batch)
        self.finished.append("write")

    def _prune_now(self, cutoff: float) -> int:
        removed = super()._prune_now(cutoff)
        self.finished.append("prune")
        return removed


async def test_a_bridge_stopped_while_it_writes_and_prunes_waits_for_both(tmp_path):
    settings = bridge_settings(tmp_path)
    bridge = KamailioBridge(settings)
    bridge.buffer = slow = SlowBuffer(settings.buffer_path, settings.buffer.keep_days)
    await bridge.start()  # it publishes the accounts and prunes at once, each on a thread
    # One after the other (the second waits for the first): stopped during the second.
    await wait_until(lambda: len(slow.began) == 2, what="the buffer's write and prune to begin")
    await bridge.stop()
    # Closed under a thread's write or prune, the buffer lost the accounts or SQLite crashed.
    assert sorted(slow.finished) == ["prune", "write"]
    reopened = EventBuffer(settings.buffer_path)
    reopened.open()
    try:
        assert reopened.head == len(settings.customer) + len(settings.carrier)
    finally:
        reopened.close()


async def test_the_feed_is_served_over_wss_with_a_certificate(tmp_path):
    authority = trustme.CA()
    served = authority.issue_cert("127.0.0.1")
    cert, key, ca_file = (tmp_path / name for name in ("bridge.pem", "bridge.key", "ca.pem"))
    served.cert_chain_pems[0].write_to_path(str(cert))
    served.private_key_pem.write_to_path(str(key))
    authority.cert_pem.write_to_path(str(ca_file))
    settings = bridge_settings(tmp_path)
    settings.feed.cert, settings.feed.key = str(cert), str(key)
    bridge = KamailioBridge(settings)
    port = await bridge.start()
    try:
        client = FeedClient(f"wss://127.0.0.1:{port}/feed", token=None, position=lambda: 0,
                            ca_file=str(ca_file))
        ws = await client.connect_once()
        frames = [await ws.recv(decode=False) for _ in range(2)]  # a heartbeat may come first
        assert any(b'"type":"account"' in frame for frame in frames)
        await ws.close()
    finally:
        await bridge.stop()
    settings.feed.key = str(tmp_path / "absent.key")
    with pytest.raises(BridgeError, match="cannot use feed.cert"):
        await KamailioBridge(settings).start()


class ScriptedEvapi:
    """A TCP server speaking evapi's netstrings: sends the events a test gives it, numbered as
    Kamailio numbers them; `drop()` cuts the bridge off."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _connected(self, _reader, writer) -> None:
        self.writers.append(writer)

    def send(self, boot: int, k: int, ev: dict) -> None:
        data = msgspec.json.encode({"k": k, "boot": boot, **ev})
        for writer in self.writers:
            writer.write(b"%d:%s," % (len(data), data))

    def drop(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    async def stop(self) -> None:
        self.drop()
        self.server.close()
        with contextlib.suppress(Exception):
            await self.server.wait_closed()


async def test_what_the_bridge_missed_of_kamailio_reaches_noc_as_a_gap_of_that_size(tmp_path):
    evapi = ScriptedEvapi()
    settings = bridge_settings(tmp_path, evapi=await evapi.start())
    bridge = KamailioBridge(settings)
    port = await bridge.start()
    db = tmp_path / "noc.db"
    reject = {"ev": "reject", "customer": "acme", "cli": "1", "dst": "9", "code": 404,
              "reason": "no_route", "ts": "1700000000.5"}
    try:
        async with run_service(db, f"ws://127.0.0.1:{port}/feed") as ingesting:

            accounts = len(settings.customer) + len(settings.carrier)  # each announced first

            async def stored(head: int, gaps: int) -> None:
                """Until noc holds the bridge's seqs up to `head`, with `gaps` gaps among them."""
                await wait_until(lambda: ingesting.service.committed_seq == head,
                                 what=f"noc to store up to seq {head}")
                assert (bridge.buffer.head, len(read_report(db)["gaps"])) == (head, gaps)

            await wait_until(lambda: evapi.writers, what="the bridge to connect")
            for k in (1, 2):
                evapi.send(7, k, reject)
            await stored(head=accounts + 2, gaps=0)
            evapi.drop()  # the connection breaks; Kamailio goes on numbering
            await wait_until(lambda: evapi.writers, what="the bridge to reconnect")
            evapi.send(7, 6, reject)  # 3, 4, 5 were sent to nobody
            await stored(head=accounts + 6, gaps=1)
            evapi.drop()
            await wait_until(lambda: evapi.writers, what="the bridge to reconnect")
            evapi.send(8, 3, reject)  # Kamailio restarted: its 1 and 2 were sent to nobody
            await stored(head=accounts + 9, gaps=2)
        report = read_report(db)
        sizes = [last - first + 1 for first, last in report["gaps"]]
        assert sizes == [3, 2]
        assert report["customers"]["acme"]["breaches"]["other"] == 4
    finally:
        await bridge.stop()
        await evapi.stop()
