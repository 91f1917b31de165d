"""Settings: a TOML file in the XDG config folder, every value overridable by environment.

Precedence, lowest first: defaults, the config file, NOC_* environment variables, command-line
options. A bad file is refused with its path and the line at fault.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import msgspec
import platformdirs

from store.metrics import DEFAULT_FAILURE_CODES

APP = "noc"


class ConfigError(Exception):
    """The config file (or an environment variable) is wrong; str() names the place."""


class FeedSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str = "ws://127.0.0.1:8765/feed"
    token: str | None = None
    ca_file: str | None = None  # PEM CA for a wss:// feed with a private certificate


class StoreSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: str = ""
    minute_rollup_days: int = 8
    event_log_days: int = 30


class CarrierSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # SIP codes that count as carrier failures; "500-599" ranges allowed.
    failure_codes: list[int | str] = msgspec.field(default_factory=lambda: [408, "500-599"])


class ConsoleSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    refresh: float = 1.0
    read_only: bool = False
    timezone: str = "UTC"
    theme: str = "noc-dark"


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    feed: FeedSettings = msgspec.field(default_factory=FeedSettings)
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    carrier: CarrierSettings = msgspec.field(default_factory=CarrierSettings)
    console: ConsoleSettings = msgspec.field(default_factory=ConsoleSettings)
    # Read and checked by console.alerting.settings, which owns their keys.
    alerts: dict = msgspec.field(default_factory=dict)
    email: dict = msgspec.field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return Path(self.store.path).expanduser() if self.store.path else default_db_path()

    @property
    def failure_codes(self) -> frozenset[int]:
        return parse_codes(self.carrier.failure_codes)


ENVIRONMENT = {
    "NOC_FEED_URL": ("feed", "url", str),
    "NOC_FEED_TOKEN": ("feed", "token", str),
    "NOC_FEED_CA_FILE": ("feed", "ca_file", str),
    "NOC_DB": ("store", "path", str),
    "NOC_REFRESH": ("console", "refresh", float),
    "NOC_READ_ONLY": ("console", "read_only", lambda v: v.lower() in ("1", "true", "yes")),
    "NOC_TIMEZONE": ("console", "timezone", str),
    "NOC_THEME": ("console", "theme", str),
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
    codes: set[int] = set()
    for item in items:
        if isinstance(item, int):
            codes.add(item)
            continue
        match = re.fullmatch(r"\s*(\d{3})\s*-\s*(\d{3})\s*", item)
        if not match:
            raise ConfigError(f"failure code {item!r} is neither a code nor a range like '500-599'")
        codes.update(range(int(match[1]), int(match[2]) + 1))
    return frozenset(codes) or DEFAULT_FAILURE_CODES


def load(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    path = path or default_config_path()
    environ = os.environ if environ is None else environ
    data: dict = {}
    if path.exists():
        text = path.read_text(encoding="utf-8")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: {error}") from None
        try:
            msgspec.convert(data, Settings)
        except msgspec.ValidationError as error:
            raise ConfigError(f"{path}{_line_of(text, str(error))}: {error}") from None
    for variable, (section, key, cast) in ENVIRONMENT.items():
        if variable in environ:
            try:
                data.setdefault(section, {})[key] = cast(environ[variable])
            except ValueError:
                raise ConfigError(f"{variable}={environ[variable]!r} is not valid") from None
    settings = msgspec.convert(data, Settings)
    settings.failure_codes  # noqa: B018 - validates the codes now rather than mid-ingest
    return settings


def _line_of(text: str, message: str) -> str:
    """The line of the key a msgspec error points at (`... at `$.feed.url``), if it can be found."""
    unknown = re.search(r"unknown field `([^`]+)`", message)
    path = re.search(r"\$\.([\w.]+)", message)
    if unknown:
        key = unknown[1]
    elif path:
        key = path[1].split(".")[-1]
    else:
        return ""
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return f", line {number}"
    return ""
