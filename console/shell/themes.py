"""noc's own colours: calm on a dark screen all day, with states that stand out when they must."""

from __future__ import annotations

from textual.theme import Theme

NOC_DARK = Theme(
    name="noc-dark",
    primary="#5aa9e6",
    secondary="#7fc8a9",
    accent="#f2c14e",
    foreground="#d8dee9",
    background="#11151c",
    surface="#171c24",
    panel="#1d2430",
    success="#6cc070",
    warning="#f2a541",
    error="#e5534b",
    dark=True,
)

THEMES = (NOC_DARK,)
