"""One line of feed health for a header: state word, position and trouble counts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from widgets import LOADING
from widgets.live_table import shortened

FeedStatus = Literal[
    "connected", "reconnecting", "connecting", "refused", "stopped", "never connected"
]
Role = Literal["writer", "viewer"]

# Each status maps to a CSS class that colours it: -ok green, -pending yellow, -down red.
_LEVELS: dict[str, str] = {
    "connected": "ok",
    "connecting": "pending",
    "reconnecting": "pending",
    "refused": "down",
    "stopped": "down",
    "never connected": "idle",
}


@dataclass(frozen=True)
class FeedState:
    """What the badge shows; equal states are not redrawn. No status: not read yet."""

    status: FeedStatus | None = None
    reconnect_in_s: int | None = None  # whole seconds, so a ticking countdown redraws once a second
    gaps: int = 0
    quarantined: int = 0
    duplicates: int = 0
    last_seq: int = 0
    role: Role = "writer"
    stale: bool = False
    store: str = ""  # the writer's store trouble, e.g. "store: disk full, retrying in 4 s"
    catching_up: int | None = None  # % of a backlog stored, while the writer catches up

    @property
    def level(self) -> str:
        if self.status is None:
            return "idle"
        if self.stale or self.store:
            return "down"
        return "pending" if self._catching_up else _LEVELS[self.status]

    @property
    def _catching_up(self) -> bool:
        return self.catching_up is not None and self.status == "connected"

    @property
    def headline(self) -> str:
        """The state in words, e.g. 'reconnecting in 3 s'."""
        if self.status is None:
            return LOADING
        if self.store:  # first: while it lasts, nothing the feed sends is stored
            return self.store
        if self.stale:
            return "writer stale"
        if self.reconnect_in_s is not None and self.status in ("reconnecting", "refused"):
            retry = "in" if self.status == "reconnecting" else "· retry in"
            return f"{self.status} {retry} {self.reconnect_in_s} s"
        if self._catching_up:
            return f"catching up {self.catching_up}%"
        return self.status


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


class FeedBadge(Widget):
    """`● connected · 2 gaps · 14 quarantined · seq 1,234,567 · writer`, coloured by state; a
    writer's store trouble takes the state's place: `● store: disk full, retrying in 4 s`.
    Until the feed's state is first read: `○ loading…`."""

    DEFAULT_CSS = """
    FeedBadge {
        width: auto;
        height: 1;
        & > .feed-badge--state { text-style: bold; }
        &.-ok > .feed-badge--state { color: $success; }
        &.-pending > .feed-badge--state { color: $warning; }
        &.-down > .feed-badge--state { color: $error; }
        &.-idle > .feed-badge--state { color: $text-muted; }
        & > .feed-badge--trouble { color: $warning; }
        & > .feed-badge--quiet { color: $text-muted; }
    }
    """
    COMPONENT_CLASSES = {"feed-badge--state", "feed-badge--trouble", "feed-badge--quiet"}

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.state = FeedState()
        self.add_class("-idle")

    def update_state(
        self,
        status: FeedStatus,
        *,
        reconnect_in_s: float | None = None,
        gaps: int = 0,
        quarantined: int = 0,
        duplicates: int = 0,
        last_seq: int = 0,
        role: Role = "writer",
        stale: bool = False,
        store: str = "",
        catching_up: int | None = None,
    ) -> None:
        """Show the feed's state; a no-op when nothing visible changed."""
        if status not in _LEVELS:
            raise ValueError(f"unknown feed status {status!r}")
        state = FeedState(
            status=status,
            reconnect_in_s=None if reconnect_in_s is None else max(0, math.ceil(reconnect_in_s)),
            gaps=gaps,
            quarantined=quarantined,
            duplicates=duplicates,
            last_seq=last_seq,
            role=role,
            stale=stale,
            store=store,
            catching_up=catching_up,
        )
        if state == self.state:
            return
        self.state = state
        for level in set(_LEVELS.values()):
            self.set_class(level == state.level, f"-{level}")
        self.refresh(layout=True)

    def render(self) -> Text:
        state = self.state
        style = self.get_component_rich_style
        quiet = style("feed-badge--quiet")
        trouble = style("feed-badge--trouble")
        dot = "○" if state.status in (None, "never connected") and not state.stale else "●"
        # The room it is given (1fr in a header); as wide as it needs when its width is auto.
        width = self.styles.width
        room = None if width is None or width.is_auto else self.size.width or None
        text = Text(no_wrap=True, end="")
        headline = Text(f"{dot} {state.headline}", style=style("feed-badge--state"))
        text.append_text(headline if room is None else shortened(headline, room))
        if state.status is None:
            return text
        # Most important first; a detail that does not fit is left out whole (never cut inside
        # a word or a number), and a later, shorter one may still fit: the role usually does.
        details: list[tuple[str, Style | str]] = []
        if state.gaps:
            details.append((_plural(state.gaps, "gap"), trouble))
        if state.quarantined:
            details.append((f"{state.quarantined:,} quarantined", trouble))
        if state.last_seq:
            details.append((f"seq {state.last_seq:,}", ""))
        if state.duplicates:
            details.append((_plural(state.duplicates, "duplicate"), quiet))
        details.append((state.role, quiet))
        for detail, detail_style in details:
            if room is not None and text.cell_len + 3 + len(detail) > room:
                continue
            text.append(" · ", style=quiet)
            text.append(detail, style=detail_style)
        return text
