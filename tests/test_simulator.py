"""The simulator: the traffic model's determinism, validity and incidents; the websocket server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from msgspec import UNSET
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from console.feed.protocol import (
    Account,
    CallReject,
    CallStart,
    Control,
    ControlAck,
    Gap,
    Heartbeat,
    Rejected,
    decode_frame,
    encode,
)
from console.feed.server import ResumeBuffer
from console.feed.simulator import Simulator
from console.feed.traffic import CUSTOMERS, INCIDENT_KINDS, SCENARIOS, Traffic
from store.metrics import ConsecutiveFailures

T0 = 1_763_700_000.0


def run_model(scenario: str = "calm", seconds: float = 300, seed: int = 1) -> tuple[Traffic, list]:
    traffic = Traffic(seed, 20.0, scenario, T0)
    return traffic, traffic.advance_to(T0 + seconds)


# The model: determinism and validity.


def test_same_seed_gives_the_same_bytes_however_time_is_advanced():
    _, at_once = run_model("default", 300)
    stepped = Traffic(1, 20.0, "default", T0)
    in_steps = [e for second in range(1, 301) for e in stepped.advance_to(T0 + second)]
    assert encode(at_once) == encode(in_steps)
    _, other_seed = run_model("default", 300, seed=2)
    assert encode(other_seed) != encode(at_once)


def test_next_events_continues_the_same_stream():
    _, by_time = run_model("default", 120)
    by_count = Traffic(1, 20.0, "default", T0)
    chunks = [e for _ in range(len(by_time) // 500) for e in by_count.next_events(500)]
    assert encode(chunks) == encode(by_time[:len(chunks)])


@dataclass
class CallState:
    attempts: list[str] = field(default_factory=list)  # each: open, progress, answered, ended
    ended: bool = False
    last_ts: float = 0.0


def check_stream(events: list[dict]) -> dict[str, CallState]:
    """Every event decodes; seqs run 1, 2, 3...; each call's events come in a possible order."""
    for start in range(0, len(events), 500):
        items = decode_frame(encode(events[start:start + 500]))
        assert not [item for item in items if isinstance(item, Rejected)]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    calls: dict[str, CallState] = {}
    for event in events:
        assert round(event["ts"], 3) == event["ts"]
        if event["type"] == "call.start":
            assert event["call_id"] not in calls
            calls[event["call_id"]] = CallState(last_ts=event["ts"])
        elif event["type"].startswith("call.") and event["type"] != "call.reject":
            call = calls[event["call_id"]]
            assert not call.ended and event["ts"] >= call.last_ts
            call.last_ts = event["ts"]
            check_call_event(call, event)
    return calls


def check_call_event(call: CallState, event: dict) -> None:
    kind, attempts = event["type"], call.attempts
    if kind == "call.attempt":
        assert event["attempt"] == len(attempts) + 1 and all(a == "ended" for a in attempts)
        attempts.append("open")
    elif kind == "call.progress":
        assert event["attempt"] == len(attempts) and attempts[-1] in ("open", "progress")
        attempts[-1] = "progress"
    elif kind == "call.answer":
        assert event["attempt"] == len(attempts) and attempts[-1] == "progress"
        attempts[-1] = "answered"
    elif kind == "call.dtmf":
        assert attempts[-1] == "answered"
    elif kind == "call.attempt_end":
        assert event["attempt"] == len(attempts) and attempts[-1] != "ended"
        assert (event["code"] == 200) == (attempts[-1] == "answered")
        attempts[-1] = "ended"
    elif kind == "call.end":
        assert attempts and all(a == "ended" for a in attempts)
        call.ended = True
        if event["code"] == 200:
            check_billing(event)
        else:
            assert event["duration"] == event["charge"] == event["cost"] == 0


