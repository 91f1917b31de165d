"""Outside text as the console shows it: the feed's names, ids, numbers, reasons and raw frames,
rules' titles and templates' output go into widgets as Rich Text, never as markup (a name
`[@click=app.quit]x[/]` reads as itself), with every unprintable character made visible
(console.feed.printable). Widgets that parse strings as markup (Static, Label, OptionList,
RadioButton, Select, border titles, notifications) are given these Texts.
"""

from __future__ import annotations

from rich.text import Text
from textual.markup import escape

from console.feed.printable import UNPRINTABLE, printable, printable_lines


def plain(text: str, style: str = "") -> Text:
    """One line of outside text: never markup, its unprintable characters visible."""
    return Text(printable(text), style=style)


def plain_lines(text: str, style: str = "") -> Text:
    """`plain`, keeping its line breaks (a message body, a question)."""
    return Text(printable_lines(text), style=style)


def printable_text(text: Text) -> Text:
    """A Text put together from outside parts, each unprintable character made visible and
    styled as it was."""
    if text.plain.isprintable():
        return text
    cuts = [offset for found in UNPRINTABLE.finditer(text.plain)
            for offset in (found.start(), found.end())]
    result = text.blank_copy()
    for piece in text.divide(cuts):
        piece.style = ""  # the base style is the result's own
        if UNPRINTABLE.fullmatch(piece.plain):
            escaped = printable(piece.plain)
            piece = Text(escaped, spans=[span._replace(start=0, end=len(escaped))
                                         for span in piece.spans])
        result.append_text(piece)
    return result


def as_markup(text: str) -> str:
    """For what takes markup only (the command palette's hits): escaped and printable."""
    return escape(printable(text))
