"""Helpers of the alerting tests: a network whose calls go through the real ingest path into a
real store (Ingestor -> StoreWriter, as the writer does), an engine on a clock the test moves,
and real servers on loopback (SMTP by aiosmtpd, HTTP by the standard library)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller

from console.alerting.engine import AlertEngine
from console.alerting.rules import save_rule
from console.alerting.settings import AlertSettings, EmailSettings
from console.feed.ingestor import Ingestor
from console.feed.service import IngestService
from store.alerting import Rule
from store.database import connect, prepare
from store.writer import StoreWriter
from tests.feedkit import free_port

T0_MS = 1_763_700_000_000  # a whole hour, UTC
MINUTE_MS = 60_000


class Network:
    """Customers' calls as feed events, applied and committed like the writer does."""

    def __init__(self, path: Path) -> None:
        prepare(path)
        self.path = path
        self.now_ms = T0_MS
        self.ingestor = Ingestor(clock=lambda: self.now_ms)
        self.writer = StoreWriter(path)
        self.writer.open_now()
        self.seq = 0
        self.calls = 0

    def close(self) -> None:
        self.writer.close_now()

    def _event(self, type_: str, ts_ms: int, **fields) -> dict:
        self.seq += 1
        return {"seq": self.seq, "type": type_, "ts": ts_ms / 1000, **fields}

    def account(self, kind: str, account: str, **fields) -> None:
        self.apply([self._event("account", self.now_ms, kind=kind, id=account,
                                name=fields.pop("name", account.title()), **fields)])

    def traffic(self, customer: str, *, answered: int, failed: int, end_ms: int,
                carrier: str = "carrier-a", failure_code: int = 503) -> None:
        """`answered + failed` calls of `customer` ending at `end_ms` (started 10 s before)."""
        events = []
        for index in range(answered + failed):
            self.calls += 1
            call_id, start = f"call-{self.calls}", end_ms - 10_000
            code = 200 if index < answered else failure_code
            events += [
                self._event("call.start", start, call_id=call_id, customer=customer, cli="1",
                            dst="441"),
                self._event("call.attempt", start, call_id=call_id, attempt=1, carrier=carrier,
                            route="44"),
                self._event("call.progress", start + 2_000, call_id=call_id, attempt=1,
                            code=180),
            ]
            if code == 200:
                events.append(self._event("call.answer", start + 3_000, call_id=call_id,
                                          attempt=1))
            events += [
                self._event("call.attempt_end", end_ms, call_id=call_id, attempt=1, code=code),
                self._event("call.end", end_ms, call_id=call_id, code=code,
                            duration=7.0 if code == 200 else 0.0),
            ]
        self.apply(events)

    def apply(self, events: list[dict]) -> None:
        self.ingestor.apply_frame(json.dumps(events))
        self.writer.write_now(self.ingestor.take_batch())


def query_all(path: Path, sql: str) -> list[tuple]:
    with contextlib.closing(connect(path)) as db:
        return db.execute(sql).fetchall()


def settings(**overrides) -> AlertSettings:
    email = overrides.pop("email", EmailSettings(host="127.0.0.1", port=1, timeout=60))
    return AlertSettings(email=email, retry_initial=10, retry_max=600, **overrides)


def rule(path: Path, **fields) -> Rule:
    """Save a rule (defaults: the seeds' Low ASR Warning for customer acme)."""
    defaults = dict(title="Low ASR Warning", kind="customer", company="acme",
                    recipients=["noc@example.com"], area="asr", operator="<=", threshold=30,
                    reset_threshold=31, sample_period=60)
    return save_rule(path, defaults | fields, now_ms=T0_MS)


def engine(path: Path, clock: list[int] | None = None, **setting_overrides) -> AlertEngine:
    """An engine whose clock is `clock[0]` (a list the test moves)."""
    clock = clock if clock is not None else [T0_MS]
    return AlertEngine(path, settings(**setting_overrides), clock=lambda: clock[0])


# Servers on loopback ----------------------------------------------------------------------------

class Mailbox:
    """aiosmtpd handler keeping every message received; it answers the first `refusals` RCPT
    commands with the reply given (greylisting: "450 ...")."""

    def __init__(self, refusals: int = 0, reply: str = "") -> None:
        self.messages: list[Message] = []
        self.refusals = refusals
        self.reply = reply

    async def handle_RCPT(self, server, session, envelope, address,  # noqa: N802 - aiosmtpd's
                          rcpt_options) -> str:
        if self.refusals:
            self.refusals -= 1
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 OK"


@dataclass
class SmtpServer:
    mailbox: Mailbox
    controller: Controller

    def email_settings(self) -> EmailSettings:
        return EmailSettings(host="127.0.0.1", port=self.controller.port, timeout=60)


@contextlib.contextmanager
def smtp_server(port: int | None = None, *, refusals: int = 0,
                reply: str = "") -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 (on a free port unless told which), refusing the first
    `refusals` recipients with `reply`."""
    mailbox = Mailbox(refusals, reply)
    # aiosmtpd's controller checks it is up by connecting to its port: 0 will not do.
    controller = Controller(mailbox, hostname="127.0.0.1", port=port or free_port(),
                            ready_timeout=60)
    controller.start()
    try:
        yield SmtpServer(mailbox, controller)
    finally:
        controller.stop()


@dataclass
class WebhookServer:
    url: str
    received: list[dict] = field(default_factory=list)


@contextlib.contextmanager
def webhook_server() -> Iterator[WebhookServer]:
    """A real HTTP server on 127.0.0.1 that stores every JSON body POSTed to it."""
    hook = WebhookServer("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hook.received.append({"path": self.path, "json": json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/noc"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@contextlib.asynccontextmanager
async def running_writer(db: Path, url: str, alerts: AlertEngine) -> AsyncIterator[IngestService]:
    """The writer (IngestService) with its alert engine, ingesting `url` until the block ends."""
    service = IngestService(db, url, token=None, engine=alerts)
    await service.open()
    task = asyncio.create_task(service.run(), name="writer with alerts")
    try:
        yield service
    finally:
        service.stop()
        await task


async def delivered(engine_: AlertEngine, predicate) -> None:
    """Run deliveries until `predicate()` holds (no deadline: the test's timeout is the bound)."""
    while not predicate():
        await engine_.deliver_due()
        await asyncio.sleep(0.02)
