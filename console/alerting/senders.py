"""Sending one outbox message: email through aiosmtplib, everything else through apprise.

A failure raises DeliveryFailed; `permanent` ones (a recipient the mail server refuses for good,
with a 5xx, a URL no service answers to, SMS with no gateway configured) are not retried. An SMTP
4xx, at whatever stage (greylisting answers 450 at RCPT), is temporary: the message waits.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
import apprise

from console.alerting.recipients import EMAIL, SMS, apprise_url, sms_url
from console.alerting.settings import AlertSettings
from store.alerting import OutboxRow

NOTIFY_TYPES = {"info": apprise.NotifyType.INFO, "warning": apprise.NotifyType.WARNING,
                "error": apprise.NotifyType.FAILURE, "critical": apprise.NotifyType.FAILURE}
APPRISE_TIMEOUT_S = 30


class DeliveryFailed(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Senders:
    """Sends messages as the settings say; one instance per engine."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings

    async def send(self, message: OutboxRow) -> None:
        if message.channel == EMAIL:
            await self._email(message)
        else:
            await self._apprise(message)

    async def _email(self, message: OutboxRow) -> None:
        smtp = self.settings.email
        mail = EmailMessage()
        mail["From"] = smtp.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        # A stable id: should a crash make noc send it twice, mail clients show it once.
        mail["Message-ID"] = f"<{message.message_id}@noc>"
        mail["Date"] = formatdate(message.created_ms / 1000, usegmt=True)
        mail["X-Noc-Event"] = message.event
        mail["X-Noc-Level"] = message.level
        mail.set_content(message.body)
        try:
            await aiosmtplib.send(
                mail, hostname=smtp.server, port=smtp.port, username=smtp.user or None,
                password=smtp.password or None, start_tls=smtp.starttls, use_tls=smtp.tls,
                timeout=smtp.timeout)
        except aiosmtplib.SMTPRecipientsRefused as error:
            permanent = all(refusal.code >= 500 for refusal in error.recipients)
            raise DeliveryFailed(f"refused by the mail server: {error}",
                                 permanent=permanent) from None
        except (aiosmtplib.SMTPException, OSError) as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}") from None

    async def _apprise(self, message: OutboxRow) -> None:
        if message.channel == SMS:
            if not self.settings.sms_url:
                raise DeliveryFailed("no SMS gateway: set [alerts] sms_url", permanent=True)
            url = sms_url(self.settings.sms_url, message.recipient)
        else:
            url = apprise_url(message.recipient)
        if url is None:
            raise DeliveryFailed(f"apprise knows no service at {message.recipient}",
                                 permanent=True)
        notifier = apprise.Apprise()
        if not notifier.add(url):
            raise DeliveryFailed(f"apprise cannot use {message.recipient}", permanent=True)
        notify_type = (apprise.NotifyType.SUCCESS if message.event == "resolved"
                       else NOTIFY_TYPES.get(message.level, apprise.NotifyType.INFO))
        result = await notifier.async_notify(body=message.body, title=message.subject,
                                             notify_type=notify_type, timeout=APPRISE_TIMEOUT_S)
        if not result:
            problems = [entry.message for entry in result.logs()
                        if entry.level in ("WARNING", "ERROR")]
            raise DeliveryFailed(problems[-1] if problems else "not delivered")
