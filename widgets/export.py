"""The small modal that asks where to export a table, and what of it (the files are written by
widgets/export_files.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, RadioSet, Static

from widgets.export_files import PRIVATE_FOLDER, ExportError
from widgets.toggles import MarkedRadioButton

Scope = Literal["all", "selection"]


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int


class ExportScreen(ModalScreen[ExportResult | None]):
    """Asks for a file and a scope, then runs `export` on a thread (it may read the store);
    errors keep the dialog open."""

    CSS_PATH = "export.tcss"

    BINDINGS = [
        # Priority, so that Enter exports from the scope buttons too (space picks one there).
        Binding("enter", "export", "Export", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(
        self,
        title: str,
        default_path: str,
        export: Callable[[Path, Scope], int],
        *,
        selection_label: str | None,
        all_label: str,
    ) -> None:
        """`selection_label` is None when there is no selection to export."""
        super().__init__()
        self._title = title
        self._default_path = default_path
        self._export = export
        self._selection_label = selection_label
        self._all_label = all_label
        self._overwrite: Path | None = None  # the existing file Enter was pressed on once
        self._exporting = False

    def compose(self) -> ComposeResult:
        has_selection = self._selection_label is not None
        with Vertical() as dialog:
            dialog.border_title = Text(self._title)  # may name an account: never markup
            dialog.border_subtitle = "Enter export · Esc cancel"
            yield Label("File  [dim](.csv, .json or .xlsx)[/]")
            yield Input(self._default_path, select_on_focus=False)
            yield Label("Rows  [dim](Tab, then space to choose)[/]")
            with RadioSet():
                yield MarkedRadioButton(
                    self._selection_label or "Selection (none)",
                    value=has_selection,
                    disabled=not has_selection,
                    name="selection",
                )
                yield MarkedRadioButton(self._all_label, value=not has_selection, name="all")
            yield Static(classes="message", markup=False)

    def action_export(self) -> None:
        typed = self.query_one(Input).value.strip()
        if not typed:
            self._show("Type a file name")
            return
        path = Path(typed).expanduser().absolute()
        if path.is_file() and self._overwrite != path:
            self._overwrite = path
            self._show(f"{path} exists: Enter again to overwrite it", warning=True)
            return
        try:
            self._make_default_folder(path)
        except OSError as err:
            self._show(f"Cannot create folder {path.parent}: {err.strerror}")
            return
        pressed = self.query_one(RadioSet).pressed_button
        scope: Scope = "selection" if pressed and pressed.name == "selection" else "all"
        if self._exporting:
            return
        self._exporting = True
        self._show(f"Exporting to {path}…", warning=True)
        self._run_export(path, scope)

    class Done(Message):
        """An export run on a thread: the rows written, or why it failed."""

        def __init__(self, result: ExportResult | None, error: str = "") -> None:
            super().__init__()
            self.result, self.error = result, error

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def _run_export(self, path: Path, scope: Scope) -> None:
        """Read and write on a thread: the console goes on drawing meanwhile, however long a
        busy store or disk makes it."""
        try:
            self.post_message(self.Done(ExportResult(path, self._export(path, scope))))
        except ExportError as err:
            self.post_message(self.Done(None, str(err)))
        except Exception as err:  # a failed read of the store too: said, not a crash
            self.post_message(self.Done(None, f"Export failed: {err}"))

    def on_export_screen_done(self, done: Done) -> None:
        self._exporting = False
        if done.result is None:
            self._show(done.error)
            return
        self.dismiss(done.result)

    def _make_default_folder(self, path: Path) -> None:
        """The folder exports go to by default is made on first use, private (0700); any other
        must exist (a typo is then not a folder made by mistake)."""
        folder = Path(self._default_path).expanduser().absolute().parent
        if path.parent == folder and not folder.exists():
            folder.mkdir(mode=PRIVATE_FOLDER, parents=True)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _show(self, message: str, *, warning: bool = False) -> None:
        status = self.query_one(".message", Static)
        status.update(message)
        status.set_class(warning, "-warning")
