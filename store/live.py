"""Calls in progress as the writer holds them, and their compact form in the `open_call` table.

Viewers decode the same form to show dialogs, so it belongs to the store.
"""

from __future__ import annotations

import msgspec

from store.metrics import AttemptRecord, CallRecord, is_answered


class LiveAttempt(msgspec.Struct, array_like=True, gc=False):
    attempt: int
    carrier: str
    route: str
    start_ms: int
    progress_ms: int | None = None
    answer_ms: int | None = None
    end_ms: int | None = None
    code: int | None = None
    reason: str | None = None

    @property
    def ended(self) -> bool:
        return self.code is not None

    def record(self, duration_ms: int = 0, cost_micro: int = 0, billed_ms: int = 0,
               charge_micro: int = 0) -> AttemptRecord:
        """The attempt as ended; the figures given are its call's, kept only if it answered."""
        code = self.code if self.code is not None else 0
        answered = is_answered(code)
        return AttemptRecord(
            carrier=self.carrier,
            route=self.route,
            attempt=self.attempt,
            start_ms=self.start_ms,
            end_ms=self.end_ms if self.end_ms is not None else self.start_ms,
            code=code,
            progress_ms=self.progress_ms,
            duration_ms=duration_ms if answered else 0,
            cost_micro=cost_micro if answered else 0,
            reason=self.reason,
            billed_ms=billed_ms if answered else 0,
            charge_micro=charge_micro if answered else 0,
        )


class LiveCall(msgspec.Struct, array_like=True, gc=False):
    seq: int
    call_id: str
    customer: str
    cli: str
    dst: str
    start_ms: int
    last_ms: int
    progress_ms: int | None = None
    answer_ms: int | None = None
    dtmf_count: int = 0
    attempts: list[LiveAttempt] = msgspec.field(default_factory=list)

    def attempt(self, number: int) -> LiveAttempt | None:
        for each in self.attempts:
            if each.attempt == number:
                return each
        return None

    @property
    def route(self) -> str:
        return self.attempts[0].route if self.attempts else ""

    @property
    def carrier(self) -> str:
        return self.attempts[-1].carrier if self.attempts else ""

    def record(self, end_ms: int, code: int, *, duration_ms: int = 0, billed_ms: int = 0,
               charge_micro: int = 0, cost_micro: int = 0, hangup: str = "") -> CallRecord:
        return CallRecord(
            call_id=self.call_id,
            customer=self.customer,
            start_ms=self.start_ms,
            end_ms=end_ms,
            code=code,
            cli=self.cli,
            dst=self.dst,
            route=self.route,
            duration_ms=duration_ms,
            billed_ms=billed_ms,
            charge_micro=charge_micro,
            cost_micro=cost_micro,
            progress_ms=self.progress_ms,
            dtmf_count=self.dtmf_count,
            hangup=hangup,
            attempts=tuple(a.record(duration_ms, cost_micro, billed_ms, charge_micro)
                           for a in self.attempts),
        )


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(LiveCall)


def pack(call: LiveCall) -> bytes:
    return _encoder.encode(call)


def unpack(state: bytes) -> LiveCall:
    return _decoder.decode(state)
