"""A number drawn three rows tall in block characters, coloured by severity."""

from __future__ import annotations

from typing import Literal

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

Severity = Literal["ok", "warning", "error", "critical"]
SEVERITIES: tuple[Severity, ...] = ("ok", "warning", "error", "critical")

# A 3x5 pixel font; two pixel rows share one cell (upper/lower half blocks), so it is 3 rows tall.
_PIXELS = {
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": ("##.", ".#.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"),
    "3": ("###", "..#", "###", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", "..#", "..#", "..#"),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "###"),
    "-": ("...", "...", "###", "...", "..."),
    # Thousands are set apart by a gap, not drawn: a comma this small reads as a decimal point.
    ",": (".", ".", ".", ".", "."),
}
_HALF_BLOCKS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def _fold(top: str, bottom: str) -> str:
    return "".join(_HALF_BLOCKS[a == "#", b == "#"] for a, b in zip(top, bottom, strict=True))


def _to_rows(pixels: tuple[str, ...]) -> tuple[str, str, str]:
    """Fold five pixel rows into three character rows of half blocks."""
    blank = "." * len(pixels[0])
    return _fold(pixels[0], pixels[1]), _fold(pixels[2], pixels[3]), _fold(pixels[4], blank)


GLYPHS = {char: _to_rows(pixels) for char, pixels in _PIXELS.items()}


def format_number(value: int | None) -> str:
    """Thousands-separated digits, or a dash when there is no value."""
    return "-" if value is None else f"{value:,}"


def big_rows(number: str) -> list[str]:
    """The three rows of `number` (digits, commas, minus) in the block font; a comma is a
    blank column, so "2,963" reads as 2 963, never as 2.963."""
    glyphs = [GLYPHS[char] for char in number]
    return [" ".join(glyph[row] for glyph in glyphs) for row in range(3)]


class BigNumber(Widget):
    """A large number with a caption; falls back to one bold line when too narrow."""

    DEFAULT_CSS = """
    BigNumber {
        width: 1fr;
        height: auto;
        padding: 0 1;
        text-align: center;
        &.-ok { color: $success; }
        &.-warning { color: $warning; }
        &.-error { color: $error; }
        /* Critical fills the whole tile, as a "route down" should be seen from across the room. */
        &.-critical { background: $error; color: $text; }
        & > .big-number--digits { text-style: bold; }
        & > .big-number--caption { color: $text-muted; }
        &.-critical > .big-number--caption { color: $text; text-style: bold; }
    }
    """
    COMPONENT_CLASSES = {"big-number--digits", "big-number--caption"}

    def __init__(
        self,
        value: int | None = None,
        caption: str = "",
        severity: Severity = "ok",
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._value: int | None = None
        self._caption = ""
        self._severity: Severity = "ok"
        self.add_class("-ok")
        self.update_value(value, caption, severity)

    def update_value(self, value: int | None, caption: str, severity: Severity) -> None:
        """Show `value` (None: a dash) over `caption`; a no-op when nothing changed."""
        if severity not in SEVERITIES:
            raise ValueError(f"unknown severity {severity!r}; expected one of {SEVERITIES}")
        if (value, caption, severity) == (self._value, self._caption, self._severity):
            return
        self._value, self._caption, self._severity = value, caption, severity
        for level in SEVERITIES:
            self.set_class(level == severity, f"-{level}")
        self.refresh(layout=True)  # the height changes with the caption and the fallback

    def _big_width(self) -> int:
        return len(big_rows(format_number(self._value))[0])

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return max(self._big_width(), len(self._caption))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        number_rows = 3 if self._big_width() <= width else 1
        return number_rows + (1 if self._caption else 0)

    def render(self) -> Text:
        number = format_number(self._value)
        rows = big_rows(number) if self._big_width() <= self.content_size.width else [number]
        # No value is not a state to colour: the dash is as quiet as the caption.
        component = "big-number--caption" if self._value is None else "big-number--digits"
        text = Text("\n".join(rows), style=self.get_component_rich_style(component), end="")
        if self._caption:
            text.append("\n")
            text.append(self._caption, style=self.get_component_rich_style("big-number--caption"))
        return text
