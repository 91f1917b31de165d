"""The keys of the screen on one line at the bottom, as Textual's Footer shows them, but as one
widget drawn only when the keys change.

Textual's Footer builds a widget per key and builds them all again whenever the screen's
bindings may have changed (a focus moving, a screen coming back, a check of an action): each
time, every key is mounted, styled and measured anew. That was more than half of what a screen
switch cost. Here the keys are compared, and a line is drawn only if they differ; a click on a
key presses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget


@dataclass(frozen=True)
class Key:
    key: str  # what pressing it sends
    display: str  # how it is shown: "^p", "1", ">"
    description: str
    enabled: bool


class KeyBar(Widget):
    """` 1 Dashboard  2 Customers  …  ▏? Help ^p palette`: the screen's shown bindings, one per
    action, and on the right the pinned ones (help) and the command palette's key. Keys that do
    not fit are left out whole, from the end: never a word cut inside."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"key-bar--key", "key-bar--description", "key-bar--edge"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        .key-bar--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .key-bar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        .key-bar--edge { color: $foreground 20%; }
    }
    """

    def __init__(self, *, pinned: tuple[str, ...] = ("help",), id: str | None = None) -> None:
        super().__init__(id=id)
        self.pinned_actions = pinned  # actions always shown, on the right
        self.keys: tuple[Key, ...] = ()
        self.pinned: tuple[Key, ...] = ()
        self.palette: Key | None = None
        self._strip: Strip | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        # As the Footer does: the bindings settle once the focus has moved.
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._read_keys)

    def _read_keys(self) -> None:
        if not self.is_attached:
            return
        keys: dict[str, Key] = {}  # action -> its first key
        pinned: dict[str, Key] = {}
        palette = None
        for key, (_, binding, enabled, _) in self.screen.active_bindings.items():
            shown = Key(key, self.app.get_key_display(binding), binding.description, enabled)
            if key == self.app.COMMAND_PALETTE_BINDING and self.app.ENABLE_COMMAND_PALETTE:
                palette = shown
            elif binding.show:
                place = pinned if binding.action in self.pinned_actions else keys
                place.setdefault(binding.action, shown)
        drawn = (tuple(keys.values()), tuple(pinned.values()), palette)
        if drawn != (self.keys, self.pinned, self.palette):
            self.keys, self.pinned, self.palette = drawn
            self._strip = None
            self.refresh()

    def on_resize(self) -> None:
        self._strip = None

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y:
            return Strip.blank(width, self.rich_style)
        if self._strip is None or self._strip.cell_length != width:
            self._strip = self._draw(width)
        return self._strip

    def _draw(self, width: int) -> Strip:
        base = self.rich_style
        key_style = base + self.get_component_rich_style("key-bar--key")
        text_style = base + self.get_component_rich_style("key-bar--description")
        # On the right, drawn tighter, as the Footer draws the palette's key.
        right_keys = (*self.pinned, *([self.palette] if self.palette else []))
        right = [segment for key in right_keys
                 for segment in _key_segments(key, key.display, f" {key.description} ",
                                              key_style, text_style)]
        if right:
            right = [Segment("▏", base + self.get_component_rich_style("key-bar--edge")),
                     *right[:-1], Segment(right[-1].text.rstrip(), right[-1].style),
                     Segment(" ", Style(bgcolor=base.bgcolor))]  # its padding: no text colour
        room = max(0, width - Segment.get_line_length(right))
        left: list[Segment] = []
        for key in self.keys:  # whole keys only, as many as fit
            segments = _key_segments(key, f" {key.display} ", f"{key.description} ",
                                     key_style, text_style)
            if Segment.get_line_length(left + segments) > room:
                break
            left += segments
        return Strip.join([Strip(left).adjust_cell_length(room, base), Strip(right)])

    def on_click(self, event: events.Click) -> None:
        key = event.style.meta.get("key")
        if key is None:
            return
        if event.style.meta.get("enabled"):
            self.app.simulate_key(key)
        else:
            self.app.bell()


def _key_segments(key: Key, shown: str, description: str, key_style: Style,
                  text_style: Style) -> list[Segment]:
    """A key and what it does; a key its screen cannot use now is dimmed. Each cell knows its
    key, for a click."""
    meta = Style(dim=not key.enabled or None, meta={"key": key.key, "enabled": key.enabled})
    if not key.description:
        return [Segment(shown, key_style + meta)]
    return [Segment(shown, key_style + meta), Segment(description, text_style + meta)]
