"""The built-in simulator: a feed protocol v1 websocket server around the traffic model.

Generated events are encoded once and kept, by seq, in a resume buffer that a `FeedServer`
serves (console.feed.server: cursors, frames, gaps, heartbeats, acks).

Simulated time runs at `speed` times wall time from `start`; with `speed=0` it runs as fast as the
slowest subscriber reads (benchmarks). The test hooks (`drop_connections`, `inject_raw`,
`inject_events`, `forget`, `pause`, `resume`) let feed tests provoke every failure the protocol
describes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from console.feed.protocol import Control, encode
from console.feed.server import FRAME_EVENTS, FeedServer, ResumeBuffer
from console.feed.traffic import Traffic

log = logging.getLogger(__name__)

TICK_S = 0.05
TICK_EVENTS = 20_000  # at most per tick, so a speed the model cannot keep up with never stalls I/O
CATCHING_UP_S = 1.0  # the model this far behind simulated time generates a backfill's bulk


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
            (the demo starts with the last ten minutes already on its graphs).
        quiet_history: simulated seconds of quiet history (see Traffic's `history_s`) before the
            backfill, generated at once too (the demo's day of hourly rows).
        frame_events: (fewest, most) events per frame, each frame's count drawn at random
            (seeded) between them; a frame of one event is sent as a bare object, as a switch
            sending event by event would.
    """

    def __init__(self, seed: int = 1, cps: float = 20.0, speed: float = 1.0,
                 token: str | None = None, scenario: str = "default", buffer: int = 100_000,
                 start: float | None = None, limit: int | None = None,
                 record: str | Path | None = None, keep_history: bool = False,
                 heartbeat: float = 2.0, backfill: float = 0.0, quiet_history: float = 0.0,
                 frame_events: tuple[int, int] = (FRAME_EVENTS, FRAME_EVENTS)) -> None:
        if speed < 0:
            raise ValueError("speed must be 0 or more")
        self.speed = speed
        self.token = token
        self.limit = limit
        self.heartbeat = heartbeat
        start_ts = round((time.time() - backfill) if start is None else start, 3)
        self.traffic = Traffic(seed, cps, scenario, start_ts, history_s=quiet_history)
        self.controls: list[Control] = []  # every valid control message received, in order
        self.history: list[dict] = []  # every event published, if keep_history
        self._keep_history = keep_history
        self._buffer = ResumeBuffer(buffer)
        self._record_path = Path(record) if record is not None else None
        self._record: IO[bytes] | None = None
        self.server = FeedServer(self._buffer, on_control=self._on_control, now=self.sim_now,
                                 token=token, heartbeat=heartbeat,
                                 on_caught_up=self._demand_more, name="simulator",
                                 frame_events=frame_events, seed=seed)
        self._generator: asyncio.Task | None = None
        self._demand = asyncio.Event()  # speed 0: a subscriber has caught up with the head
        self._paused = False
        # Simulated time at the wall moment `_clock_wall`; ahead of the model by the backfill,
        # which the first ticks then generate as fast as they can.
        self._clock_sim = self.traffic.now + quiet_history + backfill
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
        port = await self.server.start(host, port, ssl_context)
        if not self._paused:
            self._clock_wall = time.monotonic()  # simulated time starts from `start` now
        generate = self._generate_on_demand if self.speed == 0 else self._generate_in_time
        self._generator = asyncio.create_task(generate(), name="simulator generation")
        return port

    async def stop(self) -> None:
        """Stop generating, close every connection and the server, close the record file."""
        if self._generator is not None:
            self._generator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._generator
            self._generator = None
        await self.server.stop()
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
        self.server.drop_connections()

    def inject_raw(self, frame: str | bytes) -> None:
        """Send a raw text frame to every subscriber, before its next events; it takes no seq."""
        self.server.inject_raw(frame.encode() if isinstance(frame, str) else frame)

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
        now = self.sim_now()
        room = self._room(TICK_EVENTS)
        if now - self.traffic.now > CATCHING_UP_S:
            room = min(room, self._unsent_room())
        if room:
            self._publish(self.traffic.advance_to(now, room))

    def _unsent_room(self) -> int:
        """How many events a backfill (or a model catching up) may add without pushing out of
        the resume buffer what a subscriber has not yet been sent: it is generated at the pace
        the slowest reads, not faster than the buffer holds, or it would arrive as gaps. Until
        a subscriber comes, what is generated waits for it, and half the buffer stays for
        resuming after a reconnection."""
        sent = min(self.server.cursors(), default=self._buffer.oldest - 1)
        return max(0, self._buffer.capacity // 2 - (self.head - sent))

    async def _generate_on_demand(self) -> None:
        while True:
            await self._demand.wait()
            self._demand.clear()
            subscribed = self.server.cursors()
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
        self.server.published()
        self._log_new_incidents()

    def _log_new_incidents(self) -> None:
        for incident in self.traffic.incidents[self._incidents_logged:]:
            log.info("incident: %s on %s", incident.kind, incident.target)
        self._incidents_logged = len(self.traffic.incidents)

    # Control messages.

    def _on_control(self, frame: Control) -> str | None:
        self.controls.append(frame)
        if self.speed > 0:
            self._generate_until_now()  # so the account event is stamped with the time now
        ok, error, events = self.traffic.apply_control(frame)
        self._publish(events)
        return None if ok else error

    def _demand_more(self) -> None:
        """A subscriber has caught up (or left): at speed 0, generate the next chunk."""
        self._demand.set()
