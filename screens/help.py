"""Help: every key that works now, read from the running app rather than written down twice.

Global keys come from the app's bindings; the screen's keys from the screen beneath this dialog
and from every widget that can take the keys there (a table's copy and export keys, a tab bar's
arrows), grouped by what they act on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import takewhile
from os.path import commonprefix

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

PALETTE = ("Command palette (ctrl+p): every action of the console, by name. Type a customer or "
           "carrier name to jump to it, e.g. “ember”, then Enter.")
PALETTE_ACTION = "Command palette"
GROUP_NAMES = {  # widget class -> what its keys act on, where the class name says it badly
    "ContentTabs": "Tabs",
    "DataTable": "Tables and lists",
    "LiveTable": "Tables and lists",
    "OptionList": "Tables and lists",
    "SummaryPane": "Summary",
}


def humanize(name: str) -> str:
    """`SummaryTable` -> `Summary table`, `scroll_up` -> `scroll up`."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("_", " ").split()
    return " ".join([words[0], *(word.lower() for word in words[1:])]) if words else name


def group_title(node: DOMNode) -> str:
    name = type(node).__name__
    if isinstance(node, Screen):
        return f"This screen: {humanize(name.removesuffix('Screen'))}"
    return node.BINDING_GROUP_TITLE or GROUP_NAMES.get(name) or humanize(name)


def key_rows(node: DOMNode) -> list[tuple[str, str]]:
    """(keys, what they do) of a node's bindings. Keys of one action that say the same first
    word share a row: `↑ ↓ ← →  Move up, down, left, right`."""
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for _, binding in node._bindings:
        if binding.system:
            continue
        name = binding.action.split("(")[0]
        text = PALETTE_ACTION if name.endswith("command_palette") else (
            binding.description or humanize(name.split(".")[-1]))
        groups.setdefault((name, text.split()[0]), []).append(
            (node.app.get_key_display(binding), text))
    return [merged(items) for items in groups.values()]


def merged(items: list[tuple[str, str]]) -> tuple[str, str]:
    keys = list(dict.fromkeys(key for key, _ in items))
    modifier = commonprefix(keys).rpartition("+")[0]
    if len(keys) > 1 and modifier:  # shift+↑ shift+↓ -> shift+ ↑ ↓
        keys = [f"{modifier}+", *(key.removeprefix(f"{modifier}+") for key in keys)]
    keys = " ".join(keys)
    words = [text.split() for text in dict.fromkeys(text for _, text in items)]
    if len(words) == 1:
        return keys, " ".join(words[0])
    common = len(commonprefix(words))
    rest = ", ".join(" ".join(each[common:]) for each in words)
    return keys, f"{' '.join(words[0][:common])} {rest}"


def binding_nodes(screen: Screen) -> Iterable[DOMNode]:
    """The screen, then every widget that can take the keys there and the containers around
    it, outermost first (a pane's keys work while any widget in it has the focus); each kind
    once."""
    yield screen
    seen: set[type] = set()
    for widget in screen.focus_chain:
        inside = list(takewhile(lambda node: node is not screen, widget.ancestors_with_self))
        for node in reversed(inside):
            if type(node) not in seen:
                seen.add(type(node))
                yield node


def keys_table(rows: list[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True, min_width=18)
    table.add_column()
    for keys, action in rows:
        table.add_row(keys, action)
    return table


class HelpScreen(ModalScreen):
    """Every key, grouped: global, this screen, then what has the focus; scrolls."""

    CSS_PATH = "help.tcss"
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close help")]

    def __init__(self) -> None:
        super().__init__()
        self.beneath = self.app.screen  # the screen whose keys to list (help is not pushed yet)

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "Keys"
            box.border_subtitle = "↑ ↓ scroll · Esc, q or ? closes"
            for title, rows in self.groups():
                yield Static(title, classes="help-title")
                yield Static(keys_table(rows), classes="help-keys")
            yield Static(PALETTE, id="palette", markup=False)

    def groups(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """(title, [(keys, what they do)]) for the app, then the screen beneath and its
        widgets; a group that repeats another (two tab bars) is shown once."""
        found = [("Global", key_rows(self.app))]
        for node in binding_nodes(self.beneath):
            group = (group_title(node), key_rows(node))
            if group[1] and group not in found:
                found.append(group)
        return found

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()
