"""KeyBar: the screen's keys on one line, redrawn only when they change; a click presses a key."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from widgets.key_bar import KeyBar


class KeysApp(App):
    BINDINGS = [
        Binding("1", "pressed('one')", "One"),
        Binding("e", "pressed('export')", "Export"),
        Binding("h", "pressed('hidden')", "Hidden", show=False),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.pressed: list[str] = []
        self.can_export = True

    def compose(self) -> ComposeResult:
        yield Static("keys below")
        yield KeyBar()

    def action_pressed(self, what: str) -> None:
        self.pressed.append(what)

    def action_help(self) -> None:
        self.pressed.append("help")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if parameters == ("export",) and not self.can_export:
            return None  # shown, dimmed
        return True

    def bar(self) -> str:
        return "".join(segment.text for segment in self.query_one(KeyBar).render_line(0))


async def test_the_bar_shows_the_keys_shown_and_the_palette_on_the_right():
    app = KeysApp()
    async with app.run_test(size=(60, 6)) as pilot:
        await pilot.pause()
        line = app.bar()
        assert line.startswith(" 1 One  e Export ")
        assert "Hidden" not in line
        assert line.endswith("▏? Help ^p palette ")
        assert len(line) == 60


async def test_keys_that_do_not_fit_are_left_out_whole_and_help_stays():
    app = KeysApp()
    async with app.run_test(size=(30, 6)) as pilot:
        await pilot.pause()
        line = app.bar()
        assert line == " 1 One " + " " * 4 + "▏? Help ^p palette "  # no "e Exp" cut inside
        await pilot.click(KeyBar, offset=(len(" 1 One     ▏"), 0))
        assert app.pressed == ["help"]


async def test_a_click_on_a_key_presses_it():
    app = KeysApp()
    async with app.run_test(size=(60, 6)) as pilot:
        await pilot.pause()
        await pilot.click(KeyBar, offset=(len(" 1 One  e "), 0))
        assert app.pressed == ["export"]


async def test_a_key_that_cannot_act_now_is_dimmed_and_a_click_does_nothing():
    app = KeysApp()
    async with app.run_test(size=(60, 6)) as pilot:
        app.can_export = False
        app.refresh_bindings()
        await pilot.pause()
        bar = app.query_one(KeyBar)
        export = next(s for s in bar.render_line(0) if s.text == " e ")
        assert export.style.dim
        await pilot.click(KeyBar, offset=(len(" 1 One  e "), 0))
        assert app.pressed == []


async def test_the_line_is_drawn_again_only_when_the_keys_change():
    app = KeysApp()
    async with app.run_test(size=(60, 6)) as pilot:
        await pilot.pause()
        bar = app.query_one(KeyBar)
        drawn = bar.render_line(0)
        for _ in range(3):  # what a focus moving or a screen coming back does
            app.screen.refresh_bindings()
            await pilot.pause()
        assert bar.render_line(0) is drawn
        app.can_export = False
        app.refresh_bindings()
        await pilot.pause()
        assert bar.render_line(0) is not drawn
