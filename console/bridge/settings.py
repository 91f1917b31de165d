"""The Kamailio bridge's config file (TOML): where Kamailio and the feed listen, the accounts the
switch knows, and the per-prefix rates that give each call its charge and cost.

    [kamailio]
    sip = "127.0.0.1:5060"        # where Kamailio takes calls (SIP over UDP)
    evapi = "127.0.0.1:8448"      # its event socket, which the bridge reads
    rpc = "127.0.0.1:5071"        # its JSON-RPC over HTTP, by which the bridge controls it
    reply_timeout = 2.0           # s: a carrier that sends nothing this long fails with 408
    ring_timeout = 60.0           # s: a carrier that rings this long unanswered fails with 408

    [feed]
    listen = "127.0.0.1:8765"     # noc subscribes to ws://127.0.0.1:8765/feed
    token = "..."                 # NOC_FEED_TOKEN: the bearer token clients must send
    cert = "/etc/noc/bridge.pem"  # with key: wss:// (noc trusts a private CA by feed.ca_file)
    key = "/etc/noc/bridge.key"

    [buffer]
    path = "/var/lib/noc/kamailio-bridge.db"   # what was sent, for noc to resume from
    keep_days = 7

    [billing]
    currency = "USD"
    increment = 1                 # s: billed time is the talk time rounded up to this

    [[customer]]
    id = "acme"                   # letters, digits, '.', '_' or '-'
    name = "Acme Telecom"
    addresses = ["192.0.2.10", "192.0.2.11:5060"]  # known by source address...
    user = "acme"                 # ...or by digest auth user and password
    password = "..."
    channels = 30                 # calls at once (none: no limit)
    cps = 5                       # new calls per second (none: no limit)
    increment = 60                # its own billing increment (default: [billing])
    enabled = true

    [[carrier]]
    id = "atlas"
    name = "Atlas Voice"
    address = "198.51.100.7:5060"
    enabled = true

    [[route]]
    prefix = "44"                 # the longest prefix of the dialled number wins
    carriers = ["atlas", "borealis"]   # tried in this order; failover on 408 and 5xx
    price = 0.012                 # per minute, what the customer is charged
    cost = { atlas = 0.006, borealis = 0.008 }   # per minute, what each carrier is paid

Every problem in the file is reported at once, each naming its table and field.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from pathlib import Path

import msgspec
import platformdirs

APP = "noc"
ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
PREFIX = re.compile(r"[0-9]{1,32}")


class BridgeConfigError(Exception):
    """The bridge's config file is wrong; str() says where and what, one problem a line."""


class KamailioSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    sip: str = "127.0.0.1:5060"
    evapi: str = "127.0.0.1:8448"
    rpc: str = "127.0.0.1:5071"
    reply_timeout: float = 2.0
    ring_timeout: float = 60.0
    children: int = 4


class FeedSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    listen: str = "127.0.0.1:8765"
    token: str | None = None
    cert: str = ""  # PEM certificate chain and its key: serve wss:// instead of ws://
    key: str = ""


class BufferSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: str = ""
    keep_days: float = 7.0


class BillingSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    currency: str = "USD"
    increment: int = 1