def check_billing(end: dict) -> None:
    assert 0 < end["duration"] < 2400 and round(end["duration"], 3) == end["duration"]
    assert end["billed"] >= end["duration"] and end["billed"] == math.ceil(end["billed"])
    assert end["charge"] > end["cost"] * 0.9 and round(end["charge"], 6) == end["charge"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_produces_a_valid_stream(scenario):
    _, events = run_model(scenario, 240)
    calls = check_stream(events)
    assert sum(call.ended for call in calls.values()) > 3000
    opening = [e for e in events if e["type"] == "account" and e["ts"] == T0]
    assert Counter(e["kind"] for e in opening) == {"customer": 6, "carrier": 5}


def test_customers_differ_and_balances_are_reported_every_ten_seconds_at_most():
    _, events = run_model("calm", 600)
    answered = {e["call_id"] for e in events if e["type"] == "call.answer"}
    customer_of = {e["call_id"]: e["customer"] for e in events if e["type"] == "call.start"}
    dtmf_calls = Counter(customer_of[c] for c in {e["call_id"] for e in events
                                                  if e["type"] == "call.dtmf"})
    answered_by = Counter(customer_of[c] for c in answered)
    assert dtmf_calls["helpline-cc"] / answered_by["helpline-cc"] > 0.5
    assert dtmf_calls["acme-telecom"] / answered_by["acme-telecom"] < 0.1
    balance_times = defaultdict(list)
    for e in events:
        if e["type"] == "account" and "balance" in e:
            balance_times[e["id"]].append(e["ts"])
    for times in balance_times.values():
        assert all(later - earlier >= 10 for earlier, later in zip(times, times[1:], strict=False))
    assert {e["reason"] for e in events if e["type"] == "call.reject"} <= {
        "no_route", "cps_limit", "channel_limit"}


# The model: incidents.


def carrier_of_attempts(events: list[dict]) -> dict[tuple[str, int], str]:
    return {(e["call_id"], e["attempt"]): e["carrier"] for e in events
            if e["type"] == "call.attempt"}


def test_a_quiet_history_fills_every_hour_of_the_day_before_the_start_and_no_incident():
    """The demo's default: a day of hourly rows, not zeros, and its incident still to come."""
    day = 86_400
    traffic = Traffic(1, 20.0, "outage", T0, history_s=day - 600)
    events = traffic.advance_to(T0 + 600)
    starts = [e["ts"] for e in events if e["type"] == "call.start"]
    hours = Counter(int((T0 + 600 - ts) // 3600) for ts in starts)
    assert sorted(hours) == list(range(24))
    quiet = sum(n for hour, n in hours.items() if hour > 0)
    assert quiet < len(starts) - quiet  # the last 10 minutes outweigh the 23 h 50 min before
    [incident] = traffic.incidents
    assert incident.start >= T0


def test_cli_demo_opens_with_a_day_of_history():
    from console.shell.cli import DEMO_BACKFILL_S, DEMO_QUIET_HISTORY_S, demo

    defaults = {p.name: p.default for p in demo.params}
    assert (defaults["backfill"], defaults["quiet_history"]) == (DEMO_BACKFILL_S,
                                                                 DEMO_QUIET_HISTORY_S)
    assert DEMO_BACKFILL_S + DEMO_QUIET_HISTORY_S >= 86_400


def test_outage_sends_a_carriers_consecutive_failures_into_the_hundreds():
    traffic, events = run_model("outage", 300)
    [incident] = traffic.incidents
    carrier = carrier_of_attempts(events)
    counter, worst = ConsecutiveFailures(), Counter()
    for e in events:
        if e["type"] == "call.answer":
            counter.answered(carrier[e["call_id"], e["attempt"]])
        elif e["type"] == "call.attempt_end":
            name = carrier[e["call_id"], e["attempt"]]
            counter.attempt_ended(name, e["code"])
            worst[name] = max(worst[name], counter.counters[name])
    assert worst[incident.target] >= 100
    assert max(n for name, n in worst.items() if name != incident.target) < 20
    assert not [e for e in events if e["type"] == "call.answer" and e["ts"] > incident.start + 1
                and carrier[e["call_id"], e["attempt"]] == incident.target]


def test_false_answer_carrier_answers_short_calls_and_never_404():
    traffic, events = run_model("false-answer", 300)
    [incident] = traffic.incidents
    carrier = carrier_of_attempts(events)
    codes = defaultdict(Counter)
    for e in events:
        if e["type"] == "call.attempt_end":
            codes[carrier[e["call_id"], e["attempt"]]][e["code"]] += 1
    assert codes[incident.target][404] == 0 and codes[incident.target][200] > 100
    assert all(codes[name][404] > 0 for name in codes if name != incident.target)
    last_carrier = {e["call_id"]: e["carrier"] for e in events if e["type"] == "call.attempt"}
    short = [e for e in events if e["type"] == "call.end" and e["code"] == 200
             and e["duration"] <= 5 and last_carrier[e["call_id"]] == incident.target]
    assert len(short) > 100


def test_pdd_spike_slows_one_carriers_progress():
    traffic, events = run_model("pdd-spike", 300)
    [incident] = traffic.incidents
    attempts = {(e["call_id"], e["attempt"]): e for e in events if e["type"] == "call.attempt"}
    pdd = defaultdict(list)
    for e in events:
        if e["type"] == "call.progress":
            attempt = attempts.pop((e["call_id"], e["attempt"]), None)
            if attempt is not None and attempt["ts"] > incident.start:
                pdd[attempt["carrier"]].append(e["ts"] - attempt["ts"])
    means = {name: sum(values) / len(values) for name, values in pdd.items()}
    assert 8 <= means.pop(incident.target) <= 15
    assert max(means.values()) < 5


def rejects(events: list[dict]) -> Counter:
    return Counter((e["customer"], e["reason"]) for e in events if e["type"] == "call.reject")


def test_cps_flood_breaches_the_customers_cps_limit():
    traffic, events = run_model("cps-flood", 120)
    [incident] = traffic.incidents
    assert incident.start - T0 <= 20
    assert rejects(events)[incident.target, "cps_limit"] > 500


def test_balance_out_rejects_the_customers_calls():
    traffic, events = run_model("balance-out", 120)
    [incident] = traffic.incidents
    assert rejects(events)[incident.target, "balance"] > 50
    balances = [e["balance"] for e in events if e["type"] == "account"
                and e["id"] == incident.target and "balance" in e]
    assert balances[-1] <= 0


def incidents_within(scenario: str, seconds: int) -> list:
    traffic = Traffic(1, 20.0, scenario, T0)
    for step in range(10, seconds + 1, 10):
        traffic.advance_to(T0 + step)  # in steps: one huge list of events would be slow to build
    return traffic.incidents


def test_default_has_random_incidents_that_end():
    incidents = incidents_within("default", 2400)
    assert len(incidents) >= 4 and len({i.kind for i in incidents}) >= 2
    assert all(i.kind in INCIDENT_KINDS for i in incidents)
    assert all(i.end is not None for i in incidents[:-1])
    assert not incidents_within("calm", 1200)


# The model: controls.


def control(action: str, account: str, kind: str = "customer", until: float | None = None):
    return Control(id="c1", action=action, kind=kind, account=account, until=until)


def test_a_disabled_customer_is_rejected_until_its_until():
    traffic, _ = run_model("calm", 60)
    ok, error, [event] = traffic.apply_control(control("disable", "acme-telecom", until=T0 + 90))
    assert ok and error is None and event["enabled"] is False and event["seq"] == traffic.head
    during = traffic.advance_to(T0 + 90)
    assert rejects(during)["acme-telecom", "disabled"] > 50
    assert not [e for e in during if e["type"] == "call.start" and e["customer"] == "acme-telecom"]
    after = traffic.advance_to(T0 + 120)
    enabled = [e for e in during + after if e["type"] == "account" and e.get("enabled")]
    assert [(e["id"], e["ts"]) for e in enabled] == [("acme-telecom", T0 + 90)]
    assert [e for e in after if e["type"] == "call.start" and e["customer"] == "acme-telecom"]


def test_a_disabled_carrier_gets_no_attempts_and_enable_cancels_the_until():
    traffic, _ = run_model("calm", 60)
    traffic.apply_control(control("disable", "delta-route", kind="carrier", until=T0 + 80))
    ok, _, [event] = traffic.apply_control(control("enable", "delta-route", kind="carrier"))
    assert ok and event["enabled"] is True
    traffic.apply_control(control("disable", "delta-route", kind="carrier"))
    events = traffic.advance_to(T0 + 200)
    assert not [e for e in events if e["type"] == "call.attempt" and e["carrier"] == "delta-route"]
    assert not [e for e in events if e["type"] == "account" and e.get("enabled")]
    assert [e for e in events if e["type"] == "call.attempt" and e["route"] == "1"]


def test_a_control_for_an_unknown_account_fails():
    traffic, _ = run_model("calm", 1)
    head = traffic.head
    assert traffic.apply_control(control("disable", "nobody")) == (
        False, "unknown customer 'nobody'", [])
    assert traffic.head == head


def test_hangup_ends_a_call_in_progress_now_and_voids_its_later_events():
    traffic, events = run_model("calm", 60)
    ended = {e["call_id"] for e in events if e["type"] == "call.end"}
    answered = {e["call_id"] for e in events if e["type"] == "call.answer"}
    call_id = next(c for c in sorted(answered) if c not in ended)
    ok, error, hung = traffic.apply_control(
        Control(id="h1", action="hangup", call_id=call_id))
    assert ok and error is None
    assert [(e["type"], e["code"]) for e in hung if e["call_id"] == call_id] == [
        ("call.attempt_end", 200), ("call.end", 200)]
    assert hung[-1]["hangup"] == "switch" and hung[-1]["duration"] > 0
    later = traffic.advance_to(T0 + 3000)
    assert not [e for e in later if e.get("call_id") == call_id]
    assert traffic.apply_control(Control(id="h2", action="hangup", call_id=call_id))[:2] == (
        False, f"no call {call_id!r} in progress")


def test_customer_limits_scale_with_the_call_rate():
    slow, fast = Traffic(1, 5.0, "calm", T0), Traffic(1, 200.0, "calm", T0)
    limits = {e["id"]: e for e in slow.advance_to(T0)}
    bigger = {e["id"]: e for e in fast.advance_to(T0)}
    for profile in CUSTOMERS:
        assert bigger[profile.id]["channels"] > limits[profile.id]["channels"]


def test_resume_buffer_keeps_the_newest_events_by_seq():
    buffer = ResumeBuffer(3)
    buffer.extend(1, [b"1", b"2", b"3", b"4", b"5"])
    assert (buffer.oldest, buffer.head, buffer.after(2, 10)) == (3, 5, [b"3", b"4", b"5"])
    buffer.forget(4)
    assert (buffer.oldest, buffer.after(4, 10)) == (5, [b"5"])
    buffer.forget(99)
    assert buffer.oldest == 6
    buffer.extend(6, [b"6"])
    assert buffer.after(5, 10) == [b"6"]


# The server.


@contextlib.asynccontextmanager
async def serving(**options):
    sim = Simulator(**{"start": T0, "heartbeat": 0.3, "keep_history": True, **options})
    port = await sim.start(port=0)
    try:
        yield sim, f"ws://127.0.0.1:{port}/feed"
    finally:
        await sim.stop()


async def subscribe(url: str, since: int = 0, token: str | None = None) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    ws = await connect(url, additional_headers=headers, compression=None)
    await ws.send(json.dumps({"type": "subscribe", "since": since}))
    return ws


async def read_until(ws: ClientConnection, done: Callable[[list], bool]) -> list:
    """Decoded items received until `done(items)` holds."""
    items: list = []
    while not done(items):
        decoded = decode_frame(await ws.recv(decode=False))
        assert not [item for item in decoded if isinstance(item, Rejected)]
        items.extend(decoded)
    return items


def events_of(items: list) -> list:
    return [item for item in items if hasattr(item, "seq")]


def has_seq(seq: int) -> Callable[[list], bool]:
    return lambda items: any(getattr(item, "seq", 0) >= seq for item in items)


async def test_a_subscriber_receives_accounts_events_and_heartbeats():
    async with serving(speed=20) as (sim, url), await subscribe(url) as ws:
        items = await read_until(ws, lambda got: has_seq(300)(got) and any(
            isinstance(item, Heartbeat) for item in got))
        events = events_of(items)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert all(isinstance(e, Account) for e in events[:11])
        assert events == decode_frame(encode(sim.history[:len(events)]))


async def test_resuming_sends_only_later_events():
    async with serving(speed=0, limit=2000) as (_sim, url):
        async with await subscribe(url) as ws:
            await read_until(ws, has_seq(2000))
        async with await subscribe(url, since=1500) as ws:
            events = events_of(await read_until(ws, has_seq(2000)))
        assert [e.seq for e in events] == list(range(1501, 2001))


async def test_resuming_from_forgotten_events_gets_a_gap_first():
    async with serving(speed=0, limit=1000, buffer=400) as (sim, url):
        async with await subscribe(url) as ws:
            await read_until(ws, has_seq(1000))
        sim.forget(700)
        async with await subscribe(url, since=10) as ws:
            items = await read_until(ws, has_seq(1000))
        gaps = [item for item in items if isinstance(item, Gap)]
        assert [(g.from_, g.to) for g in gaps] == [(11, 700)]
        assert [e.seq for e in events_of(items)] == list(range(701, 1001))
        assert items.index(gaps[0]) < items.index(events_of(items)[0])


async def test_speed_zero_stops_at_the_limit_then_sends_heartbeats():
    async with serving(speed=0, limit=1234) as (sim, url), await subscribe(url) as ws:
        items = await read_until(ws, lambda got: has_seq(1234)(got) and isinstance(
            got[-1], Heartbeat) and got[-1].last_seq == 1234)
        assert len(events_of(items)) == 1234 and sim.head == 1234


async def test_frames_hold_a_random_count_of_events_and_single_events_go_bare():
    async with serving(speed=0, limit=400, frame_events=(1, 5)) as (sim, url), \
            await subscribe(url) as ws:
        frames, sizes = [], []
        while sum(sizes) < 400:
            frame = json.loads(await ws.recv())
            if isinstance(frame, list) or frame.get("type") != "heartbeat":
                frames.append(frame)
                sizes.append(len(frame) if isinstance(frame, list) else 1)
    assert set(sizes) == {1, 2, 3, 4, 5}
    assert all(isinstance(f, dict) for f, size in zip(frames, sizes, strict=True) if size == 1)
    events = [e for f in frames for e in (f if isinstance(f, list) else [f])]
    assert [e["seq"] for e in events] == list(range(1, 401))


async def test_a_wrong_or_missing_token_is_refused_with_401():
    async with serving(speed=20, token="s3cret") as (_sim, url):
        for token in ("wrong", None):
            with pytest.raises(InvalidStatus) as refused:
                await subscribe(url, token=token)
            assert refused.value.response.status_code == 401
        async with await subscribe(url, token="s3cret") as ws:
            assert events_of(await read_until(ws, has_seq(11)))


async def test_a_disabled_customer_is_rejected_then_re_enabled_by_until():
    async with serving(speed=50) as (sim, url), await subscribe(url) as ws:
        now = events_of(await read_until(ws, has_seq(200)))[-1].ts
        await ws.send(json.dumps({"type": "control", "id": "k1", "action": "disable",
                                  "kind": "customer", "account": "acme-telecom",
                                  "until": now + 20, "reason": "ASR alert"}))
        items = await read_until(ws, lambda got: any(
            isinstance(i, Account) and i.id == "acme-telecom" and i.enabled is True for i in got))
        [ack] = [item for item in items if isinstance(item, ControlAck)]
        assert ack.id == "k1" and ack.ok
        states = [i for i in items if isinstance(i, Account) and i.id == "acme-telecom"
                  and i.enabled is not UNSET]
        assert [s.enabled for s in states] == [False, True]
        assert items.index(ack) < items.index(states[0])
        assert states[1].ts >= now + 20
        between = items[items.index(states[0]):items.index(states[1])]
        assert [i for i in between if isinstance(i, CallReject) and i.reason == "disabled"
                and i.customer == "acme-telecom"]
        assert not [i for i in between if isinstance(i, CallStart) and i.customer == "acme-telecom"]
        assert sim.controls[0].reason == "ASR alert"


async def test_bad_client_frames_get_a_failed_ack_or_are_ignored():
    async with serving(speed=20) as (_sim, url), await subscribe(url) as ws:
        await ws.send("not json")
        await ws.send(json.dumps({"type": "control", "id": "k2", "action": "explode"}))
        await ws.send(json.dumps({"type": "control", "id": "k3", "action": "disable",
                                  "kind": "carrier", "account": "nobody"}))
        items = await read_until(ws, lambda got: len(
            [i for i in got if isinstance(i, ControlAck)]) == 2)
        acks = {i.id: i for i in items if isinstance(i, ControlAck)}
        assert not acks["k2"].ok and acks["k2"].error.startswith("bad message")
        assert not acks["k3"].ok and "nobody" in acks["k3"].error
        assert events_of(await read_until(ws, has_seq(50)))  # the stream goes on


async def test_injected_events_and_raw_frames_reach_subscribers():
    async with serving(speed=0, limit=100) as (sim, url), await subscribe(url) as ws:
        await read_until(ws, has_seq(100))
        sim.inject_raw("{broken")
        [injected] = sim.inject_events([{"type": "call.end", "ts": T0, "call_id": "ghost",
                                         "code": 200, "duration": 1}])
        assert injected["seq"] == 101
        raw = await ws.recv()
        while raw.startswith('{"type":"heartbeat"'):
            raw = await ws.recv()
        assert raw == "{broken"
        assert [e.seq for e in events_of(await read_until(ws, has_seq(101)))] == [101]


async def test_dropped_connections_close_without_a_handshake_and_can_resume():
    async with serving(speed=20) as (sim, url):
        ws = await subscribe(url)
        await read_until(ws, has_seq(50))
        sim.drop_connections()
        with pytest.raises(ConnectionClosedError):
            await read_until(ws, lambda _: False)
        async with await subscribe(url, since=50) as again:
            assert events_of(await read_until(again, has_seq(51)))[0].seq == 51


async def test_pause_stops_generation_and_record_writes_every_event(tmp_path):
    record = tmp_path / "sent.jsonl"
    async with serving(speed=20, record=record) as (sim, url), await subscribe(url) as ws:
        await read_until(ws, has_seq(100))
        sim.pause()
        head = sim.head
        await asyncio.sleep(0.2)
        assert sim.head == head
        sim.resume()
        await read_until(ws, has_seq(head + 1))
    lines = record.read_bytes().splitlines()
    assert [json.loads(line) for line in lines] == json.loads(encode(sim.history))
