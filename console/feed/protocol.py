"""Feed protocol v1: the frames a server sends and the client sends back, as typed structs.

Decoding is strict (types are checked, identifiers are 1 to 64 printable characters) so that a bad
event is caught here, with a reason, rather than half-applied later. Unknown extra fields are
ignored, as the protocol asks.
"""

from __future__ import annotations

import re
import typing
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from console.feed.printable import UNPRINTABLE

MAX_FRAME_BYTES = 1 << 20

# Identifiers are also printable (see console.feed.printable): checked by `_check_identifiers`,
# only for the rare frame that could hold an unprintable character (a regex per field costs
# three times the rest of decoding).
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Seq = Annotated[int, msgspec.Meta(ge=1)]
Ts = Annotated[float, msgspec.Meta(ge=0)]
AttemptNo = Annotated[int, msgspec.Meta(ge=1)]
SipCode = Annotated[int, msgspec.Meta(ge=100, le=699)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]


class _Event(msgspec.Struct, tag_field="type", gc=False):
    seq: Seq
    ts: Ts


class Account(_Event, tag="account"):
    kind: Literal["customer", "carrier"]
    id: Id
    name: str
    channels: Annotated[int, msgspec.Meta(ge=0)] | UnsetType = UNSET
    cps: Annotated[float, msgspec.Meta(ge=0)] | UnsetType = UNSET
    balance: float | UnsetType = UNSET
    currency: str | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class CallStart(_Event, tag="call.start"):
    call_id: Id
    customer: Id
    cli: str
    dst: str


class CallAttempt(_Event, tag="call.attempt"):
    call_id: Id
    attempt: AttemptNo
    carrier: Id
    route: str


class CallProgress(_Event, tag="call.progress"):
    call_id: Id
    attempt: AttemptNo
    code: Literal[180, 183]


class CallAnswer(_Event, tag="call.answer"):
    call_id: Id
    attempt: AttemptNo


class CallDtmf(_Event, tag="call.dtmf"):
    call_id: Id
    digit: str


class CallAttemptEnd(_Event, tag="call.attempt_end"):
    call_id: Id
    attempt: AttemptNo
    code: SipCode
    reason: str | None = None


class CallEnd(_Event, tag="call.end"):
    call_id: Id
    code: SipCode
    duration: Seconds
    billed: Seconds | UnsetType = UNSET
    charge: float | UnsetType = UNSET
    cost: float | UnsetType = UNSET
    hangup: Literal["caller", "callee", "switch"] | UnsetType = UNSET


RejectReason = Literal["channel_limit", "cps_limit", "balance", "disabled", "no_route"]


class CallReject(_Event, tag="call.reject"):
    customer: Id
    cli: str
    dst: str
    code: SipCode
    reason: RejectReason


class Heartbeat(msgspec.Struct, tag_field="type", tag="heartbeat", gc=False):
    ts: float
    last_seq: int


class Gap(msgspec.Struct, tag_field="type", tag="gap", gc=False):
    from_: Annotated[int, msgspec.Meta(ge=1)] = msgspec.field(name="from")
    to: Annotated[int, msgspec.Meta(ge=1)] = 0


class ControlAck(msgspec.Struct, tag_field="type", tag="control.ack", gc=False):
    id: str
    ok: bool
    error: str | None = None


class Subscribe(msgspec.Struct, tag_field="type", tag="subscribe"):
    since: Annotated[int, msgspec.Meta(ge=0)]


class Control(msgspec.Struct, tag_field="type", tag="control", omit_defaults=True):
    """disable/enable an account (v1); `hangup` of one call by `call_id` is noc's extension, as
    v1 has no way to end a call: a server that does not know it answers ok=false."""

    id: str
    action: Literal["disable", "enable", "hangup"]
    kind: Literal["customer", "carrier"] | None = None
    account: Id | None = None
    call_id: Id | None = None
    reason: str = ""
    until: float | None = None


CallEvent = (
    CallStart | CallAttempt | CallProgress | CallAnswer | CallDtmf | CallAttemptEnd | CallEnd
)
Event = Account | CallReject | CallEvent
ServerFrame = Event | Heartbeat | Gap | ControlAck
ClientFrame = Subscribe | Control

EVENT_TYPES = frozenset(
    cls.__struct_config__.tag
    for cls in (
        Account,
        CallStart,
        CallAttempt,
        CallProgress,
        CallAnswer,
        CallDtmf,
        CallAttemptEnd,
        CallEnd,
        CallReject,
        Heartbeat,
        Gap,
        ControlAck,
    )
)

_IDENTIFIER_FIELDS = {
    cls: tuple(
        field.name
        for field in msgspec.structs.fields(cls)
        if field.type is Id or field.type == Id | None
    )
    for cls in (*typing.get_args(Event), Control)
}
# An unprintable character as raw UTF-8: its first bytes, or for rare scripts the lead byte only
# (a frame it finds wrongly just takes the slower check).
_RAW_UNPRINTABLE = re.compile(
    rb"\x7f|\xc2[\x80-\x9f\xad]|[\xd8\xdb\xdc\xe0\xe1\xf0\xf3]|\xe2\x80[\x8b-\x8f\xa8-\xae]"
    rb"|\xe2\x81[\xa0-\xaf]|\xef\xbb\xbf|\xef\xbf[\xb9-\xbb]"
)
_frame_decoder = msgspec.json.Decoder(list[ServerFrame] | ServerFrame)
_item_decoder = msgspec.json.Decoder(ServerFrame)
_raw_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_raw_decoder = msgspec.json.Decoder(msgspec.Raw)
_client_decoder = msgspec.json.Decoder(ClientFrame)
_encoder = msgspec.json.Encoder()


