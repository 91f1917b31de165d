"""Radio buttons and check boxes whose state reads without colour (`--low-colour`, NO_COLOR, a
monochrome terminal): Textual draws the same mark on and off and tells them apart by colour
only, so these draw ● / ○ and X / a blank."""

from __future__ import annotations

from textual.widgets import Checkbox, RadioButton


class MarkedRadioButton(RadioButton):
    """● when chosen, ○ when not."""

    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802 - the name Textual's ToggleButton draws
        return "●" if self.value else "○"


class MarkedCheckbox(Checkbox):
    """X when ticked, a blank when not."""

    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802
        return "X" if self.value else " "
