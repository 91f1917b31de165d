"""Where the screens' layout lives: a .tcss file next to each screen module (and next to a
dialog in widgets/), named by the screen's CSS_PATH.

A screen reads its own files when it is first shown, and Textual then restyles every widget of
the app; an app that reads them all at start (`stylesheets()` in its CSS_PATH) pays that once.
Reusable widgets keep their defaults in DEFAULT_CSS, below every file, so a screen can override
them."""

from __future__ import annotations

from pathlib import Path

import widgets

FOLDERS = (Path(__file__).parent, Path(widgets.__file__).parent)


def stylesheets() -> list[Path]:
    """Every screen's and dialog's .tcss file, resolved as Textual resolves a CSS_PATH (so a
    screen shown later finds its files read already)."""
    return sorted(path.resolve() for folder in FOLDERS for path in folder.glob("*.tcss"))
