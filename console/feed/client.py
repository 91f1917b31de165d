"""The websocket feed client: connect, subscribe from the last stored seq, watch, reconnect.

Frames are handed on raw through a bounded queue: when the store falls behind, `put` waits, the
client stops reading, and the server's send buffer (then TCP) carries the load, so memory stays
bounded and nothing is dropped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import itertools
import random
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from websockets.frames import DATA_OPCODES, Frame, Opcode
from websockets.streams import StreamReader

from console.feed import protocol as p

HEARTBEAT_TIMEOUT_S = 15.0
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
QUEUE_FRAMES = 64
# How a frame cut to its first bytes is told from any other, in band (the assembled message is
# all that reaches `recv`): a marker no server can forge, then the frame's size in 20 digits.
CUT = b"\0noc-cut-" + secrets.token_hex(8).encode() + b":"
CUT_SUFFIX = len(CUT) + 20


def _cut_marker(size: int) -> bytes:
    return CUT + b"%020d" % size


def _cut_size(data: bytes | bytearray) -> int | None:
    """The real size of a frame cut by the connection, or None for a whole one."""
    if len(data) >= CUT_SUFFIX and data[-CUT_SUFFIX:-20] == CUT:
        return int(data[-20:])
    return None


class _PayloadSkipper(StreamReader):
    """Reads a frame's payload over the protocol's limit a piece at a time as it comes, keeping
    its first bytes only: a 50 MiB frame is never held, and the connection goes on after it.
    (Every other read is smaller: a frame header, or an HTTP response body of at most 1 MiB.)"""

    def read_exact(self, n: int) -> Generator[None, None, bytes | bytearray]:
        if n <= p.MAX_FRAME_BYTES:
            return (yield from super().read_exact(n))
        head, left = bytearray(), n
        while left:
            while not self.buffer:
                if self.eof:
                    raise EOFError(f"stream ends {left} bytes before the end of a frame")
                yield
            taken = min(left, len(self.buffer))
            head += self.buffer[:max(0, min(taken, p.HEAD_BYTES - len(head)))]
            del self.buffer[:taken]
            left -= taken
        return bytes(head) + _cut_marker(n)


class _BoundedConnection(ClientConnection):
    """A connection that survives any message size: a frame over the limit is read through and
    cut to its first bytes (_PayloadSkipper), and so is a message fragmented past it; `recv`
    then gives its head followed by the cut marker and its size (see `_cut_size`)."""

    def __init__(self, protocol: ClientProtocol, **kwargs) -> None:
        # Before any byte arrives: the handshake's response is read by the new reader too.
        protocol.reader = _PayloadSkipper()
        protocol.parser = protocol.parse()
        next(protocol.parser)
        super().__init__(protocol, **kwargs)
        self._message_bytes = 0
        self._over = False

    def process_event(self, event) -> None:
        if isinstance(event, Frame) and event.opcode in DATA_OPCODES:
            event = self._bounded(event)
            if event is None:
                return
        super().process_event(event)

    def _bounded(self, frame: Frame) -> Frame | None:
        """`frame` as it is to be assembled: whole, cut, or None (dropped)."""
        if frame.opcode is not Opcode.CONT:  # a new message
            self._message_bytes, self._over = 0, False
        data = frame.data
        cut = _cut_size(data)
        if cut is not None:
            data = data[:-CUT_SUFFIX]
        self._message_bytes += len(data) if cut is None else cut
        if self._message_bytes <= p.MAX_FRAME_BYTES:
            return frame
        # Past the limit: the message's start already went on (up to the limit, or the cut
        # frame's head); the rest is dropped, and its last frame says how big it was.
        data, self._over = (b"" if self._over else data[:p.HEAD_BYTES]), True
        if not frame.fin:
            return dataclasses.replace(frame, data=data) if data else None
        return dataclasses.replace(frame, data=data + _cut_marker(self._message_bytes))


class FeedError(Exception):
    """A feed problem the user must act on (bad URL, refused token); str() says what."""


class FeedUnreachable(FeedError):
    pass


class FeedRefused(FeedError):
    pass


def check_url(url: str) -> str:
    """`url`, if a feed can be reached at it; FeedError saying why not. A password in it is
    refused: a URL shows in `ps` and is stored, the token has its own place."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise FeedError(f"bad feed URL {redacted(url)!r}: expected ws://HOST:PORT/PATH or "
                        "wss://...")
    if parts.password is not None:
        raise FeedError(f"the feed URL {redacted(url)!r} holds a password: give the secret as "
                        "the bearer token (feed.token or NOC_FEED_TOKEN), never in the URL")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as error:
        raise FeedError(f"bad feed URL {redacted(url)!r}: {error}") from None
    return url