class Rejected(msgspec.Struct, gc=False):
    """One piece of a frame that could not be used: its raw text, why, and its seq if it had one."""

    raw: str
    reason: str
    seq: int | None = None


class Oversized(msgspec.Struct, gc=False):
    """A frame over MAX_FRAME_BYTES as the client kept it: its size and first bytes only (the
    rest was read and dropped as it came, never held)."""

    size: int
    head: bytes


HEAD_BYTES = 512  # what is kept of an oversized frame
# What a frame may fail to decode with: a bad one, or one nested too deeply to follow (msgspec
# recurses; 100,000 nested arrays exhaust the interpreter's stack).
BAD_FRAME = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)


def decode_frame(data: bytes | str | Oversized) -> list[ServerFrame | Rejected]:
    """The items a frame holds, in order, each decoded or, if bad, a Rejected with the reason.

    The whole frame is decoded in one call (the fast path); only when that fails is it taken
    apart element by element, so one bad event costs its batch a slower decode, never its loss.
    """
    if isinstance(data, str):
        data = data.encode()
    elif isinstance(data, Oversized):
        return [_oversized(data.size, data.head)]
    if len(data) > MAX_FRAME_BYTES:
        return [_oversized(len(data), data[:HEAD_BYTES])]
    try:
        decoded = _frame_decoder.decode(data)
        decoded = decoded if isinstance(decoded, list) else [decoded]
        if _may_hold_unprintable(data):
            for item in decoded:
                _check_identifiers(item)
    except BAD_FRAME:
        return _decode_slowly(data)
    return decoded


def _oversized(size: int, head: bytes) -> Rejected:
    return Rejected(_whole(head) + ("…" if size > len(head) else ""),
                    f"frame of {size:,} bytes refused: over the 1 MiB limit (its first "
                    f"{len(head):,} bytes kept)")


def _may_hold_unprintable(data: bytes) -> bool:
    """JSON text carries an unprintable character escaped (a backslash) or raw: as DEL, or as
    the UTF-8 of a C1, format or separator character, looked for only in text that is not ASCII."""
    return b"\\" in data or (
        b"\x7f" in data if data.isascii() else _RAW_UNPRINTABLE.search(data) is not None)


def _check_identifiers(item: msgspec.Struct) -> None:
    """Raise ValidationError, as a decoder would, if an identifier has an unprintable character."""
    for name in _IDENTIFIER_FIELDS.get(type(item), ()):
        value = getattr(item, name)
        if value is not None and UNPRINTABLE.search(value):
            raise msgspec.ValidationError(
                f"Expected `str` of printable characters, got {value!r} - at `$.{name}`"
            )


def _decode_slowly(data: bytes) -> list[ServerFrame | Rejected]:
    try:
        pieces = _raw_decoder.decode(data)  # checks it is one JSON value
        if data.lstrip().startswith(b"["):
            pieces = _raw_list_decoder.decode(data)
    except BAD_FRAME as error:
        return [Rejected(_whole(data), f"not JSON: {_why(error)}")]
    items: list[ServerFrame | Rejected] = []
    for piece in pieces if isinstance(pieces, list) else [pieces]:
        piece_bytes = bytes(piece)
        try:
            item = _item_decoder.decode(piece_bytes)
            _check_identifiers(item)
            items.append(item)
        except BAD_FRAME as error:
            items.append(
                Rejected(_whole(piece_bytes), _reason(piece_bytes, error), _seq_of(piece_bytes))
            )
    return items


def _why(error: Exception) -> str:
    return "nested too deeply" if isinstance(error, RecursionError) else str(error)


def _reason(piece: bytes, error: Exception) -> str:
    try:
        obj = msgspec.json.decode(piece)
    except BAD_FRAME:
        return f"not JSON: {_why(error)}"
    if not isinstance(obj, dict):
        return f"not an event object: {type(obj).__name__}"
    kind = obj.get("type")
    if kind is None:
        return "missing field `type`"
    if kind not in EVENT_TYPES:
        return f"unknown event type {str(kind)[:64]!r}"
    return f"bad {kind}: {error}"


def _seq_of(piece: bytes) -> int | None:
    try:
        obj = msgspec.json.decode(piece)
    except BAD_FRAME:
        return None
    seq = obj.get("seq") if isinstance(obj, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq > 0 else None


def _whole(data: bytes) -> str:
    """The raw text kept in quarantine: all of it, so that nothing is lost."""
    return data.decode("utf-8", "replace")


def encode(message: msgspec.Struct | dict | list) -> bytes:
    return _encoder.encode(message)


def decode_client_frame(data: bytes | str) -> ClientFrame:
    """Decode what a client sends (the simulator's side); raises msgspec errors on bad input."""
    frame = _client_decoder.decode(data)
    _check_identifiers(frame)
    return frame
