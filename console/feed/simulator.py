"""The built-in simulator: a feed protocol v1 websocket server around the traffic model.

Generated events are encoded once and kept, by seq, in a resume buffer; each subscriber has a
cursor into it and one sender task that sends what lies past its cursor as array frames, awaiting
every send, so a slow client is held back by its own socket and never queued for in memory. A
subscriber whose cursor falls behind the buffer is told so with a `gap`.

Simulated time runs at `speed` times wall time from `start`; with `speed=0` it runs as fast as the
slowest subscriber reads (benchmarks). The test hooks (`drop_connections`, `inject_raw`,
`inject_events`, `forget`, `pause`, `resume`) let feed tests provoke every failure the protocol
describes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import ssl
import time
from collections import deque
from collections.abc import Iterable
from http import HTTPStatus
from pathlib import Path
from typing import IO

import msgspec
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from console.feed.protocol import Control, Subscribe, decode_client_frame, encode
from console.feed.traffic import Traffic

log = logging.getLogger(__name__)

TICK_S = 0.05
TICK_EVENTS = 20_000  # at most per tick, so a speed the model cannot keep up with never stalls I/O
FRAME_EVENTS = 500  # events per array frame, and per chunk generated on demand (speed 0)
FRAME_BYTES = 512 * 1024  # well under the console's 1 MiB frame limit
WRITE_LIMIT = 256 * 1024  # bytes a connection may buffer before a send waits for the client


class ResumeBuffer:
    """The newest `capacity` encoded events, contiguous by seq; a slice costs its own length.

    A plain list with a moving start (compacted now and then) rather than a deque, because a
    subscriber resuming in the middle needs an O(1) index, not a walk from one end.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: list[bytes] = []
        self._base = 1  # seq of self._items[0]
        self._start = 0  # index of the oldest event kept

    @property
    def head(self) -> int:
        return self._base + len(self._items) - 1

    @property
    def oldest(self) -> int:
        """The oldest seq kept (head + 1 when empty)."""
        return self._base + self._start

    def extend(self, first_seq: int, encoded: list[bytes]) -> None:
        if first_seq != self.head + 1:
            raise ValueError(f"seq {first_seq} does not follow {self.head}")
        self._items.extend(encoded)
        self._start = max(self._start, len(self._items) - self.capacity)
        self._compact()

    def forget(self, upto_seq: int) -> None:
        """Drop every event up to `upto_seq`, as if they had aged out."""
        self._start = max(self._start, min(upto_seq, self.head) - self._base + 1)
        self._compact()

    def after(self, seq: int, count: int) -> list[bytes]:
        """Up to `count` events from seq + 1 on (which must be kept)."""
        index = seq + 1 - self._base
        return self._items[index:index + count]

    def _compact(self) -> None:
        if self._start > self.capacity:
            del self._items[:self._start]
            self._base += self._start
            self._start = 0


