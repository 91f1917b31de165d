"""Settings: one typed tree for the whole config file (a TOML file in the XDG config folder),
read once by the shell; every value overridable by environment.

Precedence, lowest first: defaults, the config file, NOC_* environment variables, command-line
options. Each section's type checks its values (the alerting sections' types are
console.alerting's); a bad file is refused with its path, the line and what is wrong: a value
out of range, an unknown section or key, a file that is not UTF-8 or not TOML.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import platformdirs
from textual.theme import BUILTIN_THEMES

from console.alerting.settings import (
    EMAIL_ENVIRONMENT,
    AlertSettings,
    AlertsSection,
    EmailSettings,
    env_flag,
)
from console.feed.client import FeedError, check_url
from console.shell.themes import THEMES
from store.database import is_postgres
from store.metrics import DEFAULT_FAILURE_CODES

APP = "noc"
MAX_DAYS = 36_500  # a hundred years: longer is a typo, and overflows the time arithmetic
Days = Annotated[int, msgspec.Meta(ge=1, le=MAX_DAYS)]
Bound = Annotated[int, msgspec.Meta(ge=1_000, le=100_000_000)]  # of what the writer holds
SIP_CODES = range(100, 700)
THEME_NAMES = frozenset({*BUILTIN_THEMES, *(theme.name for theme in THEMES)})


class ConfigError(Exception):
    """The config file (or an environment variable) is wrong; str() names the place."""


class FeedSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str = "ws://127.0.0.1:8765/feed"
    token: str | None = None
    ca_file: str | None = None  # PEM CA for a wss:// feed with a private certificate

    def __post_init__(self) -> None:
        try:
            check_url(self.url)
        except FeedError as error:
            raise ValueError(f"url: {error}") from None


class StoreSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: str = ""
    url: str = ""  # a PostgreSQL database (postgresql://...) instead of the file `path`
    minute_rollup_days: Days = 8
    event_log_days: Days = 30
    call_days: Annotated[int, msgspec.Meta(ge=0, le=MAX_DAYS)] = 0  # CDRs: 0 keeps them for good
    # Bounds of the writer's memory (README, "Security and failure").
    max_open_calls: Bound = 100_000  # past it the least recently active is closed as lost
    max_accounts: Bound = 100_000  # past it an event naming a new account is quarantined

    def __post_init__(self) -> None:
        if self.url and not is_postgres(self.url):
            raise ValueError(f"url: {self.url!r} is not a postgresql:// URL (a file goes in path)")


class CarrierSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # SIP codes that count as carrier failures; "500-599" ranges allowed.
    failure_codes: list[int | str] = msgspec.field(default_factory=lambda: [408, "500-599"])

    def __post_init__(self) -> None:
        parse_codes(self.failure_codes)


class ConsoleSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    refresh: Annotated[float, msgspec.Meta(ge=0.1, le=3600)] = 1.0
    read_only: bool = False
    timezone: str = "UTC"
    theme: str = "noc-dark"

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None
        if self.theme not in THEME_NAMES:
            raise ValueError(f"theme: unknown theme {self.theme!r}; choose from "
                             f"{', '.join(sorted(THEME_NAMES))}")


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    feed: FeedSettings = msgspec.field(default_factory=FeedSettings)
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    carrier: CarrierSettings = msgspec.field(default_factory=CarrierSettings)
    console: ConsoleSettings = msgspec.field(default_factory=ConsoleSettings)
    alerts: AlertsSection = msgspec.field(default_factory=AlertsSection)
    email: EmailSettings = msgspec.field(default_factory=EmailSettings)

    @property
    def db_path(self) -> Path | str:
        target = self.store.url or self.store.path  # $NOC_DB may hold a URL as well
        if is_postgres(target):
            return target
        return Path(target).expanduser() if target else default_db_path()

    @property
    def failure_codes(self) -> frozenset[int]:
        return parse_codes(self.carrier.failure_codes)

    @property
    def alerting(self) -> AlertSettings:
        """The alert engine's settings: [alerts] with [email]; message times in the console's
        time zone unless [alerts] names one."""
        fields = msgspec.structs.asdict(self.alerts)
        fields["timezone"] = self.alerts.timezone or self.console.timezone
        return AlertSettings(**fields, email=self.email)


# Environment variables: the section and key each sets, and how its text is read.
ENVIRONMENT: dict[str, tuple[str, str, Callable[[str], object]]] = {
    "NOC_FEED_URL": ("feed", "url", str),
    "NOC_FEED_TOKEN": ("feed", "token", str),
    "NOC_FEED_CA_FILE": ("feed", "ca_file", str),
    "NOC_DB": ("store", "path", str),
    "NOC_REFRESH": ("console", "refresh", float),
    "NOC_READ_ONLY": ("console", "read_only", env_flag),
    "NOC_TIMEZONE": ("console", "timezone", str),
    "NOC_THEME": ("console", "theme", str),
    **{variable: ("email", key, cast) for variable, (key, cast) in EMAIL_ENVIRONMENT.items()},
}


def default_config_path() -> Path:
    return Path(
        os.environ.get("NOC_CONFIG") or Path(platformdirs.user_config_dir(APP)) / "config.toml"
    )


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir(APP)) / "noc.db"


def default_exports_folder() -> Path:
    """Where exports go unless the user names another place: private, beside noc's data."""
    return Path(platformdirs.user_data_dir(APP)) / "exports"