def redacted(url: str) -> str:
    """`url` with any password in it shown as ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.netloc.rpartition("@")[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{parts.netloc.rpartition('@')[2]}"))


def token_in_clear(url: str, token: str | None) -> str | None:
    """A warning if the bearer token would cross a network unencrypted (ws:// to a host that
    is not this machine), else None."""
    host = urlsplit(url).hostname or ""
    if not token or not url.startswith("ws:") or _loopback(host):
        return None
    return (f"the feed token is sent in clear over ws:// to {host}: anyone on the way can "
            "read it; use wss://")


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def backoff_delays(rng: random.Random) -> itertools.Iterator[float]:
    """0.5 s doubling to 30 s, each with jitter (between half and all of it), so that many
    consoles cut off together do not all come back in the same instant."""
    delay = BACKOFF_FIRST_S
    while True:
        yield rng.uniform(delay / 2, delay)
        delay = min(delay * 2, BACKOFF_MAX_S)


@dataclass
class FeedStatus:
    status: str  # connecting, connected, reconnecting, refused, stopped
    detail: str = ""
    reconnect_at_ms: int | None = None
    connected_since_ms: int | None = None


class FeedClient:
    """One feed subscription, kept alive across drops.

    `position` gives the last durably stored seq (asked at each connect); frames go into
    `frames`, each connection's preceded by the Subscribe it sent (where its stream starts);
    status changes go to `on_status`. Control messages are sent with `control()` and
    their acks are matched by id when the consumer passes them to `acknowledge()`.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        position: Callable[[], int],
        on_status: Callable[[FeedStatus], None] = lambda status: None,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT_S,
        queue_frames: int = QUEUE_FRAMES,
        rng: random.Random | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.url = check_url(url)
        self.token = token
        self.ca_file = ca_file
        self.position = position
        self.on_status = on_status
        self.heartbeat_timeout = heartbeat_timeout
        self.frames: asyncio.Queue[bytes | p.Oversized | p.Subscribe] = asyncio.Queue(
            maxsize=queue_frames)
        self.rng = rng or random.Random()
        self.connected = asyncio.Event()
        self.connections = 0
        self._ws: ClientConnection | None = None
        self._pending: dict[str, asyncio.Future[p.ControlAck]] = {}

    async def connect_once(self) -> ClientConnection:
        """Open and subscribe; raises FeedRefused / FeedUnreachable saying what to do."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        tls = {}
        if self.url.startswith("wss:") and self.ca_file:
            try:
                tls["ssl"] = ssl.create_default_context(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as error:
                raise FeedError(f"cannot use feed.ca_file {self.ca_file!r}: {error}") from None
        try:
            ws = await connect(
                self.url,
                **tls,
                additional_headers=headers,
                compression=None,
                ping_interval=None,
                max_size=None,  # no limit that closes the connection: _BoundedConnection cuts
                max_queue=4,
                open_timeout=10,
                create_connection=_BoundedConnection,
            )
        except InvalidStatus as error:
            code = error.response.status_code
            if code in (401, 403):
                raise FeedRefused(
                    f"the feed at {self.url} refused the token (HTTP {code}): set NOC_FEED_TOKEN "
                    "or feed.token in the config file to the token the switch expects"
                ) from None
            raise FeedUnreachable(
                f"the feed at {self.url} answered HTTP {code}: is the URL right?"
            ) from None
        except InvalidURI as error:
            raise FeedError(f"bad feed URL {self.url!r}: {error}") from None
        except ssl.SSLCertVerificationError as error:
            raise FeedUnreachable(
                f"the feed at {self.url} has a certificate this machine does not trust "
                f"({error.verify_message}): set feed.ca_file (or NOC_FEED_CA_FILE) to its CA"
            ) from None
        except (
            TimeoutError,
            OSError,
            socket.gaierror,
            websockets.exceptions.InvalidHandshake,
        ) as error:
            raise FeedUnreachable(
                f"cannot reach the feed at {self.url} ({error.__class__.__name__}: {error}): "
                "is the switch's feed (or `noc simulate`) running there?"
            ) from None
        subscribe = p.Subscribe(since=self.position())
        try:
            await ws.send(p.encode(subscribe).decode())
        except ConnectionClosed as closed:  # e.g. a switch restarting, or refusing more clients
            raise FeedUnreachable(
                f"the feed at {self.url} closed the connection at once ({closed}): "
                "is the switch's feed (or `noc simulate`) running properly there?"
            ) from None
        # In order with the frames: the consumer learns where this connection's stream starts,
        # which tells a resent event (normal after a resume) from a broken numbering.
        await self.frames.put(subscribe)
        return ws

    async def run(self) -> None:
        """Read forever, reconnecting with backoff; returns only when cancelled.

        A feed that cannot be reached, or answers with an error, is tried again with the
        protocol's backoff, the first time as any later one; a refused token at the longest
        delay (someone must fix the token; nothing is gained by asking more often). Only a
        mistake in the settings (a bad URL, an unusable CA file) raises FeedError."""
        delays = backoff_delays(self.rng)
        ws = None
        while True:
            if ws is None:
                self.on_status(FeedStatus("connecting", self.url))
                try:
                    ws = await self.connect_once()
                except FeedRefused as error:
                    await self._wait_before_retry(BACKOFF_MAX_S, str(error), refused=True)
                    continue
                except FeedUnreachable as error:
                    await self._wait_before_retry(next(delays), str(error))
                    continue
            since_ms = time.time_ns() // 1_000_000
            self.connections += 1
            self._ws = ws
            self.connected.set()
            self.on_status(FeedStatus("connected", self.url, connected_since_ms=since_ms))
            try:
                reason, delivered = await self._read(ws)
            except asyncio.CancelledError:
                # Stopping: drop the connection at once rather than wait on a close handshake
                # with a server whose sends may be stuck behind our unread frames.
                ws.transport.abort()
                raise
            if delivered:
                delays = backoff_delays(self.rng)  # a connection that delivered starts afresh
            self._ws = None
            self.connected.clear()
            self._fail_pending(reason)
            await ws.close()
            ws = None
            await self._wait_before_retry(next(delays), reason)

    async def _read(self, ws: ClientConnection) -> tuple[str, bool]:
        """Pass frames on until the connection dies; say why, and whether anything came."""
        delivered = False
        while True:
            try:
                # Not wait_for: on Python 3.11 it can swallow a cancel that comes as recv
                # completes, and a stopping writer would then wait on a full queue for good.
                async with asyncio.timeout(self.heartbeat_timeout):
                    frame = await ws.recv(decode=False)
            except TimeoutError:
                return (
                    f"no frame for {self.heartbeat_timeout:g} s: connection presumed dead",
                    delivered,
                )
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else "no close frame"
                return f"connection closed ({code})", delivered
            delivered = True
            size = _cut_size(frame)
            if size is not None:  # over the limit: its size and first bytes, for quarantine
                frame = p.Oversized(size, bytes(frame[:min(p.HEAD_BYTES, len(frame) - CUT_SUFFIX)]))
            await self.frames.put(frame)

    async def _wait_before_retry(self, delay: float, reason: str, *, refused: bool = False) -> None:
        at_ms = time.time_ns() // 1_000_000 + int(delay * 1000)
        self.on_status(
            FeedStatus("refused" if refused else "reconnecting", reason, reconnect_at_ms=at_ms)
        )
        await asyncio.sleep(delay)

    # Control messages ---------------------------------------------------------------------

    async def control(self, message: p.Control, *, timeout: float = 10.0) -> p.ControlAck:
        """Send a control message and wait for the server's ack with the same id."""
        ws = self._ws
        if ws is None:
            raise FeedError("the feed is not connected: the control message was not sent")
        future: asyncio.Future[p.ControlAck] = asyncio.get_running_loop().create_future()
        self._pending[message.id] = future
        try:
            await ws.send(p.encode(message).decode())
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise FeedError(f"no control.ack for {message.id} within {timeout:g} s") from None
        finally:
            self._pending.pop(message.id, None)

    def acknowledge(self, ack: p.ControlAck) -> None:
        future = self._pending.get(ack.id)
        if future is not None and not future.done():
            future.set_result(ack)

    def _fail_pending(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(FeedError(f"the feed dropped before the ack: {reason}"))
