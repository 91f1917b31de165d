"""Serving feed protocol v1: the websocket side every feed server of noc shares (the simulator,
the Kamailio bridge).

Events live, encoded and by seq, in an `EventLog` (a resume buffer in memory, or a file); each
subscriber has a cursor into it and one sender task that sends what lies past its cursor as
array frames, awaiting every send, so a slow client is held back by its own socket and never
queued for in memory. A subscriber whose cursor falls behind what the log still holds is told so
with a `gap`. Control messages go to the server's owner, and their acks back to the connection
that sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Protocol

import msgspec
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from console.feed.protocol import Control, Subscribe, decode_client_frame, encode

log = logging.getLogger(__name__)

FRAME_EVENTS = 500  # events per array frame
FRAME_BYTES = 512 * 1024  # well under the console's 1 MiB frame limit
WRITE_LIMIT = 256 * 1024  # bytes a connection may buffer before a send waits for the client


class EventLog(Protocol):
    """Encoded events by seq from `oldest` to `head`, where a seq is either an event or part of
    a run of seqs lost for good (which subscribers are told of with a `gap`)."""

    @property
    def head(self) -> int:
        """The last seq published (0 for none)."""

    @property
    def oldest(self) -> int:
        """The oldest seq still held (head + 1 when none is)."""

    def after(self, seq: int, count: int) -> list[bytes]:
        """Up to `count` events from seq + 1 on (held, and not lost), stopping at a loss."""

    def lost_after(self, seq: int) -> int:
        """If seq + 1 begins a run of lost seqs, the last of them; else 0."""


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
        index = seq + 1 - self._base
        return self._items[index:index + count]

    def lost_after(self, seq: int) -> int:
        return 0  # what it holds is contiguous

    def _compact(self) -> None:
        if self._start > self.capacity:
            del self._items[:self._start]
            self._base += self._start
            self._start = 0


# What the owner does with a control message: the error to answer with (None: ok), at once or
# once awaited.
ControlHandler = Callable[[Control], "str | None | Awaitable[str | None]"]


class _Subscriber:
    """One connection: its cursor (None until it subscribes) and frames waiting to go out."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.cursor: int | None = None
        self.outbox: deque[bytes] = deque()  # acks and injected raw frames, sent before events
        self.wake = asyncio.Event()


