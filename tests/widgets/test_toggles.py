"""Radio buttons and check boxes read without colour: the chosen one is drawn differently, not
only coloured differently."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import RadioSet

from widgets.toggles import MarkedCheckbox, MarkedRadioButton


class Toggles(App):
    def compose(self) -> ComposeResult:
        with RadioSet():
            yield MarkedRadioButton("Selection", value=True, id="selection")
            yield MarkedRadioButton("All rows", id="all")
        yield MarkedCheckbox("enabled", value=True, id="enabled")


def drawn(app: App, widget_id: str) -> str:
    return app.query_one(f"#{widget_id}").render().plain


async def test_the_chosen_radio_button_and_a_ticked_box_read_without_colour():
    app = Toggles()
    async with app.run_test() as pilot:
        assert "●" in drawn(app, "selection") and "○" in drawn(app, "all")
        assert "X" in drawn(app, "enabled")
        app.query_one("#all", MarkedRadioButton).value = True
        app.query_one("#enabled", MarkedCheckbox).value = False
        await pilot.pause()
        assert "○" in drawn(app, "selection") and "●" in drawn(app, "all")
        assert "X" not in drawn(app, "enabled")
