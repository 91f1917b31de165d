"""The alert engine's settings: the `[alerts]` and `[email]` sections of noc's config file.

Read from the same TOML file as console.shell.config (`default_config_path()`), then NOC_SMTP_*
environment variables. A bad value is refused with the file, the line and what is wrong.

    [alerts]
    enabled = true            # evaluate rules in the writer (noc ingest, or a writing console)
    interval = 1.0            # seconds between evaluation rounds
    timezone = "UTC"          # how message times are shown (default: console.timezone)
    sms_url = "twilio://SID:TOKEN@15550001111/{number}"  # apprise URL for phone recipients
    script_module = "/etc/noc/alert_scripts.py"         # plug-in of script areas (trusted code)
    script_timeout = 5.0      # seconds a script may take for one account
    retry_initial = 10        # seconds before the first retry of a failed delivery, doubling
    retry_max = 600           # ... up to this
    give_up_after = 86400     # a message not delivered within this is marked failed

    [[alerts.report]]         # a daily summary per account, at a UTC time
    title = "Daily Balance"
    kind = "customer"
    company = "*"             # an account id, or "*" for all; or tag = "gold"
    recipients = ["noc@example.com"]
    at = "06:00"

    [email]
    host = "smtp.example.com" # NOC_SMTP_HOST
    port = 587                # NOC_SMTP_PORT
    user = "noc"              # NOC_SMTP_USER
    password = "..."          # NOC_SMTP_PASSWORD (better in the environment)
    from = "noc@example.com"  # NOC_SMTP_FROM
    starttls = true           # NOC_SMTP_STARTTLS
    tls = false               # NOC_SMTP_TLS (implicit TLS, port 465)
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from console.shell.config import ConfigError, default_config_path


class EmailSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str = "localhost"
    port: int = 25
    user: str = ""
    password: str = ""
    sender: str = msgspec.field(name="from", default="noc@localhost")
    starttls: bool = False
    tls: bool = False
    timeout: float = 30.0


class ReportSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: str
    kind: str = "customer"
    company: str = "*"
    tag: str = ""
    recipients: list[str] = msgspec.field(default_factory=list)
    at: str = "06:00"  # UTC, HH:MM
    template: str = ""

    @property
    def at_ms(self) -> int:
        """Milliseconds into the UTC day."""
        hours, minutes = self.at.split(":")
        return (int(hours) * 60 + int(minutes)) * 60_000


class AlertSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True
    interval: float = 1.0
    timezone: str = ""
    sms_url: str = ""
    script_module: str = ""
    script_timeout: float = 5.0
    retry_initial: float = 10.0
    retry_max: float = 600.0
    give_up_after: float = 86_400.0
    report: list[ReportSettings] = msgspec.field(default_factory=list)
    email: EmailSettings = msgspec.field(default_factory=EmailSettings)

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError("interval must be above 0 seconds")
        if self.script_timeout <= 0:
            raise ValueError("script_timeout must be above 0 seconds")
        if self.retry_initial <= 0 or self.retry_max < self.retry_initial:
            raise ValueError("retry_initial must be above 0 and retry_max at least as long")
        if self.sms_url and "{number}" not in self.sms_url:
            raise ValueError("sms_url must hold {number}, where a recipient's number goes")
        try:
            ZoneInfo(self.timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        for report in self.report:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", report.at):
                raise ValueError(f"report {report.title!r}: at must be HH:MM (UTC)")
            if report.kind not in ("customer", "carrier"):
                raise ValueError(f"report {report.title!r}: kind must be customer or carrier")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or "UTC")


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


ENVIRONMENT = {
    "NOC_SMTP_HOST": ("host", str),
    "NOC_SMTP_PORT": ("port", int),
    "NOC_SMTP_USER": ("user", str),
    "NOC_SMTP_PASSWORD": ("password", str),
    "NOC_SMTP_FROM": ("from", str),
    "NOC_SMTP_STARTTLS": ("starttls", _flag),
    "NOC_SMTP_TLS": ("tls", _flag),
}


def load(path: Path | None = None, environ: dict[str, str] | None = None) -> AlertSettings:
    """The settings from the config file's [alerts] and [email] (both optional), then the
    environment. Raises ConfigError naming the file and line of a bad value."""
    path = path or default_config_path()
    environ = os.environ if environ is None else environ
    data: dict = {}
    text = ""
    if path.exists():
        text = path.read_text(encoding="utf-8")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: {error}") from None
    alerts = dict(data.get("alerts", {}))
    email = dict(data.get("email", {}))
    alerts.setdefault("timezone", data.get("console", {}).get("timezone", ""))
    for variable, (key, cast) in ENVIRONMENT.items():
        if variable in environ:
            try:
                email[key] = cast(environ[variable])
            except ValueError:
                raise ConfigError(f"{variable}={environ[variable]!r} is not valid") from None
    try:
        return msgspec.convert({**alerts, "email": email}, AlertSettings)
    except (msgspec.ValidationError, ValueError) as error:
        raise ConfigError(f"{path}{_line_of(text, str(error))}: {error}") from None


def email_configured(path: Path | None = None, environ: dict[str, str] | None = None) -> bool:
    """Whether a mail server is named (NOC_SMTP_HOST, or [email] host): `noc demo` uses its own
    otherwise."""
    path = path or default_config_path()
    environ = os.environ if environ is None else environ
    if "NOC_SMTP_HOST" in environ:
        return True
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except tomllib.TOMLDecodeError:
        return False  # load() reports it
    return "host" in data.get("email", {})


def _line_of(text: str, message: str) -> str:
    """The line of the key an error names (`... at `$.email.port``), if it can be found."""
    found = (re.search(r"unknown field `([^`]+)`", message) or re.search(r"\$\.([\w.]+)", message)
             or re.search(r"^(\w+) must", message))
    if not found:
        return ""
    key = re.sub(r"\[\d+\]", "", found[1]).split(".")[-1]
    key = "from" if key == "sender" else key
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return f", line {number}"
    return ""