class FeedServer:
    """A feed protocol v1 websocket server over an `EventLog`.

    Args:
        events: what is served.
        on_control: answers a client's control message (see `ControlHandler`).
        now: the time heartbeats carry, Unix seconds.
        token: if set, handshakes without `Authorization: Bearer <token>` get HTTP 401.
        heartbeat: wall seconds between heartbeats to each subscriber.
        on_subscribe: told the `since` of each subscription, before it is served.
        on_caught_up: called whenever a subscriber has been sent everything there is.
        name: how logs name this server.
        frame_events: (fewest, most) events per frame, each frame's count drawn at random
            (seeded by `seed`) between them; a frame of one event is sent as a bare object, as a
            switch sending event by event would.
    """

    def __init__(self, events: EventLog, *, on_control: ControlHandler,
                 now: Callable[[], float] = time.time, token: str | None = None,
                 heartbeat: float = 2.0, on_subscribe: Callable[[int], None] | None = None,
                 on_caught_up: Callable[[], None] | None = None, name: str = "feed",
                 frame_events: tuple[int, int] = (FRAME_EVENTS, FRAME_EVENTS),
                 seed: int = 1) -> None:
        if not 1 <= frame_events[0] <= frame_events[1]:
            raise ValueError("frame_events must be (fewest, most) with 1 <= fewest <= most")
        self.frame_events = frame_events
        self._frame_sizes = random.Random(seed)
        self.events = events
        self.on_control = on_control
        self.now = now
        self.token = token
        self.heartbeat = heartbeat
        self.on_subscribe = on_subscribe
        self.on_caught_up = on_caught_up
        self.name = name
        self._subscribers: set[_Subscriber] = set()
        self._server: Server | None = None
        self._controls: set[asyncio.Task] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 8765,
                    ssl_context: ssl.SSLContext | None = None) -> int:
        """Listen (any path is accepted; TLS, i.e. wss://, with `ssl_context`); return the port
        (0 picks one)."""
        self._server = await serve(
            self._serve_connection, host, port,
            compression=None,
            ssl=ssl_context,
            process_request=self._authorize,
            ping_interval=None,  # the protocol's heartbeats prove liveness; pings drop slow readers
            close_timeout=2,
            write_limit=WRITE_LIMIT,
        )
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every connection and the server; control messages in flight are abandoned."""
        for task in list(self._controls):
            task.cancel()
        await asyncio.gather(*self._controls, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def published(self) -> None:
        """Tell the subscribers that the log has new events."""
        for subscriber in self._subscribers:
            subscriber.wake.set()

    def cursors(self) -> list[int]:
        """Where each subscribed connection is."""
        return [s.cursor for s in self._subscribers if s.cursor is not None]

    def drop_connections(self) -> None:
        """Close every client connection abruptly: the TCP connection is aborted, no close frame."""
        for subscriber in list(self._subscribers):
            subscriber.ws.transport.abort()

    def inject_raw(self, data: bytes) -> None:
        """Send a raw text frame to every subscriber, before its next events; it takes no seq."""
        for subscriber in self._subscribers:
            if subscriber.cursor is not None:
                subscriber.outbox.append(data)
                subscriber.wake.set()

    # Connections.

    def _authorize(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.token is None:
            return None
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            return None
        log.warning("%s: refused a client from %s: missing or wrong bearer token", self.name,
                    _peer(connection))
        return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token\n")

    async def _serve_connection(self, ws: ServerConnection) -> None:
        subscriber = _Subscriber(ws)
        self._subscribers.add(subscriber)
        sender = asyncio.create_task(self._send_loop(subscriber), name=f"{self.name} sender")
        try:
            async for message in ws:
                self._on_client_frame(subscriber, message)
        except ConnectionClosed:
            pass
        finally:
            log.info("%s: %s left", self.name, _peer(ws))
            self._subscribers.discard(subscriber)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            if self.on_caught_up is not None:
                self.on_caught_up()  # a slow subscriber leaving may unblock its owner

    def _on_client_frame(self, subscriber: _Subscriber, message: str | bytes) -> None:
        try:
            frame = decode_client_frame(message)
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            self._refuse_bad_frame(subscriber, message, str(error))
            return
        if isinstance(frame, Subscribe):
            log.info("%s: %s subscribed from seq %d (the feed is at %d)", self.name,
                     _peer(subscriber.ws), frame.since, self.events.head)
            if self.on_subscribe is not None:
                self.on_subscribe(frame.since)
            subscriber.cursor = frame.since
            subscriber.wake.set()
            return
        outcome = self.on_control(frame)
        if not inspect.isawaitable(outcome):
            self._queue_ack(subscriber, frame.id, outcome)
            return
        task = asyncio.create_task(self._answer_later(subscriber, frame.id, outcome))
        self._controls.add(task)
        task.add_done_callback(self._controls.discard)

    async def _answer_later(self, subscriber: _Subscriber, request_id: str,
                            outcome: Awaitable[str | None]) -> None:
        try:
            error = await outcome
        except Exception as failure:  # the owner's bug must still get the client an answer
            log.exception("%s: control %s failed", self.name, request_id)
            error = f"the server failed: {failure}"
        self._queue_ack(subscriber, request_id, error)

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
            log.exception("%s sender failed; closing the connection", self.name)
            await subscriber.ws.close(1011, "server error")

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
            if subscriber.cursor < self.events.head:
                frame, subscriber.cursor = self._next_frame(subscriber.cursor)
                await ws.send(frame, text=True)
                continue
            if self.on_caught_up is not None:
                self.on_caught_up()
            # asyncio.timeout, not wait_for, which on 3.11 can swallow the cancel of a stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(next_heartbeat - time.monotonic()):
                    await subscriber.wake.wait()

    def _next_frame(self, cursor: int) -> tuple[bytes, int]:
        """The next frame for a subscriber at `cursor`, and its new cursor: a gap or events."""
        oldest = self.events.oldest
        if cursor + 1 < oldest:
            return encode({"type": "gap", "from": cursor + 1, "to": oldest - 1}), oldest - 1
        lost = self.events.lost_after(cursor)
        if lost:
            return encode({"type": "gap", "from": cursor + 1, "to": lost}), lost
        fewest, most = self.frame_events
        count = most if fewest == most else self._frame_sizes.randint(fewest, most)
        while True:
            events = self.events.after(cursor, count)
            if len(events) == 1 and fewest == 1:
                return events[0], cursor + 1
            frame = b"[" + b",".join(events) + b"]"
            if len(frame) <= FRAME_BYTES or count == 1:
                return frame, cursor + len(events)
            count //= 2

    def _heartbeat_frame(self) -> bytes:
        return encode({"type": "heartbeat", "ts": round(self.now(), 3),
                       "last_seq": self.events.head})


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else "?"


def _id_of(message: str | bytes) -> str | None:
    """The `id` of a client frame that failed to decode, if it has a usable one."""
    try:
        obj = msgspec.json.decode(message)
    except msgspec.DecodeError:
        return None
    request_id = obj.get("id") if isinstance(obj, dict) else None
    return request_id if isinstance(request_id, str) else None
