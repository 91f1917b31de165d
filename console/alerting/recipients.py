"""Who a message goes to, and by which channel: an email address (SMTP), a phone number (SMS
through the apprise URL of `[alerts] sms_url`), or any other apprise URL (Pushover, Slack,
Telegram, `json://host/path` webhooks ...). A plain http(s) URL is a webhook: it is sent as
apprise's `json(s)://`, unless apprise knows the URL as a service of its own (a Slack or
Discord webhook address, for instance)."""

from __future__ import annotations

import re

import apprise

EMAIL, SMS, APPRISE = "email", "sms", "apprise"

EMAIL_PATTERN = re.compile(r"[^@\s<>,;:\"]+@[^@\s<>,;:\"]+\.[^@\s<>,;:\"]+")
PHONE_PATTERN = re.compile(r"\+?[0-9][0-9 ().-]{5,22}")


class RecipientError(ValueError):
    """A recipient that is none of the above; str() says which and why."""


def channel_of(recipient: str) -> str:
    """EMAIL, SMS or APPRISE; RecipientError if the recipient is none of them."""
    text = recipient.strip()
    if "://" in text:
        if apprise_url(text) is None:
            raise RecipientError(f"{text!r}: apprise knows no service at this URL")
        return APPRISE
    if EMAIL_PATTERN.fullmatch(text):
        return EMAIL
    if PHONE_PATTERN.fullmatch(text):
        return SMS
    raise RecipientError(f"{text!r} is neither an email address, a phone number nor a URL")


def delivery_channel(recipient: str) -> str:
    """channel_of, or APPRISE for a recipient that was valid when saved but is not now (its
    delivery will then fail, saying why, rather than the message going nowhere silently)."""
    try:
        return channel_of(recipient)
    except RecipientError:
        return APPRISE


def apprise_url(url: str) -> str | None:
    """The URL apprise should be given for `url`, or None if it knows no such service."""
    if apprise.Apprise.instantiate(url) is not None:
        return url
    scheme, rest = url.split("://", 1)
    webhook = {"http": "json", "https": "jsons"}.get(scheme.lower())
    if webhook and apprise.Apprise.instantiate(f"{webhook}://{rest}") is not None:
        return f"{webhook}://{rest}"
    return None


def sms_url(template: str, number: str) -> str:
    """The apprise URL that texts `number` through the configured gateway."""
    return template.replace("{number}", re.sub(r"[^0-9+]", "", number))
