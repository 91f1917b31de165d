"""The alert engine's settings: the types of the config file's `[alerts]` and `[email]` sections,
and the NOC_SMTP_* variables that override [email]. The shell reads the whole file once, into one
typed tree (console.shell.config), and hands the engine an AlertSettings. A check that fails
raises ValueError starting with the key at fault, which the shell turns into the file's line.

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
    host = "smtp.example.com" # NOC_SMTP_HOST (none: noc demo runs its own)
    port = 587                # NOC_SMTP_PORT
    user = "noc"              # NOC_SMTP_USER
    password = "..."          # NOC_SMTP_PASSWORD (better in the environment)
    from = "noc@example.com"  # NOC_SMTP_FROM
    starttls = true           # NOC_SMTP_STARTTLS
    tls = false               # NOC_SMTP_TLS (implicit TLS, port 465)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec


class EmailSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str = ""  # none named: mail goes to localhost (and noc demo runs its own server)
    port: int = 25
    user: str = ""
    password: str = ""
    sender: str = msgspec.field(name="from", default="noc@localhost")
    starttls: bool = False
    tls: bool = False
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} is no TCP port (1 to 65535)")
        if self.timeout <= 0:
            raise ValueError("timeout: must be above 0 seconds")
        if self.tls and self.starttls:
            raise ValueError("tls: tls (port 465) and starttls (port 587) exclude each other")

    @property
    def server(self) -> str:
        return self.host or "localhost"


class ReportSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: str
    kind: str = "customer"
    company: str = "*"
    tag: str = ""
    recipients: list[str] = msgspec.field(default_factory=list)
    at: str = "06:00"  # UTC, HH:MM
    template: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", self.at):
            raise ValueError(f"at: report {self.title!r}: must be HH:MM (UTC), not {self.at!r}")
        if self.kind not in ("customer", "carrier"):
            raise ValueError(f"kind: report {self.title!r}: must be customer or carrier")

    @property
    def at_ms(self) -> int:
        """Milliseconds into the UTC day."""
        hours, minutes = self.at.split(":")
        return (int(hours) * 60 + int(minutes)) * 60_000


class AlertsSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The config file's [alerts] section (its [[alerts.report]] tables included)."""

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

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError("interval: must be above 0 seconds")
        if self.script_timeout <= 0:
            raise ValueError("script_timeout: must be above 0 seconds")
        if self.retry_initial <= 0:
            raise ValueError("retry_initial: must be above 0 seconds")
        if self.retry_max < self.retry_initial:
            raise ValueError("retry_max: must be at least retry_initial")
        if self.give_up_after <= 0:
            raise ValueError("give_up_after: must be above 0 seconds")
        if self.sms_url and "{number}" not in self.sms_url:
            raise ValueError("sms_url: must hold {number}, where a recipient's number goes")
        try:
            ZoneInfo(self.timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None


class AlertSettings(AlertsSection, kw_only=True):
    """What the engine runs with: [alerts], and [email] for its mail."""

    email: EmailSettings = msgspec.field(default_factory=EmailSettings)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or "UTC")


def env_flag(value: str) -> bool:
    """An environment variable's yes or no."""
    return value.strip().lower() in ("1", "true", "yes", "on")


# Environment variables that override [email]: the key each sets, and how its text is read.
EMAIL_ENVIRONMENT: dict[str, tuple[str, Callable[[str], object]]] = {
    "NOC_SMTP_HOST": ("host", str),
    "NOC_SMTP_PORT": ("port", int),
    "NOC_SMTP_USER": ("user", str),
    "NOC_SMTP_PASSWORD": ("password", str),
    "NOC_SMTP_FROM": ("from", str),
    "NOC_SMTP_STARTTLS": ("starttls", env_flag),
    "NOC_SMTP_TLS": ("tls", env_flag),
}
