"""Picking the display time zone: stored data and buckets stay UTC, only what is shown changes."""

from __future__ import annotations

from zoneinfo import available_timezones

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList

COMMON = ("UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles",
          "Asia/Dubai", "Asia/Kolkata", "Asia/Singapore", "Africa/Lagos", "Australia/Sydney")


class TimezonePicker(ModalScreen[str | None]):
    """Type to filter the zone list; Enter picks, Escape keeps the current zone."""

    CSS_PATH = "timezone.tcss"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current
        self.zones = sorted(available_timezones() | {"UTC"})

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Display time zone (now {self.current}); buckets stay UTC")
            yield Input(placeholder="type to filter, e.g. berlin")
            yield OptionList(*self._matching(""))

    def _matching(self, text: str) -> list[str]:
        if not text:
            return [*COMMON, *(z for z in self.zones if z not in COMMON)]
        needle = text.lower().replace(" ", "_")
        return [zone for zone in self.zones if needle in zone.lower()]

    def on_input_changed(self, event: Input.Changed) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options(self._matching(event.value))
        options.highlighted = 0 if options.option_count else None

    def on_input_submitted(self) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            self.dismiss(str(options.get_option_at_index(options.highlighted or 0).prompt))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(str(event.option.prompt))
