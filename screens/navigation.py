"""Where the user goes, said by screens and their widgets as messages up to the app, which owns
the screens and modes: a screen never reaches into the app to move."""

from __future__ import annotations

from textual.message import Message


class OpenAccount(Message):
    """Show this customer or carrier (`kind`), on its screen over its list."""

    def __init__(self, kind: str, account: str) -> None:
        super().__init__()
        self.kind, self.account = kind, account


class ShowMode(Message):
    """Show what a global key shows (`mode`: dashboard, customers, carriers, alerts, quarantine)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode


class Back(Message):
    """Leave this screen for the one beneath (an account's screen for its list)."""


class ReadNow(Message):
    """Read the store for the screen shown at once, changed or not (its filter or tab did)."""