class _Subscriber:
    """One connection: its cursor (None until it subscribes) and frames waiting to go out."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.cursor: int | None = None
        self.outbox: deque[bytes] = deque()  # acks and injected raw frames, sent before events
        self.wake = asyncio.Event()


class Simulator:
    """A feed protocol v1 server with simulated wholesale traffic.

    Args:
        seed, cps, scenario: the traffic model's (see `console.feed.traffic.Traffic`).
        speed: simulated seconds per wall second; 0 = as fast as the slowest subscriber reads.
        token: if set, handshakes without `Authorization: Bearer <token>` get HTTP 401.
        buffer: events kept for resuming subscribers.
        start: simulated start time, Unix seconds (default: now).
        limit: stop generating after this many events in all (then only heartbeats).
        record: append every event generated to this file, one JSON line each.
        keep_history: also keep every event dict in `history` (for tests).
        heartbeat: wall seconds between heartbeats to each subscriber.
        backfill: simulated seconds of history to generate at once before running in time
            (the demo starts with the last half hour already on its graphs).
    """

    def __init__(self, seed: int = 1, cps: float = 20.0, speed: float = 1.0,
                 token: str | None = None, scenario: str = "default", buffer: int = 100_000,
                 start: float | None = None, limit: int | None = None,
                 record: str | Path | None = None, keep_history: bool = False,
                 heartbeat: float = 2.0, backfill: float = 0.0) -> None:
        if speed < 0:
            raise ValueError("speed must be 0 or more")
        self.speed = speed
        self.token = token
        self.limit = limit
        self.heartbeat = heartbeat
        start_ts = round((time.time() - backfill) if start is None else start, 3)
        self.traffic = Traffic(seed, cps, scenario, start_ts)
        self.controls: list[Control] = []  # every valid control message received, in order
        self.history: list[dict] = []  # every event published, if keep_history
        self._keep_history = keep_history
        self._buffer = ResumeBuffer(buffer)
        self._record_path = Path(record) if record is not None else None
        self._record: IO[bytes] | None = None
        self._subscribers: set[_Subscriber] = set()
        self._server: Server | None = None
        self._generator: asyncio.Task | None = None
        self._demand = asyncio.Event()  # speed 0: a subscriber has caught up with the head
        self._paused = False
        # Simulated time at the wall moment `_clock_wall`; ahead of the model by the backfill,
        # which the first ticks then generate as fast as they can.
        self._clock_sim = self.traffic.now + backfill
        self._clock_wall = time.monotonic()
        self._incidents_logged = 0

    @property
    def head(self) -> int:
        """The last seq published."""
        return self.traffic.head

    def sim_now(self) -> float:
        """Simulated time now, Unix seconds (frozen while paused; the model's own at speed 0)."""
        if self.speed == 0:
            return self.traffic.now
        if self._paused:
            return self._clock_sim
        return self._clock_sim + (time.monotonic() - self._clock_wall) * self.speed

    async def start(self, host: str = "127.0.0.1", port: int = 8765,
                    ssl_context: ssl.SSLContext | None = None) -> int:
        """Listen (any path is accepted; TLS, i.e. wss://, with `ssl_context`) and start
        generating; return the port (0 picks one)."""
        if self._record_path is not None:
            self._record = self._record_path.open("ab")
        self._server = await serve(
            self._serve_connection, host, port,
            compression=None,
            ssl=ssl_context,
            process_request=self._authorize,
            ping_interval=None,  # the protocol's heartbeats prove liveness; pings drop slow readers
            close_timeout=2,
            write_limit=WRITE_LIMIT,
        )
        if not self._paused:
            self._clock_wall = time.monotonic()  # simulated time starts from `start` now
        generate = self._generate_on_demand if self.speed == 0 else self._generate_in_time
        self._generator = asyncio.create_task(generate(), name="simulator generation")
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop generating, close every connection and the server, close the record file."""
        if self._generator is not None:
            self._generator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._generator
            self._generator = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._record is not None:
            self._record.close()
            self._record = None

    async def serve_forever(self, host: str = "127.0.0.1", port: int = 8765) -> None:
        """Serve until cancelled, then stop cleanly."""
        bound = await self.start(host, port)
        log.info("simulator serving ws://%s:%d/feed", host, bound)
        try:
            await asyncio.Future()
        finally:
            await self.stop()

    # Test hooks.

    def drop_connections(self) -> None:
        """Close every client connection abruptly: the TCP connection is aborted, no close frame."""
        for subscriber in list(self._subscribers):
            subscriber.ws.transport.abort()

    def inject_raw(self, frame: str | bytes) -> None:
        """Send a raw text frame to every subscriber, before its next events; it takes no seq."""
        data = frame.encode() if isinstance(frame, str) else frame
        for subscriber in self._subscribers:
            if subscriber.cursor is not None:
                subscriber.outbox.append(data)
                subscriber.wake.set()

    def inject_events(self, events: Iterable[dict]) -> list[dict]:
        """Publish arbitrary event dicts with the next seqs (any other fields as given)."""
        stamped = self.traffic.stamp(events)
        self._publish(stamped)
        return stamped

    def forget(self, upto_seq: int) -> None:
        """Drop buffered events up to `upto_seq`, so that resuming before it yields a gap."""
        self._buffer.forget(upto_seq)

    def pause(self) -> None:
        """Stop generating; simulated time stands still until `resume`."""
        if not self._paused:
            self._clock_sim = self.sim_now()
            self._paused = True

    def resume(self) -> None:
        if self._paused:
            self._clock_wall = time.monotonic()
            self._paused = False
            self._demand.set()

    # Generation.

    async def _generate_in_time(self) -> None:
        while True:
            self._generate_until_now()
            await asyncio.sleep(TICK_S)

    def _generate_until_now(self) -> None:
        room = self._room(TICK_EVENTS)
        if room:
            self._publish(self.traffic.advance_to(self.sim_now(), room))

    async def _generate_on_demand(self) -> None:
        while True:
            await self._demand.wait()
            self._demand.clear()
            subscribed = [s.cursor for s in self._subscribers if s.cursor is not None]
            room = self._room(FRAME_EVENTS)
            if room and subscribed and min(subscribed) >= self.head:
                self._publish(self.traffic.next_events(room))

    def _room(self, most: int) -> int:
        """How many events may be generated now, up to `most`: 0 when paused or at the limit."""
        if self._paused:
            return 0
        return most if self.limit is None else max(0, min(most, self.limit - self.head))

    def _publish(self, events: list[dict]) -> None:
        if not events:
            return
        encoded = [encode(event) for event in events]
        self._buffer.extend(events[0]["seq"], encoded)
        if self._record is not None:
            self._record.write(b"\n".join(encoded) + b"\n")
            self._record.flush()
        if self._keep_history:
            self.history.extend(events)
        for subscriber in self._subscribers:
            subscriber.wake.set()
        self._log_new_incidents()

    def _log_new_incidents(self) -> None:
        for incident in self.traffic.incidents[self._incidents_logged:]:
            log.info("incident: %s on %s", incident.kind, incident.target)
        self._incidents_logged = len(self.traffic.incidents)

    # Connections.

    def _authorize(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.token is None:
            return None
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            return None
        return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token\n")

    async def _serve_connection(self, ws: ServerConnection) -> None:
        subscriber = _Subscriber(ws)
        self._subscribers.add(subscriber)
        sender = asyncio.create_task(self._send_loop(subscriber), name="simulator sender")
        try:
            async for message in ws:
                self._on_client_frame(subscriber, message)
        except ConnectionClosed:
            pass
        finally:
            self._subscribers.discard(subscriber)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            self._demand.set()  # a slow subscriber leaving may unblock generation

    def _on_client_frame(self, subscriber: _Subscriber, message: str | bytes) -> None:
        try:
            frame = decode_client_frame(message)
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            self._refuse_bad_frame(subscriber, message, str(error))
            return
        if isinstance(frame, Subscribe):
            subscriber.cursor = frame.since
            subscriber.wake.set()
            return
        self.controls.append(frame)
        if self.speed > 0:
            self._generate_until_now()  # so the account event is stamped with the time now
        ok, error, events = self.traffic.apply_control(frame)
        self._queue_ack(subscriber, frame.id, error if not ok else None)
        self._publish(events)

    def _refuse_bad_frame(self, subscriber: _Subscriber, message: str | bytes, error: str) -> None:
        """A bad client frame gets a failed ack if it carries an id; otherwise it is only logged."""
        request_id = _id_of(message)
        if request_id is None:
            log.warning("ignoring a bad client frame (%s): %.200r", error, message)
        else:
            self._queue_ack(subscriber, request_id, f"bad message: {error}")

    def _queue_ack(self, subscriber: _Subscriber, request_id: str, error: str | None) -> None:
        ack: dict = {"type": "control.ack", "id": request_id, "ok": error is None}
        if error is not None:
            ack["error"] = error
        subscriber.outbox.append(encode(ack))
        subscriber.wake.set()

    async def _send_loop(self, subscriber: _Subscriber) -> None:
        try:
            await self._send_all(subscriber)
        except ConnectionClosed:
            pass
        except Exception:  # a bug here must not leave the client connected and starved
            log.exception("simulator sender failed; closing the connection")
            await subscriber.ws.close(1011, "simulator error")

    async def _send_all(self, subscriber: _Subscriber) -> None:
        """Everything one connection receives, in order: acks and raw frames, heartbeats, events."""
        ws = subscriber.ws
        next_heartbeat = time.monotonic()
        while True:
            subscriber.wake.clear()
            while subscriber.outbox:
                await ws.send(subscriber.outbox.popleft(), text=True)
            if subscriber.cursor is None:
                await subscriber.wake.wait()
                continue
            if time.monotonic() >= next_heartbeat:
                await ws.send(self._heartbeat_frame(), text=True)
                next_heartbeat = time.monotonic() + self.heartbeat
            if subscriber.cursor < self.head:
                frame, subscriber.cursor = self._next_frame(subscriber.cursor)
                await ws.send(frame, text=True)
                continue
            self._demand.set()
            # asyncio.timeout, not wait_for, which on 3.11 can swallow the cancel of a stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(next_heartbeat - time.monotonic()):
                    await subscriber.wake.wait()

    def _next_frame(self, cursor: int) -> tuple[bytes, int]:
        """The next frame for a subscriber at `cursor`, and its new cursor: a gap or events."""
        oldest = self._buffer.oldest
        if cursor + 1 < oldest:
            return encode({"type": "gap", "from": cursor + 1, "to": oldest - 1}), oldest - 1
        count = FRAME_EVENTS
        while True:
            events = self._buffer.after(cursor, count)
            frame = b"[" + b",".join(events) + b"]"
            if len(frame) <= FRAME_BYTES or count == 1:
                return frame, cursor + len(events)
            count //= 2

    def _heartbeat_frame(self) -> bytes:
        return encode({"type": "heartbeat", "ts": round(self.sim_now(), 3), "last_seq": self.head})


def _id_of(message: str | bytes) -> str | None:
    """The `id` of a client frame that failed to decode, if it has a usable one."""
    try:
        obj = msgspec.json.decode(message)
    except msgspec.DecodeError:
        return None
    request_id = obj.get("id") if isinstance(obj, dict) else None
    return request_id if isinstance(request_id, str) else None
