"""A real switch for the tests: Kamailio from Debian with noc's shipped configuration on loopback
high ports, `noc bridge kamailio` and `noc ingest` as subprocesses, and SIP agents (tests.sipkit)
as its customers and carriers.

Tests that need Kamailio skip, saying how to install it, where it is not installed (CI installs
it). Everything started here is stopped at the end of the test, Kamailio by its process group;
a Kamailio whose test session was killed first (it runs in a session of its own and outlives
it) is stopped by the next one that starts a Kamailio, known by the mark it left in `RUNNING`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from console.bridge.kamailio import config_text
from console.bridge.settings import parse
from tests.feedkit import NocProcess, Processes, feed_state, free_port, wait_until
from tests.sipkit import CallRecord, SipAgent

KAMAILIO = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")
INSTALL = ("apt-get install -y --no-install-recommends kamailio kamailio-extra-modules "
           "kamailio-json-modules kamailio-utils-modules")
needs_kamailio = pytest.mark.skipif(
    KAMAILIO is None, reason=f"Kamailio is not installed here ({INSTALL}); CI installs it")

# What callers see of a refusal by the switch (the reason phrases of kamailio.cfg), as the
# protocol's reject reasons.
# How Kamailio and the bridge say that a port was taken between its pick and their start (by
# another test on this shared machine): they are then started again on fresh ports.
PORT_TAKEN = "already in use"
PORT_TRIES = 5

# One mark per Kamailio a test session runs, named by its pid (its process group): the session's
# pid and the config file Kamailio was started with.
RUNNING = Path(tempfile.gettempdir()) / "noc-kamailio"

REJECTS = {"Forbidden": "disabled", "CPS limit": "cps_limit", "Channel limit": "channel_limit",
           "No Route": "no_route", "No Carrier Available": "no_route"}


def free_udp_port() -> int:
    """A loopback port free for both UDP and TCP (the kernel's pick, released at once)."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


class Kamailio:
    """Kamailio in the foreground (-DD) with a config file, in its own process group."""

    def __init__(self, config: Path, log: Path, marks: Path = RUNNING) -> None:
        self.config = config
        self.log = log
        self.marks = marks
        self.process: subprocess.Popen | None = None
        self.log_start = 0  # where the current run's log begins

    @property
    def mark(self) -> Path | None:
        return None if self.process is None else self.marks / f"{self.process.pid}.json"

    def start(self) -> None:
        stop_orphans(self.marks)
        self.log_start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [KAMAILIO, "-f", str(self.config), "-DD", "-E", "-m", "64", "-M", "8",
                 "-P", str(self.config.with_suffix(".pid"))],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.marks.mkdir(exist_ok=True)
        self.mark.write_text(json.dumps({"owner": os.getpid(), "config": str(self.config)}))

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        with contextlib.suppress(ProcessLookupError):  # any child left behind
            os.killpg(self.process.pid, signal.SIGKILL)
        self.mark.unlink(missing_ok=True)
        self.process = None

    def log_tail(self) -> str:
        return self.run_log()[-3000:]

    def run_log(self) -> str:
        """What the current run has logged."""
        if not self.log.exists():
            return ""
        with self.log.open("rb") as log:
            log.seek(self.log_start)
            return log.read().decode(errors="replace")


def stop_orphans(marks: Path = RUNNING) -> list[int]:
    """Kill the Kamailios of test sessions that died without stopping theirs (a SIGKILL of
    pytest), by process group; return their pids. Those of live sessions are left alone, and
    so is a process whose command line does not name its mark's config (a pid taken since by
    someone else's program, another user's Kamailio)."""
    stopped = []
    for mark in marks.glob("*.json") if marks.is_dir() else ():
        try:
            group, facts = int(mark.stem), json.loads(mark.read_text())
            owner, config = int(facts["owner"]), str(facts["config"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a mark of ours, or being written
        if _alive(owner):
            continue
        if any(config in _command_line(pid) for pid in _group_members(group)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            stopped.append(group)
        mark.unlink(missing_ok=True)
    return stopped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _group_members(group: int) -> list[int]:
    """The processes of a process group (Kamailio's forks keep the group of the first)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == group:
                members.append(int(stat.parent.name))
    return members


def _command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def rpc(address: str, method: str, *params) -> object:
    """One JSON-RPC call to Kamailio (the test's own look, not the bridge's)."""
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1})
    request = urllib.request.Request(f"http://{address}/RPC", body.encode())
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read()).get("result")


@dataclass
class Switch:
    """One switch and what watches it, on loopback: Kamailio, the bridge, noc ingest.

    `config` is the bridge's TOML (accounts, routes) without [kamailio], [feed] and [buffer],
    which the switch fills in with free ports and files under `folder`.
    """

    folder: Path
    processes: Processes
    config: str
    token: str = "kamailio-test-token"
    sip_port: int = field(default_factory=free_udp_port)
    rpc_port: int = field(default_factory=free_port)
    evapi_port: int = field(default_factory=free_port)
    feed_port: int = field(default_factory=free_port)
    bridge: NocProcess | None = None
    ingest: NocProcess | None = None

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.bridge_config = self.folder / "bridge.toml"
        self.db = self.folder / "noc.db"
        self.kamailio = Kamailio(self.folder / "kamailio.cfg", self.folder / "kamailio.log")
        self.write_configs()

    def write_configs(self) -> None:
        self.bridge_config.write_text(self.full_config())
        self.kamailio.config.write_text(config_text(parse(self.full_config())))

    def full_config(self) -> str:
        return (f'[kamailio]\nsip = "127.0.0.1:{self.sip_port}"\n'
                f'rpc = "127.0.0.1:{self.rpc_port}"\nevapi = "127.0.0.1:{self.evapi_port}"\n'
                "reply_timeout = 0.5\nchildren = 2\n"
                f'[feed]\nlisten = "127.0.0.1:{self.feed_port}"\ntoken = "{self.token}"\n'
                f'[buffer]\npath = "{self.folder / "bridge.db"}"\n' + self.config)

    @property
    def proxy(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    @property
    def rpc_address(self) -> str:
        return f"127.0.0.1:{self.rpc_port}"

    @property
    def feed_url(self) -> str:
        return f"ws://127.0.0.1:{self.feed_port}/feed"

    # Starting and stopping each part ----------------------------------------------------------

    async def start_kamailio(self) -> None:
        """Kamailio, once it answers JSON-RPC; on fresh ports if one was taken meanwhile
        (only at first: once the bridge follows it, a restart keeps its ports)."""
        for _ in range(PORT_TRIES):
            self.kamailio.start()

            def answering() -> bool:
                if not self.kamailio.running():
                    if PORT_TAKEN in self.kamailio.run_log():
                        return True
                    raise AssertionError(f"Kamailio exited:\n{self.kamailio.log_tail()}")
                try:
                    rpc(self.rpc_address, "core.version")
                except (OSError, urllib.error.URLError):
                    return False
                return True

            await wait_until(answering, interval=0.05, what="Kamailio to answer JSON-RPC")
            if self.kamailio.running():
                return
            if self.bridge is not None:
                raise AssertionError(f"Kamailio found a port taken:\n{self.kamailio.log_tail()}")
            self.kamailio.stop()
            self.sip_port, self.rpc_port = free_udp_port(), free_port()
            self.evapi_port = free_port()
            self.write_configs()
        raise AssertionError(f"Kamailio found its ports taken {PORT_TRIES} times")

    async def start_bridge(self) -> NocProcess:
        """`noc bridge kamailio`, once it has provisioned Kamailio (if Kamailio runs); on a
        fresh feed port if its was taken meanwhile (unless noc ingest already follows it)."""
        for _ in range(PORT_TRIES):
            self.bridge = bridge = self.processes.noc("bridge", "kamailio", "--config",
                                                      str(self.bridge_config))
            await wait_until(functools.partial(self._bridge_ready, bridge),
                             what="the bridge to serve and provision Kamailio")
            if bridge.running():
                return bridge
            self.feed_port = free_port()
            self.write_configs()
        raise AssertionError(f"the bridge found its feed port taken {PORT_TRIES} times")

    def _bridge_ready(self, bridge: NocProcess) -> bool:
        """Serving and provisioned; or exited because its port was taken (to start again)."""
        if not bridge.running():
            if PORT_TAKEN in bridge.stderr and self.ingest is None:
                return True
            raise AssertionError(f"the bridge exited: {bridge.stderr}")
        if not self.kamailio.running():
            return "feed: serving" in bridge.stderr
        return "kamailio: provisioned" in bridge.stderr

    async def start_ingest(self) -> NocProcess:
        env = {**self.processes.env, "NOC_FEED_TOKEN": self.token}
        self.ingest = self.processes.noc("ingest", "--feed", self.feed_url, "--db",
                                         str(self.db), env=env)
        ingest = self.ingest

        def connected() -> bool:
            if not ingest.running():
                raise AssertionError(f"noc ingest exited: {ingest.stderr}")
            return feed_state(self.db).get("status") == "connected"

        await wait_until(connected, what="noc ingest to connect to the bridge")
        return ingest

    async def start(self) -> Switch:
        await self.start_kamailio()
        await self.start_bridge()
        await self.start_ingest()
        return self

    def stop(self) -> None:
        self.processes.kill_all()
        self.kamailio.stop()

    # Looking at it ------------------------------------------------------------------------------

    def bridge_stored(self) -> int:
        """How many of Kamailio's events the bridge has stored (the last one's number)."""
        from tests.feedkit import query

        path = self.folder / "bridge.db"
        return query(path, "SELECT k FROM position")[0][0] if path.exists() else 0

    def kamailio_count(self) -> int:
        """How many events Kamailio has sent since it started."""
        return rpc(self.rpc_address, "htable.get", "noc_state", "k")["item"]["value"]

    async def stored(self, predicate) -> None:
        """Wait until noc's report (as `noc ingest` stored it) satisfies `predicate`."""
        from tests.feedkit import read_report

        def check() -> bool:
            if self.ingest is not None and not self.ingest.running():
                raise AssertionError(f"noc ingest exited: {self.ingest.stderr}")
            return self.db.exists() and bool(predicate(read_report(self.db)))

        await wait_until(check, interval=0.1, what="noc to store what the callers saw")


def account_enabled(db: Path, kind: str, account: str) -> bool | None:
    from tests.feedkit import query

    rows = query(db, "SELECT enabled FROM account WHERE kind = ? AND id = ?", (kind, account))
    return bool(rows[0][0]) if rows else None


# What the agents saw, as protocol events ---------------------------------------------------------

def seen_events(callers: dict[str, SipAgent], carriers: dict[str, SipAgent],
                rates: dict[str, tuple[float, dict[str, float]]], increment: int) -> list[dict]:
    """The feed events the calls the agents made and answered stand for, from the agents' own
    records only: callers (by customer id) and carriers (by carrier id); `rates` maps a route's
    prefix to (price, {carrier: cost}) per minute, billed in whole `increment`s."""
    attempts: dict[str, list[tuple[str, CallRecord]]] = {}
    for carrier, agent in carriers.items():
        for record in agent.records:
            attempts.setdefault(record.call_id, []).append((carrier, record))
    events: list[dict] = []
    for customer, agent in callers.items():
        for call in agent.records:
            events += _call_events(customer, call, sorted(attempts.get(call.call_id, []),
                                                          key=lambda a: a[1].start),
                                   rates, increment)
    events.sort(key=lambda e: e["ts"])
    # Every account the switch knows, as the bridge announces them, traffic or not.
    events[:0] = [{"type": "account", "ts": events[0]["ts"] if events else time.time(),
                   "kind": kind, "id": account, "name": account}
                  for kind, accounts in (("customer", callers), ("carrier", carriers))
                  for account in accounts]
    for seq, event in enumerate(events, start=1):
        event["seq"] = seq
    return events


def _call_events(customer: str, call: CallRecord, attempts: list[tuple[str, CallRecord]],
                 rates: dict[str, tuple[float, dict[str, float]]], increment: int) -> list[dict]:
    if call.code is not None and call.reason in REJECTS and not attempts:
        return [{"type": "call.reject", "ts": call.start, "customer": customer, "cli": call.cli,
                 "dst": call.dst, "code": call.code, "reason": REJECTS[call.reason]}]
    route = max((p for p in rates if call.dst.startswith(p)), key=len)
    events = [{"type": "call.start", "ts": call.start, "call_id": call.call_id,
               "customer": customer, "cli": call.cli, "dst": call.dst}]
    answered = None
    for number, (carrier, leg) in enumerate(attempts, start=1):
        base = {"call_id": call.call_id, "attempt": number}
        events.append({"type": "call.attempt", "ts": leg.start, **base, "carrier": carrier,
                       "route": route})
        if leg.progress is not None:
            events.append({"type": "call.progress", "ts": leg.progress, **base,
                           "code": leg.progress_code})
        if leg.answered is not None:
            answered = (carrier, base)
            events.append({"type": "call.answer", "ts": leg.answered, **base})
            continue
        # A carrier that never answered timed out (408), however it took the switch's CANCEL.
        silent = leg.code is None or (leg.cancelled and not call.cancelled)
        events.append({"type": "call.attempt_end", "ts": leg.ended or call.ended, **base,
                       "code": 408 if silent else leg.code})
    for digit in call.dtmf:
        events.append({"type": "call.dtmf", "ts": call.answered, "call_id": call.call_id,
                       "digit": digit})
    duration = call.duration
    billed = math.ceil(duration / increment) * increment if answered else 0
    if answered:
        events.append({"type": "call.attempt_end", "ts": call.ended, **answered[1],
                       "code": 200})
    price, costs = rates[route]
    events.append({"type": "call.end", "ts": call.ended, "call_id": call.call_id,
                   "code": call.code, "duration": duration, "billed": billed,
                   "charge": round(price * billed / 60, 6),
                   "cost": round(costs.get(answered[0], 0) * billed / 60, 6) if answered else 0})
    return events


def assert_report_matches(report: dict, expected: dict, *, tolerance_s: float = 1.0) -> None:
    """Counts, codes, money and the rest exactly; times (ACD, minutes, PDD) within `tolerance_s`
    a call: each process stamps a message when it gets to it, and on a busy machine Kamailio,
    a caller and a carrier may get to one that long apart (the bridge's arithmetic on
    Kamailio's own stamps is exact, and tests/test_bridge.py checks it so)."""
    timed = {"acd": tolerance_s, "pdd_ms": tolerance_s * 1000}
    for side in ("customers", "carriers"):
        assert set(report[side]) == set(expected[side]), side
        for account, want in expected[side].items():
            got = report[side][account]
            for name, value in want.items():
                where = f"{side} {account} {name}: report {got[name]!r}, callers saw {value!r}"
                if name in timed and value is not None:
                    assert got[name] is not None and abs(got[name] - value) <= timed[name], where
                elif name == "minutes":
                    calls = max(1, want["answered"])
                    assert abs(got[name] - value) <= calls * tolerance_s / 60, where
                else:
                    assert got[name] == value, where


def calls_stored(report: dict, count: int) -> bool:
    """The report holds `count` ended calls and rejects in all."""
    return sum(c["attempts"] + sum(c["breaches"].values())
               for c in report["customers"].values()) >= count


def records(agents: Iterable[SipAgent]) -> list[CallRecord]:
    return [record for agent in agents for record in agent.records]


def now_ms() -> int:
    return round(time.time() * 1000)
