"""What the feed protocol calls printable, and outside text made so before it is shown.

Unprintable are the Unicode control (Cc: C0, DEL, C1), format (Cf: bidirectional overrides,
zero-width characters, the byte order mark ...) and line or paragraph separator characters. An
identifier holding one is refused by the decoder; any other text (a name, a reason, a raw frame)
may hold them, and is shown with each made visible as its escape (`\\x1b`, `\\u202e`), so that
nothing from outside reaches a terminal as a control sequence.
"""

from __future__ import annotations

import re

# Every Cc, Cf, Zl and Zp character (Unicode 14, with the format blocks' unassigned code points
# as later versions fill them); tests/test_printable.py checks it against unicodedata.
UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f]"
)


def printable(text: str) -> str:
    """`text` with every unprintable character made visible as its escape: `\\x1b`."""
    if text.isprintable():  # nearly always: then nothing to look for
        return text
    return UNPRINTABLE.sub(_escape, text)


def printable_lines(text: str) -> str:
    """`printable`, keeping line feeds as line breaks (for texts shown over several lines)."""
    return "\n".join(printable(line) for line in text.split("\n"))


def _escape(found: re.Match[str]) -> str:
    return found[0].encode("unicode_escape").decode("ascii")
