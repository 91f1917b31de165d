from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen):
    BINDINGS = [("escape", "dismiss", "Close")]

    def compose(self):
        yield Static("help")