def parse_codes(items: list[int | str]) -> frozenset[int]:
    """The SIP codes `items` name (codes, or ranges like "500-599"); ValueError saying which
    item is wrong."""
    codes: set[int] = set()
    for item in items:
        if isinstance(item, int):
            low = high = item
        else:
            match = re.fullmatch(r"\s*(\d{3})\s*-\s*(\d{3})\s*", item)
            if not match:
                raise ValueError(f"failure_codes: {item!r} is neither a code nor a range like "
                                 "'500-599'")
            low, high = int(match[1]), int(match[2])
        if low not in SIP_CODES or high not in SIP_CODES:
            raise ValueError(f"failure_codes: {item!r} is not within the SIP codes 100-699")
        if low > high:
            raise ValueError(f"failure_codes: {item!r} runs backwards: write low-high")
        codes.update(range(low, high + 1))
    return frozenset(codes) or DEFAULT_FAILURE_CODES


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of the config file at `path` (default: default_config_path(); none there:
    the defaults) and the environment. ConfigError names the file and line, or the variable,
    of the first bad value."""
    path = path or default_config_path()
    environ = os.environ if environ is None else environ
    text = _read(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    _convert(data, lambda place: f"{path}{_line(text, place)}")
    overridden: dict[str, str] = {}  # "section.key" -> the variable that set it
    for variable, (section, key, cast) in ENVIRONMENT.items():
        if variable not in environ:
            continue
        try:
            data.setdefault(section, {})[key] = cast(environ[variable])
        except ValueError:
            raise ConfigError(f"{variable}={environ[variable]!r} is not valid") from None
        overridden[f"{section}.{key}"] = variable
    return _convert(data, lambda place: (  # a variable's value may be a secret: not shown
        overridden[place] if place in overridden else f"{path}{_line(text, place)}"))


def _read(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ""
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it: {error.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise ConfigError(f"{path}, line {line}: not UTF-8 text (byte "
                          f"0x{raw[error.start]:02x}): save the file as UTF-8") from None


def _convert(data: dict, where: Callable[[str], str]) -> Settings:
    """The typed tree of `data`; ConfigError saying where (`where(section.key)`) and what."""
    try:
        return msgspec.convert(data, Settings)
    except msgspec.ValidationError as error:
        place, problem = _place(str(error))
        raise ConfigError(f"{where(place)}: {place + ': ' if place else ''}{problem}") from None


def _place(message: str) -> tuple[str, str]:
    """("section.key", what is wrong) from a msgspec error, e.g. "Expected `int` >= 1 - at
    `$.store.event_log_days`", or a section's check, "theme: unknown theme - at `$.console`"."""
    problem, _, at = message.rpartition(" - at `$")
    if not _:
        problem, at = message, ""
    place = at.rstrip("`").lstrip(".")
    unknown = re.fullmatch(r"Object contains unknown field `([^`]+)`", problem)
    if unknown:
        return ".".join(filter(None, (place, unknown[1]))), "no such setting here"
    key = re.match(r"(\w+): (.*)", problem, re.S)
    if key:
        return ".".join(filter(None, (place, key[1]))), key[2]
    return place, problem


def _line(text: str, place: str) -> str:
    """`, line N` of the key or section `place` ("store.event_log_days", "alerts.report[1]
    .at", "bogus"), where the file says it."""
    lines = _places(text)
    while place:
        if place in lines:
            return f", line {lines[place]}"
        place = re.sub(r"(\.[^.]*|\[\d+\])$", "", place) if "." in place or "[" in place else ""
    return ""


def _places(text: str) -> dict[str, int]:
    """Where each table and key of a TOML text is, as "table.key" -> line number (tables of
    an array numbered: "alerts.report[0]")."""
    found: dict[str, int] = {}
    table, arrays = "", {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"\s*(\[\[?)\s*([^\]]+?)\s*\]", line)
        key = re.match(r"\s*([\w-]+|\"[^\"]*\")\s*=", line)
        if header:
            table = header[2].replace(" ", "")
            if header[1] == "[[":
                arrays[table] = arrays.get(table, -1) + 1
                table = f"{table}[{arrays[table]}]"
            found.setdefault(table, number)
        elif key:
            found.setdefault(f"{table}.{key[1].strip(chr(34))}".lstrip("."), number)
    return found
