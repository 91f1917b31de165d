"""Screens and widgets say where the user goes and which dialog to show as messages up to the
app (screens/navigation.py, widgets/dialogs.py); the app alone moves between screens. Imports
cannot show a call through `self.app`, so this reads the code."""

from __future__ import annotations

import ast

from tests.feedkit import REPO

# The app's own ways of changing what is shown.
MOVES = {"push_screen", "push_screen_wait", "switch_screen", "pop_screen", "switch_mode",
         "open_account"}


# What an app mixes in to carry out those messages: the app's side, though kept with them.
APP_SIDE = {"DialogHost"}


def moves_in(source: str) -> list[tuple[int, str]]:
    """(line, call) of each call of one of MOVES, whatever it is called on, outside APP_SIDE."""
    tree = ast.parse(source)
    app_side = {id(node) for cls in ast.walk(tree)
                if isinstance(cls, ast.ClassDef) and cls.name in APP_SIDE
                for node in ast.walk(cls)}
    return [(node.lineno, ast.unparse(node.func))
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in MOVES and id(node) not in app_side]


def test_no_screen_or_widget_moves_the_app_itself():
    found = [f"{path.relative_to(REPO)}:{line}: {call}"
             for folder in ("screens", "widgets") for path in sorted((REPO / folder).glob("*.py"))
             for line, call in moves_in(path.read_text())]
    assert found == [], "post ShowDialog, OpenAccount, ShowMode or Back instead:\n" + "\n".join(
        found)


def test_the_check_sees_a_call_through_the_app():
    assert moves_in("self.app.push_screen(Confirm('?'), done)\n"
                    "app = self.app\napp.open_account('customer', 'acme')\n"
                    "class DialogHost:\n    def on_show_dialog(self, message):\n"
                    "        self.push_screen(message.dialog)\n") == [
        (1, "self.app.push_screen"), (3, "app.open_account")]
