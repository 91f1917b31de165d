"""Quarantine: the feed input the console could not apply, with why, and the gaps in the feed.

Nothing bad in the feed is dropped silently: each bad frame or event is kept whole with its
reason, and each hole in the sequence is recorded, announced by the server or not. Here they can
be read (Enter shows the whole raw text) and exported for the switch's vendor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Log, Static

from console.feed.printable import printable, printable_lines
from screens.base import DataScreen
from screens.chrome import NocHeader
from screens.formats import DASH, cut, iso_utc, recent_time
from screens.safe_text import plain
from screens.tables import LiveTable
from store.views import ConsoleData, FeedView, GapRow, QuarantineRow
from widgets.dialogs import ShowDialog
from widgets.export import ExportResult, ExportScreen, Scope
from widgets.export_files import ExportColumn, export_path, write_table
from widgets.key_bar import KeyBar
from widgets.live_table import SCROLLBAR, Col

PAGE = 200
REASON_CHARS = 60
REASON_ROOM = 24  # what the received time and the seq take, with their padding
MIN_PREVIEW = 10
QUARANTINE_COLUMNS = (Col("received", "Received"), Col("seq", "Seq", "right"),
                      Col("reason", "Reason"), Col("preview", "Raw input", drop=1))
GAP_COLUMNS = (Col("from", "From seq", "right"), Col("to", "To seq", "right"),
               Col("events", "Events lost", "right"), Col("detected", "Detected"),
               Col("how", "How", drop=1))
HOW = {True: "announced by the server", False: "seen as a hole in seq"}
EXPORT_QUARANTINE = (ExportColumn("id", 0), ExportColumn("received (UTC)"), ExportColumn("seq", 0),
                     ExportColumn("reason"), ExportColumn("raw"))
EXPORT_GAPS = (ExportColumn("from seq", 0), ExportColumn("to seq", 0),
               ExportColumn("events lost", 0), ExportColumn("detected (UTC)"),
               ExportColumn("how"))


def gaps_path(path: Path) -> Path:
    """Where the gaps go, next to the quarantine's file: noc-q.csv -> noc-q-gaps.csv."""
    return path.with_name(f"{path.stem}-gaps{path.suffix}")


def export_feed_trouble(data: ConsoleData, path: Path) -> tuple[int, int]:
    """Write every quarantined input (its whole raw text) to `path` and the gaps beside it;
    return how many of each. Raises ExportError."""
    rows, gaps = data.feed_trouble()
    write_table(path, EXPORT_QUARANTINE, [
        (r.id, iso_utc(r.received_ms), r.seq, r.reason, r.preview) for r in rows
    ])
    write_table(gaps_path(path), EXPORT_GAPS, [
        (g.from_seq, g.to_seq, g.events, iso_utc(g.detected_ms), HOW[g.announced]) for g in gaps
    ])
    return len(rows), len(gaps)


@dataclass(frozen=True)
class QuarantineSnapshot:
    now_ms: int
    feed: FeedView
    page_start: int
    total: int
    rows: tuple[QuarantineRow, ...]
    gaps: tuple[GapRow, ...]


