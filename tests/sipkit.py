"""SIP user agents in Python over loopback UDP, for testing noc against a real Kamailio.

A `SipAgent` is one UDP endpoint that can place calls (a customer's switch) and answer them (a
carrier) as its `plan` says: ring with 180 or 183 after a delay, answer 200, 486, 404 or 503, or
never answer; send DTMF as SIP INFO; hang up after a while or wait for the other side. It keeps a
record of every call as it saw it, which is what a test compares noc's report with.

Only what a class-4 call needs is implemented: INVITE with retransmission until a response,
digest auth (407), ACK, CANCEL, BYE and INFO within the dialog over the Record-Route set, and
200 OK repeated until its ACK comes. A BYE is answered after `bye_delay` (30 ms), as a phone
across a network would: Kamailio 5.6 can lose the BYE to the callee of a `dlg.end_dlg` when the
caller answers the first BYE within microseconds (see ../shared/kamailio-notes.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

T1 = 0.5  # RFC 3261 retransmission interval
COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
           "l": "content-length", "c": "content-type"}


@dataclass
class Answer:
    """What a carrier does with an INVITE."""

    code: int | None = 200  # the final answer; None: never answers (the attempt times out)
    ring: int | None = 180  # 180 or 183 before it, or None (and no code either: not even 100)
    ring_after: float = 0.05
    answer_after: float = 0.15  # seconds after the INVITE
    talk: float | None = None  # the callee hangs up this long after answering; None: it waits
    # for the caller, the switch or the record's hang_up()
    dtmf: str = ""  # digits sent as SIP INFO once answered
    release: asyncio.Event | None = None  # if given, the final answer also waits for it


@dataclass
class CallRecord:
    """One call as this agent saw it; times are time.time() seconds."""

    call_id: str
    role: str  # "caller" or "callee"
    dst: str
    cli: str
    start: float
    progress: float | None = None  # the first 18x
    progress_code: int | None = None
    code: int | None = None  # the final answer
    reason: str = ""  # its reason phrase
    answered: float | None = None
    ended: float | None = None
    hangup: str | None = None  # who ended it: "caller" or "callee" (as this agent saw it)
    byes_received: int = 0
    sent_bye: bool = False
    cancelled: bool = False  # a CANCEL ended it before any answer
    dtmf: str = ""  # digits received in INFO
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    hang_up_now: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def hang_up(self) -> None:
        """Make this side hang up the call now (if it is still talking)."""
        self.hang_up_now.set()

    async def talk(self, seconds: float | None) -> bool:
        """Wait while the call goes on, at most `seconds` (None: until the other side or the
        test ends it); True if this side should now hang up."""
        done, asked = (asyncio.ensure_future(event.wait())
                       for event in (self.done, self.hang_up_now))
        try:
            await asyncio.wait({done, asked}, timeout=seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            done.cancel()
            asked.cancel()
        return self.ended is None

    @property
    def duration(self) -> float:
        return self.ended - self.answered if self.answered and self.ended else 0.0


@dataclass
class Message:
    first_line: str
    headers: list[tuple[str, str]]
    body: str = ""

    @property
    def is_request(self) -> bool:
        return not self.first_line.startswith("SIP/2.0")

    @property
    def method(self) -> str:
        return self.first_line.split()[0] if self.is_request else self.cseq_method

    @property
    def status(self) -> int:
        return int(self.first_line.split()[1])

    @property
    def uri(self) -> str:
        return self.first_line.split()[1]

    def get(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def all(self, name: str) -> list[str]:
        """Every value of a header, comma-separated lists split (Via, Record-Route)."""
        values = []
        for key, value in self.headers:
            if key == name.lower():
                values.extend(part.strip() for part in re.split(r",(?![^<]*>)", value))
        return values

    @property
    def call_id(self) -> str:
        return self.get("call-id") or ""

    @property
    def cseq(self) -> int:
        return int((self.get("cseq") or "0").split()[0])

    @property
    def cseq_method(self) -> str:
        return (self.get("cseq") or "0 X").split()[1]

    @property
    def branch(self) -> str:
        found = re.search(r"branch=([^;,\s]+)", self.all("via")[0]) if self.all("via") else None
        return found[1] if found else ""

    def tag(self, header: str) -> str | None:
        found = re.search(r";\s*tag=([^;>\s]+)", self.get(header) or "")
        return found[1] if found else None

    def encode(self) -> bytes:
        lines = [self.first_line]
        lines += [f"{_title(key)}: {value}" for key, value in self.headers
                  if key != "content-length"]
        lines.append(f"Content-Length: {len(self.body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + self.body).encode()


def _title(name: str) -> str:
    return {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate"}.get(
        name, "-".join(part.capitalize() for part in name.split("-")))


def parse(data: bytes) -> Message:
    text = data.decode("utf-8", "replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # a folded header line
            key, value = headers[-1]
            headers[-1] = (key, value + " " + line.strip())
            continue
        key, _, value = line.partition(":")
        key = key.strip().lower()
        headers.append((COMPACT.get(key, key), value.strip()))
    return Message(lines[0], headers, body)


def uri_address(uri: str) -> tuple[str, int]:
    """(host, port) of a SIP URI, in <> or bare, with or without user and parameters."""
    found = re.search(r"sip:(?:[^@;>]*@)?([^:;>]+)(?::(\d+))?", uri)
    if not found:
        raise ValueError(f"not a SIP URI: {uri!r}")
    return found[1], int(found[2] or 5060)


def _angle(value: str) -> str:
    found = re.search(r"<([^>]+)>", value)
    return found[1] if found else value.split(";")[0].strip()


def _new_tag() -> str:
    return uuid.uuid4().hex[:10]


def _new_branch() -> str:
    return "z9hG4bK" + uuid.uuid4().hex[:16]


@dataclass
class _Dialog:
    """What an agent needs to send requests within a call and to answer them."""

    record: CallRecord
    local_tag: str
    remote_tag: str | None = None
    local_uri: str = ""
    remote_uri: str = ""
    remote_target: str = ""
    route_set: list[str] = field(default_factory=list)
    cseq: int = 1
    invite: Message | None = None  # as received (callee) or sent (caller)
    final_sent: Message | None = None  # the callee's final answer, repeated until the ACK
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False
    tasks: list[asyncio.Task] = field(default_factory=list)


class SipAgent(asyncio.DatagramProtocol):
    """One SIP endpoint on 127.0.0.1 (caller, carrier, or both).

    Args:
        name: for the records and the User-Agent header.
        plan: how to answer an INVITE, given its dialled number (None: 403 to every INVITE).
        bye_delay: seconds before answering a BYE.
    """

    def __init__(self, name: str, *, plan: Callable[[str], Answer] | None = None,
                 bye_delay: float = 0.03) -> None:
        self.name = name
        self.plan = plan
        self.bye_delay = bye_delay
        self.port = 0
        self.records: list[CallRecord] = []
        self.invites_received = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._dialogs: dict[str, _Dialog] = {}
        self._waiters: dict[tuple[str, int, str], asyncio.Queue[Message]] = {}
        self._seen_invites: dict[str, _Dialog] = {}  # by branch: retransmissions
        self._cids = itertools.count(1)

    async def start(self, port: int = 0) -> SipAgent:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", port))
        self.port = self._transport.get_extra_info("sockname")[1]
        return self

    async def stop(self) -> None:
        for dialog in self._dialogs.values():
            for task in dialog.tasks:
                task.cancel()
            await asyncio.gather(*dialog.tasks, return_exceptions=True)
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # Placing calls ----------------------------------------------------------------------------

    async def call(self, proxy: str, dst: str, *, cli: str = "15550001000",
                   talk: float | None = 0.5,
                   auth: tuple[str, str] | None = None, cancel_after: float | None = None,
                   dtmf: str = "") -> CallRecord:
        """Place a call through `proxy` (IP:PORT) and see it to its end; return its record.

        The caller hangs up `talk` seconds after the answer (None: when the record's `hang_up()`
        is called) unless the callee (or the switch) does first; with `cancel_after` it cancels
        the call if unanswered by then.
        """
        call_id = f"{self.name}-{next(self._cids)}-{uuid.uuid4().hex[:8]}"
        record = CallRecord(call_id, "caller", dst, cli, time.time())
        self.records.append(record)
        host = proxy.split(":")[0]
        dialog = _Dialog(record, _new_tag(), local_uri=f"sip:{cli}@127.0.0.1",
                         remote_uri=f"sip:{dst}@{host}")
        self._dialogs[call_id] = dialog
        request_uri = f"sip:{dst}@{proxy}"
        invite = self._request("INVITE", request_uri, dialog, body=_sdp(self.port))
        queue = self._expect(call_id, dialog.cseq, "INVITE")
        try:
            final = await self._invite(invite, proxy, queue, dialog, cancel_after)
            if final.status == 407 and auth:
                self._ack_failure(invite, final, proxy)
                record.start = time.time()  # the call starts with the INVITE the switch takes
                dialog.cseq += 1
                invite = self._request("INVITE", request_uri, dialog, body=_sdp(self.port),
                                       extra=[("proxy-authorization",
                                               _digest(final, auth, "INVITE", request_uri))])
                queue = self._expect(call_id, dialog.cseq, "INVITE")
                final = await self._invite(invite, proxy, queue, dialog, cancel_after)
            record.code = final.status
            record.reason = final.first_line.split(" ", 2)[2] if final.first_line.count(" ") > 1 \
                else ""
            if final.status >= 300:
                self._ack_failure(invite, final, proxy)
                record.ended = time.time()
                record.done.set()
                return record
            record.answered = record.answered or time.time()
            dialog.remote_tag = final.tag("to")
            dialog.remote_target = _angle(final.get("contact") or "")
            dialog.route_set = [_angle(r) for r in reversed(final.all("record-route"))]
            self._send_in_dialog("ACK", dialog, cseq=dialog.cseq)
            for digit in dtmf:
                await self._request_in_dialog("INFO", dialog, _dtmf_body(digit),
                                              "application/dtmf-relay")
            if await record.talk(talk):
                record.hangup, record.sent_bye, record.ended = "caller", True, time.time()
                await self._request_in_dialog("BYE", dialog)
                record.done.set()
            return record
        finally:
            self._waiters.pop((call_id, 1, "INVITE"), None)
            self._waiters.pop((call_id, 2, "INVITE"), None)

    async def _invite(self, invite: Message, proxy: str, queue: asyncio.Queue[Message],
                      dialog: _Dialog, cancel_after: float | None) -> Message:
        """Send an INVITE, retransmitting until a response; return its final response."""
        record = dialog.record
        self._send(invite, proxy)
        interval, responded = T1, False
        deadline = time.monotonic() + cancel_after if cancel_after is not None else None
        cancelled = False
        while True:
            timeout = interval if not responded else 1.0
            if deadline is not None and not cancelled:
                timeout = max(0.0, min(timeout, deadline - time.monotonic()))
            try:
                async with asyncio.timeout(timeout):
                    response = await queue.get()
            except TimeoutError:
                if deadline is not None and not cancelled and time.monotonic() >= deadline:
                    cancelled = record.cancelled = True
                    self._send(self._cancel(invite), proxy)
                elif not responded:
                    self._send(invite, proxy)
                    interval = min(interval * 2, 4.0)
                continue
            responded = True
            if response.status < 200:
                if response.status in (180, 183) and record.progress is None:
                    record.progress, record.progress_code = time.time(), response.status
                continue
            if 200 <= response.status < 300:
                record.answered = time.time()
            return response

    def _cancel(self, invite: Message) -> Message:
        headers = [(k, v) for k, v in invite.headers if k in ("via", "from", "to", "call-id",
                                                             "max-forwards")]
        headers.append(("cseq", f"{invite.cseq} CANCEL"))
        return Message(f"CANCEL {invite.uri} SIP/2.0", headers)

    def _ack_failure(self, invite: Message, final: Message, proxy: str) -> None:
        headers = [(k, v) for k, v in invite.headers if k in ("via", "from", "call-id",
                                                             "max-forwards")]
        headers += [("to", final.get("to") or ""), ("cseq", f"{invite.cseq} ACK")]
        self._send(Message(f"ACK {invite.uri} SIP/2.0", headers), proxy)

    # Answering calls --------------------------------------------------------------------------

    def _on_invite(self, invite: Message, source: tuple[str, int]) -> None:
        known = self._seen_invites.get(invite.branch)
        if known is not None:  # a retransmission: say again what was said
            if known.final_sent is not None:
                self._send(known.final_sent, source)
            return
        self.invites_received += 1
        dst = re.match(r"sip:([^@]*)@", invite.uri)
        number = dst[1] if dst else ""
        cli = re.search(r"sip:([^@]*)@", invite.get("from") or "")
        record = CallRecord(invite.call_id, "callee", number, cli[1] if cli else "", time.time())
        self.records.append(record)
        dialog = _Dialog(record, _new_tag(), invite=invite,
                         remote_tag=invite.tag("from"),
                         remote_target=_angle(invite.get("contact") or ""),
                         route_set=[_angle(r) for r in invite.all("record-route")],
                         local_uri=_angle(invite.get("to") or ""),
                         remote_uri=_angle(invite.get("from") or ""))
        self._dialogs[invite.call_id] = dialog
        self._seen_invites[invite.branch] = dialog
        answer = self.plan(number) if self.plan else Answer(code=403, ring=None)
        if answer.code is None and answer.ring is None:
            return  # a carrier that is down: not even 100 Trying
        self._send(self._response(invite, 100, "Trying", tag=None), source)
        dialog.tasks.append(asyncio.create_task(self._answer(dialog, answer, source)))

    async def _answer(self, dialog: _Dialog, answer: Answer, source: tuple[str, int]) -> None:
        invite, record = dialog.invite, dialog.record
        started = time.monotonic()
        if answer.ring is not None:
            await asyncio.sleep(answer.ring_after)
            if record.code is not None:
                return  # cancelled meanwhile
            self._send(self._response(invite, answer.ring, _REASONS[answer.ring], dialog), source)
            record.progress, record.progress_code = time.time(), answer.ring
        if answer.code is None:
            return  # a carrier that never answers
        await asyncio.sleep(max(0.0, answer.answer_after - (time.monotonic() - started)))
        if answer.release is not None:
            await answer.release.wait()
        if record.code is not None:
            return
        record.code = answer.code
        final = self._response(invite, answer.code, _REASONS.get(answer.code, "Answer"), dialog,
                               body=_sdp(self.port) if answer.code == 200 else "")
        dialog.final_sent = final
        if answer.code >= 300:
            self._send(final, source)
            record.ended = time.time()
            record.done.set()
            return
        record.answered = time.time()
        interval = T1
        while not dialog.acked.is_set():  # a 2xx is repeated until its ACK
            self._send(final, source)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await dialog.acked.wait()
            interval = min(interval * 2, 4.0)
        for digit in answer.dtmf:
            if record.done.is_set():
                return
            await self._request_in_dialog("INFO", dialog, _dtmf_body(digit),
                                          "application/dtmf-relay")
        if await record.talk(answer.talk):
            record.hangup, record.sent_bye, record.ended = "callee", True, time.time()
            await self._request_in_dialog("BYE", dialog)
            record.done.set()

    def _on_cancel(self, cancel: Message, source: tuple[str, int]) -> None:
        self._send(self._response(cancel, 200, "OK", tag=None), source)
        dialog = self._seen_invites.get(cancel.branch)
        if dialog is None or dialog.record.code is not None:
            return
        dialog.record.code, dialog.record.cancelled = 487, True
        dialog.final_sent = self._response(dialog.invite, 487, "Request Terminated", dialog)
        self._send(dialog.final_sent, source)
        dialog.record.ended = time.time()
        dialog.record.done.set()

    # Within a dialog --------------------------------------------------------------------------

    def _on_request_in_dialog(self, request: Message, source: tuple[str, int]) -> None:
        dialog = self._dialogs.get(request.call_id)
        if request.method == "ACK":
            if dialog is not None:
                dialog.acked.set()
            return
        if dialog is None:
            self._send(self._response(request, 481, "Call/Transaction Does Not Exist"), source)
            return
        if request.method == "INFO":
            found = re.search(r"Signal\s*=\s*(\S)", request.body)
            if found:
                dialog.record.dtmf += found[1]
            self._send(self._response(request, 200, "OK"), source)
        elif request.method == "BYE":
            record = dialog.record
            record.byes_received += 1
            if record.ended is None:  # the call ended as the BYE came, however late the 200
                record.hangup = "callee" if record.role == "caller" else "caller"
                record.ended = time.time()
            task = asyncio.create_task(self._answer_bye(dialog, request, source))
            dialog.tasks.append(task)
        else:
            self._send(self._response(request, 200, "OK"), source)

    async def _answer_bye(self, dialog: _Dialog, bye: Message, source: tuple[str, int]) -> None:
        await asyncio.sleep(self.bye_delay)
        self._send(self._response(bye, 200, "OK"), source)
        dialog.record.done.set()

    def _send_in_dialog(self, method: str, dialog: _Dialog, *, cseq: int | None = None,
                        body: str = "", content_type: str = "") -> Message:
        if cseq is None:
            dialog.cseq += 1
            cseq = dialog.cseq
        target = dialog.remote_target
        headers = [("route", ", ".join(f"<{r}>" for r in dialog.route_set))] if dialog.route_set \
            else []
        request = self._request(method, target, dialog, cseq=cseq, extra=headers, body=body,
                                content_type=content_type)
        next_hop = dialog.route_set[0] if dialog.route_set else target
        host, port = uri_address(next_hop)
        self._send(request, f"{host}:{port}")
        return request

    async def _request_in_dialog(self, method: str, dialog: _Dialog, body: str = "",
                                 content_type: str = "") -> Message | None:
        """Send a request within the dialog, retransmitting until a final response."""
        dialog.cseq += 1
        queue = self._expect(dialog.record.call_id, dialog.cseq, method)
        try:
            interval = T1
            for _ in range(7):
                self._send_in_dialog(method, dialog, cseq=dialog.cseq, body=body,
                                     content_type=content_type)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        while True:
                            response = await queue.get()
                            if response.status >= 200:
                                return response
                interval = min(interval * 2, 4.0)
            return None
        finally:
            self._waiters.pop((dialog.record.call_id, dialog.cseq, method), None)

    # Messages ---------------------------------------------------------------------------------

    def _request(self, method: str, uri: str, dialog: _Dialog, *, cseq: int | None = None,
                 extra: list[tuple[str, str]] | None = None, body: str = "",
                 content_type: str = "application/sdp") -> Message:
        to = f"<{dialog.remote_uri}>" + (f";tag={dialog.remote_tag}" if dialog.remote_tag else "")
        headers = [
            ("via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch={_new_branch()};rport"),
            ("max-forwards", "70"),
            ("from", f"<{dialog.local_uri}>;tag={dialog.local_tag}"),
            ("to", to),
            ("call-id", dialog.record.call_id),
            ("cseq", f"{cseq if cseq is not None else dialog.cseq} {method}"),
            ("contact", f"<sip:{self.name}@127.0.0.1:{self.port}>"),
            ("user-agent", f"noc-test-{self.name}"),
            *(extra or []),
        ]
        if body:
            headers.append(("content-type", content_type or "application/sdp"))
        return Message(f"{method} {uri} SIP/2.0", headers, body)

    def _response(self, request: Message, status: int, reason: str,
                  dialog: _Dialog | None = None, *, tag: str | None = "", body: str = ""
                  ) -> Message:
        to = request.get("to") or ""
        if tag is not None and ";tag=" not in to:
            to += f";tag={tag or (dialog.local_tag if dialog else _new_tag())}"
        headers = [("via", via) for via in request.all("via")]
        headers += [("from", request.get("from") or ""), ("to", to),
                    ("call-id", request.call_id), ("cseq", request.get("cseq") or "")]
        if request.method == "INVITE" and status > 100:
            headers += [("record-route", rr) for rr in request.all("record-route")]
            headers.append(("contact", f"<sip:{self.name}@127.0.0.1:{self.port}>"))
        if body:
            headers.append(("content-type", "application/sdp"))
        return Message(f"SIP/2.0 {status} {reason}", headers, body)

    def _expect(self, call_id: str, cseq: int, method: str) -> asyncio.Queue[Message]:
        queue: asyncio.Queue[Message] = asyncio.Queue()
        self._waiters[(call_id, cseq, method)] = queue
        return queue

    def _send(self, message: Message, to: str | tuple[str, int]) -> None:
        if isinstance(to, str):
            host, port = to.rsplit(":", 1)
            to = (host, int(port))
        if self._transport is not None:
            self._transport.sendto(message.encode(), to)

    def datagram_received(self, data: bytes, source: tuple[str, int]) -> None:
        try:
            message = parse(data)
        except (ValueError, IndexError):
            return
        if not message.is_request:
            queue = self._waiters.get((message.call_id, message.cseq, message.cseq_method))
            if queue is not None:
                queue.put_nowait(message)
            return
        # Requests are answered where the top Via says (rport: where it came from).
        if message.method == "INVITE" and message.tag("to") is None:
            self._on_invite(message, source)
        elif message.method == "CANCEL":
            self._on_cancel(message, source)
        else:
            self._on_request_in_dialog(message, source)


_REASONS = {180: "Ringing", 183: "Session Progress", 200: "OK", 404: "Not Found",
            480: "Temporarily Unavailable", 486: "Busy Here", 500: "Server Internal Error",
            503: "Service Unavailable", 403: "Forbidden"}


def _sdp(port: int) -> str:
    return ("v=0\r\no=noc 1 1 IN IP4 127.0.0.1\r\ns=noc\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port + 1} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def _dtmf_body(digit: str) -> str:
    return f"Signal={digit}\r\nDuration=160\r\n"


def _digest(challenge: Message, auth: tuple[str, str], method: str, uri: str) -> str:
    """A Proxy-Authorization answering a 407 (RFC 2617, MD5, with qop=auth if offered)."""
    header = challenge.get("proxy-authenticate") or ""
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', header))
    user, password = auth
    realm, nonce = params.get("realm", ""), params.get("nonce", "")

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"{method}:{uri}")
    answer = (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
              'algorithm=MD5')
    if "auth" in params.get("qop", "").split(","):
        cnonce, nc = uuid.uuid4().hex[:8], "00000001"
        response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        return answer + f', response="{response}", qop=auth, nc={nc}, cnonce="{cnonce}"'
    return answer + f', response="{md5(f"{ha1}:{nonce}:{ha2}")}"'