class Customer(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: str
    name: str = ""
    addresses: list[str] = msgspec.field(default_factory=list)
    user: str = ""
    password: str = ""
    channels: int | None = None
    cps: int | None = None
    increment: int | None = None
    enabled: bool = True


class Carrier(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: str
    name: str = ""
    address: str
    enabled: bool = True


class Route(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    prefix: str
    carriers: list[str]
    price: float = 0.0
    cost: dict[str, float] = msgspec.field(default_factory=dict)


class BridgeSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    kamailio: KamailioSettings = msgspec.field(default_factory=KamailioSettings)
    feed: FeedSettings = msgspec.field(default_factory=FeedSettings)
    buffer: BufferSettings = msgspec.field(default_factory=BufferSettings)
    billing: BillingSettings = msgspec.field(default_factory=BillingSettings)
    customer: list[Customer] = msgspec.field(default_factory=list)
    carrier: list[Carrier] = msgspec.field(default_factory=list)
    route: list[Route] = msgspec.field(default_factory=list)

    @property
    def buffer_path(self) -> Path:
        if self.buffer.path:
            return Path(self.buffer.path).expanduser()
        return Path(platformdirs.user_data_dir(APP)) / "kamailio-bridge.db"

    def customer_by_id(self, account: str) -> Customer | None:
        return next((c for c in self.customer if c.id == account), None)

    def carrier_by_id(self, account: str) -> Carrier | None:
        return next((c for c in self.carrier if c.id == account), None)

    def route_by_prefix(self, prefix: str) -> Route | None:
        return next((r for r in self.route if r.prefix == prefix), None)

    def increment_of(self, customer: str) -> int:
        found = self.customer_by_id(customer)
        if found is not None and found.increment is not None:
            return found.increment
        return self.billing.increment


def default_path() -> Path:
    return Path(os.environ.get("NOC_BRIDGE_CONFIG")
                or Path(platformdirs.user_config_dir(APP)) / "kamailio-bridge.toml")


def load(path: Path | None = None, environ: dict[str, str] | None = None) -> BridgeSettings:
    """Read and check the file (NOC_FEED_TOKEN overrides feed.token); raise BridgeConfigError."""
    path = path or default_path()
    environ = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BridgeConfigError(f"{path}: no such file (write one: see the README's "
                                "'Run against Kamailio')") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BridgeConfigError(f"{path}: cannot read it: {error}") from None
    return parse(text, str(path), environ)


def parse(text: str, where: str = "bridge config",
          environ: dict[str, str] | None = None) -> BridgeSettings:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BridgeConfigError(f"{where}: {error}") from None
    try:
        settings = msgspec.convert(data, BridgeSettings)
    except msgspec.ValidationError as error:
        raise BridgeConfigError(f"{where}: {_readable(str(error))}") from None
    if environ and environ.get("NOC_FEED_TOKEN"):
        settings.feed.token = environ["NOC_FEED_TOKEN"]
    problems = problems_of(settings)
    if problems:
        raise BridgeConfigError(f"{where} is not valid:\n  " + "\n  ".join(problems))
    return settings


def _readable(message: str) -> str:
    """msgspec's `... - at `$.customer[1].cps`` as `customer[2].cps: ...` (tables count from 1)."""
    found = re.search(r"(.*) - at `\$\.?(.*)`$", message)
    if not found:
        return message
    place = re.sub(r"\[(\d+)\]", lambda m: f"[{int(m[1]) + 1}]", found[2])
    return f"{place}: {found[1]}" if place else found[1]


def problems_of(settings: BridgeSettings) -> list[str]:
    """Everything wrong with the settings that their types do not already say."""
    problems: list[str] = []
    k = settings.kamailio
    for field, value in (("sip", k.sip), ("evapi", k.evapi), ("rpc", k.rpc)):
        problems += [f"kamailio.{field}: {p}" for p in _address_problems(value, need_port=True)]
    for field, value in (("reply_timeout", k.reply_timeout), ("ring_timeout", k.ring_timeout)):
        if not 0.1 <= value <= 3600:
            problems.append(f"kamailio.{field}: {value} is not between 0.1 and 3600 seconds")
    if not 1 <= k.children <= 64:
        problems.append(f"kamailio.children: {k.children} is not between 1 and 64")
    problems += [f"feed.listen: {p}" for p in _address_problems(settings.feed.listen, True)]
    if bool(settings.feed.cert) != bool(settings.feed.key):
        problems.append("feed: give both cert and key (for wss://), or neither")
    if settings.buffer.keep_days <= 0:
        problems.append("buffer.keep_days: must be more than 0")
    if not re.fullmatch(r"[A-Z]{3}", settings.billing.currency):
        problems.append(f"billing.currency: {settings.billing.currency!r} is not an ISO 4217 "
                        "code like 'USD'")
    if settings.billing.increment < 1:
        problems.append("billing.increment: must be 1 second or more")
    problems += _account_problems(settings)
    problems += _route_problems(settings)
    return problems


def _account_problems(settings: BridgeSettings) -> list[str]:
    problems: list[str] = []
    addresses: dict[str, str] = {}
    users: dict[str, str] = {}
    for kind, accounts in (("customer", settings.customer), ("carrier", settings.carrier)):
        seen: set[str] = set()
        for number, account in enumerate(accounts, start=1):
            place = f"{kind}[{number}]" + (f" ({account.id})" if account.id else "")
            if not ID.fullmatch(account.id):
                problems.append(f"{place}.id: {account.id!r} must be 1 to 64 letters, digits, "
                                "'.', '_' or '-'")
            elif account.id in seen:
                problems.append(f"{place}.id: {account.id!r} is used twice")
            seen.add(account.id)
            if isinstance(account, Carrier):
                problems += [f"{place}.address: {p}"
                             for p in _address_problems(account.address, need_port=False)]
                continue
            for address in account.addresses:
                found = _address_problems(address, need_port=False)
                problems += [f"{place}.addresses: {p}" for p in found]
                key = source_key(address) if not found else address
                if key in addresses and addresses[key] != account.id:
                    problems.append(f"{place}.addresses: {address} is also {addresses[key]}'s")
                addresses[key] = account.id
            if bool(account.user) != bool(account.password):
                problems.append(f"{place}: give both user and password, or neither")
            if account.user:
                if not ID.fullmatch(account.user):
                    problems.append(f"{place}.user: {account.user!r} must be 1 to 64 letters, "
                                    "digits, '.', '_' or '-'")
                elif account.user in users:
                    problems.append(f"{place}.user: {account.user!r} is also "
                                    f"{users[account.user]}'s")
                users[account.user] = account.id
            if not account.addresses and not account.user:
                problems.append(f"{place}: give addresses, or user and password, to know its "
                                "calls by")
            for field in ("channels", "cps"):
                value = getattr(account, field)
                if value is not None and value < 1:
                    problems.append(f"{place}.{field}: must be 1 or more (leave it out for no "
                                    "limit)")
            if account.increment is not None and account.increment < 1:
                problems.append(f"{place}.increment: must be 1 second or more")
    return problems


def _route_problems(settings: BridgeSettings) -> list[str]:
    problems: list[str] = []
    carriers = {c.id for c in settings.carrier}
    seen: set[str] = set()
    for number, route in enumerate(settings.route, start=1):
        place = f"route[{number}]" + (f" ({route.prefix})" if route.prefix else "")
        if not PREFIX.fullmatch(route.prefix):
            problems.append(f"{place}.prefix: {route.prefix!r} must be 1 to 32 digits")
        elif route.prefix in seen:
            problems.append(f"{place}.prefix: {route.prefix!r} is used twice")
        seen.add(route.prefix)
        if not route.carriers:
            problems.append(f"{place}.carriers: name at least one carrier")
        for carrier in route.carriers:
            if carrier not in carriers:
                problems.append(f"{place}.carriers: {carrier!r} is not a [[carrier]]")
            elif carrier not in route.cost:
                problems.append(f"{place}.cost: no cost for {carrier!r}")
        if len(set(route.carriers)) != len(route.carriers):
            problems.append(f"{place}.carriers: a carrier is named twice")
        for carrier, cost in route.cost.items():
            if carrier not in route.carriers:
                problems.append(f"{place}.cost: {carrier!r} is not one of its carriers")
            if not (math.isfinite(cost) and cost >= 0):
                problems.append(f"{place}.cost: {carrier!r} costs {cost}, not 0 or more")
        if not (math.isfinite(route.price) and route.price >= 0):
            problems.append(f"{place}.price: {route.price} is not 0 or more")
    return problems


def _address_problems(value: str, need_port: bool) -> list[str]:
    """Why `value` is not an IP address with an optional (or required) port."""
    host, port = split_address(value)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return [f"{value!r} is not an IP address" + (" and port, like 127.0.0.1:5060"
                                                     if need_port else " (IP or IP:PORT)")]
    if port is None:
        return [f"{value!r} needs a port, like {host}:5060"] if need_port else []
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return [f"{value!r}: port {port!r} is not 1 to 65535"]
    return []


def split_address(value: str) -> tuple[str, str | None]:
    """("192.0.2.1", "5060") from "192.0.2.1:5060"; an IPv6 address goes in brackets."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, port
    return value, None


def host_port(value: str) -> tuple[str, int]:
    """A checked IP:PORT as (host, port)."""
    host, port = split_address(value)
    return host, int(port or 0)


def source_key(value: str) -> str:
    """How Kamailio names a source: the IP as it prints it, then :PORT if one is given."""
    host, port = split_address(value)
    text = str(ipaddress.ip_address(host))
    return f"{text}:{port}" if port else text