class QuarantineScreen(DataScreen):
    """The quarantine, newest first a page at a time, and the gaps; Enter reads an input whole,
    `e` exports both."""

    TITLE = "Quarantine"
    BINDINGS = [
        Binding("e", "export", "Export"),
        Binding("n", "page(1)", "Older page"),
        Binding("p", "page(-1)", "Newer page"),
    ]
    CSS_PATH = [*DataScreen.CSS_PATH, "quarantine.tcss"]

    def __init__(self) -> None:
        super().__init__()
        self.page_start = 0
        self._rows: dict[str, QuarantineRow] = {}
        self._total = 0
        self._has_gaps = False
        self._export_counts = (0, 0)  # (inputs, gaps) of the last export

    def compose(self) -> ComposeResult:
        yield NocHeader("Quarantine")
        yield Static("Quarantined input", id="quarantine-title", classes="section-title")
        yield LiveTable(QUARANTINE_COLUMNS, id="quarantine")
        yield Static("Gaps in the feed", id="gaps-title", classes="section-title")
        gaps = LiveTable(GAP_COLUMNS, id="gaps")
        gaps.show_cursor = False  # nothing to open there: the table only scrolls
        yield gaps
        yield KeyBar()

    def gather(self, data: ConsoleData, now_ms: int) -> QuarantineSnapshot:
        start = self.page_start
        return QuarantineSnapshot(now_ms, data.feed(), start, data.quarantine_count(),
                                  tuple(data.quarantine(limit=PAGE, offset=start)),
                                  tuple(data.gaps()))

    def show(self, snapshot: QuarantineSnapshot) -> None:
        self.query_one(NocHeader).show_feed(snapshot.feed, snapshot.now_ms, role=self.app.role,
                                            read_only=self.app.read_only, tz=self.tz)
        self._total = snapshot.total
        self._has_gaps = bool(snapshot.gaps)
        self.refresh_bindings()
        self._show_quarantine(snapshot)
        self._show_gaps(snapshot)

    def on_resize(self) -> None:
        if self._last_snapshot is not None:
            self._show_quarantine(self._last_snapshot)  # the previews are cut to the width

    def _show_quarantine(self, snapshot: QuarantineSnapshot) -> None:
        self._rows = {str(row.id): row for row in snapshot.rows}
        table = self.query_one("#quarantine", LiveTable)
        width = (table.size.width or self.size.width) - SCROLLBAR
        # Reasons and the start of the raw input are cut to the width (Enter shows them whole):
        # the reason first, the raw input in what is left.
        reason_chars = min(REASON_CHARS, width - REASON_ROOM)
        rows = [(key, (recent_time(r.received_ms, snapshot.now_ms, self.tz),
                       DASH if r.seq is None else f"{r.seq:,}",
                       cut(printable(r.reason), reason_chars)))
                for key, r in self._rows.items()]
        used = sum(2 + max([len(col.label), *(len(cells[index]) for _, cells in rows)])
                   for index, col in enumerate(QUARANTINE_COLUMNS[:-1]))
        room = width - used - 2
        previews = (cut(printable(r.preview.replace("\n", "⏎")), room) if room >= MIN_PREVIEW
                    else "" for r in self._rows.values())
        table.set_rows((key, (*cells[:2], Text(cells[2], style="bold"),
                              Text(preview, style="dim")))
                       for (key, cells), preview in zip(rows, previews, strict=True))
        table.display = bool(rows)
        first, last = snapshot.page_start + 1, snapshot.page_start + len(snapshot.rows)
        self.query_one("#quarantine-title", Static).update(
            f"Quarantined input · {snapshot.total:,} · newest first, {first:,}–{last:,} · "
            "Enter shows one whole" if rows else
            "Quarantined input · ✓ none: every input so far was applied")

    def _show_gaps(self, snapshot: QuarantineSnapshot) -> None:
        table = self.query_one("#gaps", LiveTable)
        table.set_rows((str(g.id), (
            f"{g.from_seq:,}", f"{g.to_seq:,}", Text(f"{g.events:,}", style="bold"),
            recent_time(g.detected_ms, snapshot.now_ms, self.tz), HOW[g.announced],
        )) for g in snapshot.gaps)
        table.display = bool(snapshot.gaps)
        lost = sum(gap.events for gap in snapshot.gaps)
        self.query_one("#gaps-title", Static).update(
            f"Gaps in the feed · {len(snapshot.gaps):,} · {lost:,} events lost for good"
            if snapshot.gaps else "Gaps in the feed · ✓ none: no event lost")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        row = self._rows.get(event.row_key.value or "")
        if event.data_table.id == "quarantine" and row is not None:
            self.post_message(ShowDialog(RawInputModal(row, self.when(row.received_ms))))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "export":
            return True if self._total or self._has_gaps else None
        if action == "page":
            step = parameters[0]
            return step < 0 < self.page_start or (step > 0 and self.page_start + PAGE < self._total)
        return True

    def action_page(self, step: int) -> None:
        self.page_start = max(0, self.page_start + step * PAGE)
        self.refresh_bindings()
        self.refresh_now()

    def action_export(self) -> None:
        stamp = datetime.fromtimestamp(self.app.clock() / 1000, UTC).strftime("%Y%m%d-%H%M%S")
        self.post_message(ShowDialog(
            ExportScreen("Export the quarantine and the gaps",
                         str(export_path(self.app.options.exports, "quarantine", stamp)),
                         self._export, selection_label=None,
                         all_label="Everything, raw input whole (gaps go in a -gaps file)"),
            self._exported,
        ))

    def _export(self, path: Path, scope: Scope) -> int:
        self._export_counts = export_feed_trouble(self.app.data, path)
        return self._export_counts[0]

    def _exported(self, result: ExportResult | None) -> None:
        if result is not None:
            inputs, gaps = self._export_counts
            self.notify(f"Exported {inputs:,} quarantined inputs to {result.path} and {gaps:,} "
                        f"gaps to {gaps_path(result.path)}", timeout=10)


class RawInputModal(ModalScreen):
    """One quarantined input whole, however long (a refused frame may be megabytes): read on
    a worker, cut into lines as wide as the dialog, drawn a screen at a time."""

    CSS_PATH = "quarantine.tcss"
    BINDINGS = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("c", "copy", "Copy raw input"),
    ]

    def __init__(self, row: QuarantineRow, received: str) -> None:
        super().__init__()
        self.row = row
        seq = "no seq" if row.seq is None else f"seq {row.seq:,}"
        self.facts = f"{seq} · received {received}"
        self.raw = ""

    def compose(self) -> ComposeResult:
        row = self.row
        with Vertical() as box:
            box.border_title = f"Quarantined input #{row.id}"
            box.border_subtitle = "c copy · Esc closes"
            yield Static(plain(row.reason), id="raw-reason")
            yield Static(self.facts, id="raw-facts", markup=False)
            yield Log(highlight=False, auto_scroll=False)

    def on_mount(self) -> None:
        self._load()

    @work(thread=True)
    def _load(self) -> None:
        raw = self.app.data.quarantine_raw(self.row.id)
        self.app.call_from_thread(self._show, raw)

    def _show(self, raw: str | None) -> None:
        facts = self.query_one("#raw-facts", Static)
        if raw is None:
            facts.update("This input is no longer stored (pruned by retention).")
            return
        self.raw = raw
        facts.update(f"{self.facts} · {len(raw):,} characters")
        self._fill()
        self.query_one(Log).focus()

    def on_resize(self) -> None:
        if self.raw:
            self._fill()

    def _fill(self) -> None:
        """Cut the text to the log's width, leaving room for its scrollbar."""
        log = self.query_one(Log)
        width = log.size.width - log.styles.scrollbar_size_vertical
        log.clear()
        log.write_lines(cut_lines(printable_lines(self.raw), max(20, width)), scroll_end=False)
        log.scroll_home(animate=False)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.raw)
        self.notify(f"Copied {len(self.raw):,} characters")


def cut_lines(text: str, width: int) -> Sequence[str]:
    """The text's lines, each cut into pieces of `width` characters (no wrapping to measure);
    the text must be printable (else splitlines would split at more than line feeds)."""
    return [line[start:start + width] for line in text.splitlines() or [""]
            for start in range(0, max(len(line), 1), width)]
