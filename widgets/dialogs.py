"""A dialog asked for by a screen or a widget, as a message up to the app, which owns the stack
of screens: nothing below the app pushes a screen itself (as with screens/navigation.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.message import Message
from textual.screen import Screen


class ShowDialog(Message):
    """Show `dialog` over the screen shown; `done` is called with what it dismisses with."""

    def __init__(self, dialog: Screen, done: Callable[[Any], object] | None = None) -> None:
        super().__init__()
        self.dialog, self.done = dialog, done


class DialogHost:
    """What an app hosting these widgets and screens mixes in (before App) to show the dialogs
    they ask for."""

    def on_show_dialog(self, message: ShowDialog) -> None:
        self.push_screen(message.dialog, message.done)
