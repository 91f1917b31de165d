"""The demo's alerting: its starter rules, and its own mail server unless one is configured.

`noc demo` sends its alert emails to SMTP on loopback, kept in a Maildir beside the demo
database, so that the whole story (an outage, the alert, the email, the penalty, the carrier
back on time) plays on a machine with no mail server. The messages are ordinary files any mail
reader opens (`mutt -f DIR`), or `cat DIR/new/*`.
"""

from __future__ import annotations

import asyncio
import mailbox
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP

from console.alerting import exchange
from console.alerting.engine import AlertEngine
from console.alerting.settings import AlertSettings

HOST = "127.0.0.1"


class DemoMailServer:
    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen on a free loopback port; return it. Mail of an earlier demo is cleared."""
        if (self.maildir / "new").is_dir():
            mailbox.Maildir(self.maildir).clear()
        handler = Mailbox(self.maildir)  # creates the Maildir folders
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(handler, hostname="noc-demo"), HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def messages(self) -> list[mailbox.MaildirMessage]:
        return list(mailbox.Maildir(self.maildir))


class DemoAlerting:
    def __init__(self, settings: AlertSettings, path: Path,
                 mail: DemoMailServer | None) -> None:
        self.settings = settings
        self.path = path
        self.mail = mail

    @classmethod
    def prepare(cls, settings: AlertSettings, path: Path, *, own_mail: bool) -> DemoAlerting:
        """Store the starter rules in the (fresh) demo database."""
        alerting = cls.unstored(settings, path, own_mail=own_mail)
        alerting.store_rules()
        return alerting

    @classmethod
    def unstored(cls, settings: AlertSettings, path: Path, *, own_mail: bool) -> DemoAlerting:
        """The demo's alerting, its rules not stored yet (`store_rules`)."""
        mail = DemoMailServer(path.with_name(f"{path.stem}-mail")) if own_mail else None
        return cls(settings, path, mail)

    def store_rules(self) -> None:
        """Store the starter rules (seconds: each template is tried in a bounded process). The
        engine reads them at its next round, whenever they come."""
        exchange.import_demo_rules(self.path, now_ms=round(datetime.now(UTC).timestamp() * 1000))

    async def start(self) -> AlertEngine | None:
        """Start the mail server if it is ours; the engine the demo's writer runs."""
        if not self.settings.enabled:
            return None
        settings = self.settings
        if self.mail is not None:
            port = await self.mail.start()
            email = msgspec.structs.replace(settings.email, host=HOST, port=port,
                                            starttls=False, tls=False, user="", password="")
            settings = msgspec.structs.replace(settings, email=email)
        return AlertEngine(self.path, settings)

    @property
    def notice(self) -> str:
        """Where the demo's mail goes, for the console to say."""
        if self.mail is None:
            return ""
        return f"Alert emails go to the demo's mail server, kept in {self.mail.maildir}"

    async def stop(self) -> None:
        if self.mail is not None:
            await self.mail.stop()
