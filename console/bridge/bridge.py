"""`noc bridge kamailio`: Kamailio's events in, feed protocol v1 out, noc's controls back.

It follows Kamailio's evapi socket (reconnecting as long as it runs), provisions Kamailio's
htables from its settings on every connection, turns each event into protocol events
(console.bridge.translate), stores them in its durable buffer, and serves the buffer with the
feed server noc's simulator uses (resume, gaps, heartbeats, token). Kamailio numbers its events
since it started; whatever numbers the bridge did not receive (it or its connection was down)
become a `gap` of exactly that many seqs.

Controls: `disable` / `enable` (with `until`) set or clear the account's "disabled until" entry
in Kamailio (which its config checks on every call), `hangup` ends the call with dlg.end_dlg.
The ack says ok only once Kamailio has done it; an unreachable Kamailio gets ok: false and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import ssl
import time
from collections.abc import Iterator

import msgspec

from console.bridge.buffer import Batch, BufferError, EventBuffer
from console.bridge.kamailio import (
    KamailioError,
    KamailioRpc,
    desired_tables,
    disabled_until,
)
from console.bridge.settings import BridgeSettings, Carrier, Customer, host_port
from console.bridge.translate import OpenCall, Translator, decode
from console.feed import protocol as p
from console.feed.server import FeedServer

log = logging.getLogger(__name__)

RECONNECT_FIRST_S = 0.2
RECONNECT_MAX_S = 5.0  # short: events Kamailio sends while nobody listens are lost
SETTLE_S = 1.0  # after connecting, how long events already sent may take to arrive
PROVISION_RETRY_S = 2.0
PRUNE_EVERY_S = 3600.0
MAX_NETSTRING = 1 << 20

_call_encoder = msgspec.json.Encoder()
_call_decoder = msgspec.json.Decoder(OpenCall)


class BridgeError(Exception):
    """The bridge cannot start or go on; str() says why."""


def netstrings(data: bytearray) -> Iterator[bytes]:
    """Take the complete netstrings (`LEN:DATA,`) off the front of `data`, in order.

    Kamailio's evapi writes without waiting, so a slow reader may see one cut short: whatever
    does not parse is skipped up to the next thing that looks like a netstring of an event
    (its loss shows in Kamailio's numbering)."""
    while data:
        while data[:1].isspace():
            del data[:1]
        colon = data.find(b":", 0, 12)
        if colon <= 0:
            if len(data) < 12 and data.isdigit():
                return  # a length still arriving
            _resync(data, 1)
            continue
        if not data[:colon].isdigit() or int(data[:colon]) > MAX_NETSTRING:
            _resync(data, 1)
            continue
        size = int(data[:colon])
        end = colon + 1 + size
        if len(data) <= end:
            return  # the rest is still arriving
        if data[end:end + 1] != b",":
            _resync(data, colon + 1)
            continue
        message = bytes(data[colon + 1:end])
        del data[:end + 1]
        yield message


def _resync(data: bytearray, start: int) -> None:
    """Drop bytes up to the next `DIGITS:{` at or after `start` (or all but a short tail)."""
    index = start
    while True:
        brace = data.find(b":{", index)
        if brace < 0:
            del data[:max(start, len(data) - 12)]
            return
        digits = brace
        while digits > start and data[digits - 1:digits].isdigit():
            digits -= 1
        if digits < brace:
            del data[:digits]
            return
        index = brace + 1


def _backoff() -> Iterator[float]:
    delay = RECONNECT_FIRST_S
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(delay * 2, RECONNECT_MAX_S)


class KamailioBridge:
    """The bridge: `start()`, then it runs on its own tasks until `stop()`; `failed` is set (with
    the reason) if it cannot go on (its buffer cannot be written)."""

    def __init__(self, settings: BridgeSettings) -> None:
        self.settings = settings
        self.buffer = EventBuffer(settings.buffer_path, settings.buffer.keep_days)
        self.rpc = KamailioRpc(settings.kamailio.rpc)
        self.server = FeedServer(self.buffer, on_control=self._on_control,
                                 token=settings.feed.token, on_subscribe=self._on_subscribe,
                                 name="feed")
        self.translator = Translator(settings)
        self.failed: asyncio.Future[str] | None = None
        self.connected = asyncio.Event()  # to Kamailio's evapi
        self.provisioned = asyncio.Event()  # since the current connection
        self.boot: int | None = None  # which Kamailio start `k` counts from
        self.k = 0  # the last Kamailio event used
        self.lost = 0  # Kamailio events missed, in all
        self._seq = 0  # the last seq given out (committed or not)
        self._penalties: dict[tuple[str, str], tuple[float | None, str]] = {}
        self._accounts_sent: dict[tuple[str, str], bytes] = {}
        self._pending = Batch()
        self._commit_wanted = asyncio.Event()
        self._committed = asyncio.Event()
        self._committing = False  # a batch is being written, on a thread of its own
        self._penalties_changed = asyncio.Event()
        self._missed = asyncio.Event()  # Kamailio events were lost since the last look
        self._tasks: list[asyncio.Task] = []
        self._evapi_writer: asyncio.StreamWriter | None = None

    # Life --------------------------------------------------------------------------------------

    async def start(self) -> int:
        """Open the buffer, listen for noc and follow Kamailio; return the feed's port."""
        self.failed = asyncio.get_running_loop().create_future()
        try:
            saved = self.buffer.open()
        except BufferError as error:
            raise BridgeError(str(error)) from None
        self.boot, self.k, self._seq = saved.boot, saved.k, self.buffer.head
        self.translator.calls = {call_id: _call_decoder.decode(state)
                                 for call_id, state in saved.calls.items()}
        self._penalties = saved.penalties
        self._accounts_sent = saved.accounts
        host, port = host_port(self.settings.feed.listen)
        try:
            tls = self._tls()
            bound = await self.server.start(host, port, tls)
        except BridgeError:
            self.buffer.close()
            raise
        except OSError as error:
            self.buffer.close()
            raise BridgeError(f"cannot listen for noc on {self.settings.feed.listen}: "
                              f"{error.strerror or error}") from None
        self._publish_accounts()
        self._tasks = [asyncio.create_task(coroutine, name=name) for name, coroutine in (
            ("bridge commits", self._commit_forever()),
            ("bridge evapi", self._follow_kamailio()),
            ("bridge penalties", self._lift_penalties()),
            ("bridge missed ends", self._end_calls_ended_meanwhile()),
            ("bridge pruning", self._prune_forever()),
        )]
        log.info("feed: serving %s://%s:%d/feed (buffer %s, seq %d)", "wss" if tls else "ws",
                 host, bound, self.buffer.path, self._seq)
        return bound

    def _tls(self) -> ssl.SSLContext | None:
        """The server side of wss://, if [feed] names a certificate and key."""
        feed = self.settings.feed
        if not feed.cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(feed.cert, feed.key)
        except (OSError, ssl.SSLError) as error:
            raise BridgeError(f"cannot use feed.cert {feed.cert!r} and feed.key {feed.key!r}: "
                              f"{error}") from None
        return context

    async def stop(self) -> None:
        """Stop following Kamailio, store everything pending, close the feed and the buffer."""
        committer, *others = self._tasks
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        if self._evapi_writer is not None:
            self._evapi_writer.close()
        if not committer.done():
            await self._flush()
        committer.cancel()
        await asyncio.gather(committer, return_exceptions=True)
        await self.server.stop()
        self.buffer.close()
        log.info("feed: stopped at seq %d", self.buffer.head)

    # Publishing -------------------------------------------------------------------------------

    def _publish(self, events: list[dict]) -> None:
        for event in events:
            encoded = p.encode({"seq": self._seq + 1, **event})
            decoded = p.decode_frame(encoded)[0]  # as noc will: never send what it refuses
            if isinstance(decoded, p.Rejected):
                log.warning("not sending a bad event (%s): %.300r", decoded.reason, encoded)
                continue
            self._seq += 1
            self._pending.events.append((self._seq, time.time(), None, encoded))
        self._commit_wanted.set()

    def _record_loss(self, count: int, why: str) -> None:
        """`count` Kamailio events will never come: a run of as many seqs, sent as a gap."""
        first, last = self._seq + 1, self._seq + count
        self._pending.events.append((first, time.time(), last, None))
        self._seq = last
        self.lost += count
        self._commit_wanted.set()
        self._missed.set()
        log.warning("feed: gap %d..%d: %d Kamailio events %s", first, last, count, why)

    async def _commit_forever(self) -> None:
        while True:
            await self._commit_wanted.wait()
            self._commit_wanted.clear()
            batch, self._pending = self._pending, Batch()
            if batch:
                self._committing = True
                try:
                    await self.buffer.commit(batch)
                except BufferError as error:
                    log.error("buffer: %s: the bridge stops (what Kamailio sends from now on is "
                              "lost until it runs again)", error)
                    if not self.failed.done():
                        self.failed.set_result(str(error))
                    return
                finally:
                    self._committing = False
                self.server.published()
            self._committed.set()

    async def _flush(self) -> None:
        """Wait until everything published so far is committed, and no commit is under way: its
        thread goes on if the committer is cancelled, and the buffer closed under it crashed the
        process (a segmentation fault in SQLite)."""
        while self._pending or self._commit_wanted.is_set() or self._committing:
            self._committed.clear()
            self._commit_wanted.set()
            await self._committed.wait()

    def _store_calls(self) -> None:
        for call_id, call in self.translator.take_changes().items():
            self._pending.calls[call_id] = None if call is None else _call_encoder.encode(call)

    # Kamailio's events ----------------------------------------------------------------------

    async def _follow_kamailio(self) -> None:
        address = self.settings.kamailio.evapi
        host, port = host_port(address)
        delays = _backoff()
        complained = False
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError as error:
                if not complained:
                    log.warning("evapi: cannot connect to Kamailio at %s (%s): retrying",
                                address, error.strerror or error)
                    complained = True
                await asyncio.sleep(next(delays))
                continue
            # Held on purpose: a StreamWriter that is garbage-collected closes its socket.
            self._evapi_writer = writer
            delays, complained = _backoff(), False
            log.info("evapi: connected to Kamailio at %s", address)
            self.connected.set()
            setup = asyncio.create_task(self._set_up_kamailio(), name="bridge provisioning")
            try:
                await self._read(reader)
            except OSError as error:
                log.warning("evapi: the connection failed: %s", error)
            finally:
                self.connected.clear()
                self.provisioned.clear()
                setup.cancel()
                await asyncio.gather(setup, return_exceptions=True)
                writer.close()
                self._evapi_writer = None
            log.warning("evapi: the connection closed: reconnecting (what Kamailio sends "
                        "meanwhile is counted and announced as a gap)")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        data = bytearray()
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            data += chunk
            for message in netstrings(data):
                self._on_kamailio_event(message)

    def _on_kamailio_event(self, message: bytes) -> None:
        try:
            event = decode(message)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            log.warning("evapi: ignoring what Kamailio sent (%s): %.200r", error, message)
            return
        if not self._count(event.boot, event.k):
            return
        self._publish(self.translator.translate(event))
        self._store_calls()

    def _count(self, boot: int, k: int) -> bool:
        """Take Kamailio event number `k` of start `boot`, after recording as lost what it
        skips; False for one already used or counted lost."""
        if boot == self.boot and k <= self.k:
            log.warning("evapi: Kamailio event %d came after being counted (lost or used): "
                        "ignored", k)
            return False
        self._skip_to(boot, k - 1)
        self.k = k
        self._pending.position = (self.boot, self.k)
        return True

    def _skip_to(self, boot: int, last: int) -> None:
        """Kamailio (started at `boot`) has sent events up to `last`: those not received are
        lost."""
        if self.boot is None:
            log.info("evapi: first contact with Kamailio (started %s, %d events sent): the feed "
                     "starts here", _when(boot), last)
        elif boot != self.boot:
            log.warning("evapi: Kamailio restarted at %s; any events its previous run sent after "
                        "the bridge last heard from it are unknown", _when(boot))
            if last > 0:
                self._record_loss(last, "were sent by the restarted Kamailio before the bridge "
                                  "connected")
        elif last > self.k:
            self._record_loss(last - self.k, "were sent while the bridge was not connected")
        if boot != self.boot or last > self.k:
            self.boot, self.k = boot, last
        self._pending.position = (self.boot, self.k)
        self._commit_wanted.set()

    async def _set_up_kamailio(self) -> None:
        """Provision Kamailio (until it takes it); then, once events already sent have had time
        to arrive, count as lost any that Kamailio numbered but the bridge never got."""
        while True:
            try:
                tables = desired_tables(self.settings, self._active_penalties())
                changed = await self.rpc.provision(tables)
                break
            except KamailioError as error:
                log.warning("kamailio: cannot provision it: %s; retrying", error)
                await asyncio.sleep(PROVISION_RETRY_S)
        self.provisioned.set()
        log.info("kamailio: provisioned %d customers, %d carriers, %d routes (%d keys changed)",
                 len(self.settings.customer), len(self.settings.carrier),
                 len(self.settings.route), changed)
        try:
            boot, count = await self.rpc.event_count()
        except KamailioError as error:
            log.warning("kamailio: cannot ask how many events it sent: %s", error)
            return
        await asyncio.sleep(SETTLE_S)
        if boot != self.boot or count > self.k:
            self._skip_to(boot, count)

    async def _end_calls_ended_meanwhile(self) -> None:
        """After each loss: a call the bridge holds open whose end was among the events it
        missed. Kamailio keeps how each call ended (ten minutes), so the call ends as it did
        instead of staying a live channel in noc until closed as lost an hour later."""
        while True:
            await self._missed.wait()
            self._missed.clear()
            await self._end_open_calls_kamailio_ended()

    async def _end_open_calls_kamailio_ended(self) -> None:
        for call_id in list(self.translator.calls):
            try:
                ending = await self.rpc.ending_of(call_id)
            except KamailioError as error:
                log.warning("kamailio: cannot ask how the calls open while the bridge was away "
                            "ended: %s", error)
                return
            if ending is None or call_id not in self.translator.calls:
                continue  # still in progress, or its end has just arrived
            try:
                event = decode(ending.encode())
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                log.warning("kamailio: ignoring the end it kept of call %s (%s)", call_id, error)
                continue
            if event.boot != self.boot or event.k > self.k:
                continue  # not missed: it is on its way
            log.info("evapi: call %s ended while the bridge was away (Kamailio event %d): ended "
                     "as Kamailio recorded it", call_id, event.k)
            self._publish(self.translator.translate(event))
            self._store_calls()

    # noc's controls ---------------------------------------------------------------------------

    async def _on_control(self, control: p.Control) -> str | None:
        if control.action == "hangup":
            return await self._hang_up(control)
        if control.kind is None or control.account is None:
            return f"{control.action} needs kind and account"
        account = self._account(control.kind, control.account)
        if account is None:
            return f"no {control.kind} {control.account!r} in the bridge's config file"
        key = (control.kind, control.account)
        if control.action == "enable" and not account.enabled:
            return (f"{control.kind} {control.account} is disabled in the bridge's config file "
                    "(enabled = false): enable it there")
        penalty = (control.until, control.reason) if control.action == "disable" else None
        before = self._penalties.pop(key, None)
        if penalty is not None:
            self._penalties[key] = penalty
        try:
            await self._apply(account, control.kind)
        except KamailioError as error:
            self._penalties.pop(key, None)
            if before is not None:
                self._penalties[key] = before
            return str(error)
        self._pending.penalties[key] = penalty
        self._penalties_changed.set()
        log.info("control: %s %s %s%s (%s)", control.action, control.kind, control.account,
                 f" until {_when(control.until)}" if control.until else "",
                 control.reason or "no reason given")
        self._publish_accounts()
        return None

    async def _hang_up(self, control: p.Control) -> str | None:
        if not control.call_id:
            return "hangup needs a call_id"
        call_id = self.translator.call_by_feed_id(control.call_id) or control.call_id
        try:
            refused = await self.rpc.end_call(call_id)
        except KamailioError as error:
            return str(error)
        log.info("control: hangup of call %s: %s", control.call_id, refused or "done")
        return refused

    async def _apply(self, account: Customer | Carrier, kind: str) -> None:
        """Set in Kamailio until when the account is disabled: for good if its config says
        `enabled = false`, else until its penalty ends (0: enabled)."""
        until = self._active_penalties().get((kind, account.id), 0)
        await self.rpc.set_disabled(kind, account.id, disabled_until(account.enabled, until))

    def _account(self, kind: str, account: str) -> Customer | Carrier | None:
        if kind == "customer":
            return self.settings.customer_by_id(account)
        return self.settings.carrier_by_id(account)

    def _active_penalties(self) -> dict[tuple[str, str], float | None]:
        now = time.time()
        return {key: until for key, (until, _) in self._penalties.items()
                if until is None or until > now}

    async def _lift_penalties(self) -> None:
        """At a penalty's end (when Kamailio's second-by-second check lifts it), say so."""
        while True:
            now = time.time()
            ends = [math.ceil(until) for until, _ in self._penalties.values() if until]
            due = [key for key, (until, _) in self._penalties.items()
                   if until is not None and math.ceil(until) <= now]
            for key in due:
                del self._penalties[key]
                self._pending.penalties[key] = None
                log.info("control: the penalty on %s %s ended", *key)
                account = self._account(*key)
                if account is not None:  # tidy: Kamailio has lifted it by itself already
                    with contextlib.suppress(KamailioError):
                        await self._apply(account, key[0])
            if due:
                self._publish_accounts()
                continue
            self._penalties_changed.clear()
            timeout = min(ends) - now if ends else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._penalties_changed.wait()

    # Accounts -----------------------------------------------------------------------------------

    def _account_state(self, kind: str, account: Customer | Carrier) -> dict:
        active = self._active_penalties()
        state: dict = {"kind": kind, "id": account.id, "name": account.name or account.id}
        if isinstance(account, Customer):
            if account.channels is not None:
                state["channels"] = account.channels
            if account.cps is not None:
                state["cps"] = account.cps
            state["currency"] = self.settings.billing.currency
        state["enabled"] = account.enabled and (kind, account.id) not in active
        return state

    def _publish_accounts(self) -> None:
        """An `account` event for each account whose state differs from the last one sent."""
        now = round(time.time(), 3)
        for kind, accounts in (("customer", self.settings.customer),
                               ("carrier", self.settings.carrier)):
            for account in accounts:
                state = self._account_state(kind, account)
                encoded = p.encode(state)
                if self._accounts_sent.get((kind, account.id)) != encoded:
                    self._accounts_sent[(kind, account.id)] = encoded
                    self._pending.accounts[(kind, account.id)] = encoded
                    self._publish([{"type": "account", "ts": now, **state}])

    # Subscribers and housekeeping ---------------------------------------------------------------

    def _on_subscribe(self, since: int) -> None:
        if since > self._seq:
            self._record_loss(since - self._seq, f"are unknown: a client has stored up to seq "
                              f"{since} but this buffer ended at {self._seq} (was it reset?)")

    async def _prune_forever(self) -> None:
        while True:
            try:
                removed = await self.buffer.prune()
            except BufferError as error:
                log.warning("buffer: %s", error)
            else:
                if removed:
                    log.info("buffer: forgot %d events older than %g days", removed,
                             self.settings.buffer.keep_days)
            await asyncio.sleep(PRUNE_EVERY_S)


def _when(seconds: float | None) -> str:
    if not seconds:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))
