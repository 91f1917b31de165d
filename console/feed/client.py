"""The websocket feed client: connect, subscribe from the last stored seq, watch, reconnect.

Frames are handed on raw through a bounded queue: when the store falls behind, `put` waits, the
client stops reading, and the server's send buffer (then TCP) carries the load, so memory stays
bounded and nothing is dropped.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from console.feed import protocol as p

HEARTBEAT_TIMEOUT_S = 15.0
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
TRANSPORT_MAX_BYTES = 16 << 20  # larger than the protocol's 1 MiB so an oversized frame is
# quarantined whole by the decoder instead of killing the connection
QUEUE_FRAMES = 64


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
        self.frames: asyncio.Queue[bytes | p.Subscribe] = asyncio.Queue(maxsize=queue_frames)
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
                max_size=TRANSPORT_MAX_BYTES,
                max_queue=4,
                open_timeout=10,
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
