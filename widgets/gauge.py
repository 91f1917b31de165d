"""A one-line "value vs limit" bar, e.g. live channels against the channel limit."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from widgets import LOADING

WARNING_RATIO = 0.80
ERROR_RATIO = 0.95
MIN_BAR_WIDTH = 4


def format_quantity(value: float) -> str:
    """Whole numbers without decimals (channels), anything else with one (CPS)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def real_limit(limit: float | None) -> float | None:
    """The limit, or None when there is none: 0 means unlimited on the softswitch."""
    return limit if limit is not None and limit > 0 else None


def level_for(value: float, limit: float | None) -> str:
    """'ok', 'warning' or 'error' by how close `value` is to `limit`."""
    limit = real_limit(limit)
    if limit is None:
        return "ok"
    ratio = value / limit
    if ratio >= ERROR_RATIO:
        return "error"
    return "warning" if ratio >= WARNING_RATIO else "ok"


def filled_cells(value: float, limit: float, width: int) -> int:
    """Cells to fill; never empty for a non-zero value nor full below the limit."""
    ratio = min(max(value / limit, 0.0), 1.0)
    cells = round(ratio * width)
    if value > 0:
        cells = max(cells, 1)
    if value < limit:
        cells = min(cells, width - 1)
    return cells


class Gauge(Widget):
    """`label  ▕███████░░░░▏ 412 / 600`; a limit of None or 0 means unlimited: value only."""

    DEFAULT_CSS = """
    Gauge {
        width: 1fr;
        height: 1;
        & > .gauge--label { text-style: bold; }
        & > .gauge--bar { color: $success; }
        & > .gauge--track { color: $text-disabled; }
        &.-warning > .gauge--bar, &.-warning > .gauge--value { color: $warning; }
        &.-error > .gauge--bar, &.-error > .gauge--value { color: $error; text-style: bold; }
        /* A figure no longer current: greyed, its level not claimed (the label says when). */
        &.-stale > .gauge--label, &.-stale > .gauge--bar, &.-stale > .gauge--value {
            color: $text-muted; text-style: none;
        }
    }
    """
    COMPONENT_CLASSES = {"gauge--label", "gauge--bar", "gauge--track", "gauge--value"}

    def __init__(
        self,
        label: str = "",
        value: float = 0,
        limit: float | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._value: float = 0
        self._limit: float | None = None
        self._label = ""
        self._stale = False
        self.update_value(value, limit, label)

    @property
    def level(self) -> str:
        """'ok', 'warning' or 'error'."""
        return "ok" if self._value is None else level_for(self._value, self._limit)

    def update_value(self, value: float | None, limit: float | None, label: str, *,
                     stale: bool = False) -> None:
        """Show `value` of `limit` after `label` (None: not known yet, shown as such);
        `stale`: greyed, as a figure that is no longer current (the label should say as of
        when). A no-op when nothing changed."""
        if (value, limit, label, stale) == (self._value, self._limit, self._label, self._stale):
            return
        self._value, self._limit, self._label, self._stale = value, limit, label, stale
        self.set_class(stale, "-stale")
        self.set_class(not stale and self.level == "warning", "-warning")
        self.set_class(not stale and self.level == "error", "-error")
        self.refresh()

    def render(self) -> Text:
        value, limit, label = self._value, real_limit(self._limit), self._label
        style = self.get_component_rich_style
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        if label:
            text.append(label, style=style("gauge--label"))
            text.append("  ")
        if value is None:
            text.append(LOADING, style=style("gauge--label"))
            return text
        if limit is None:
            text.append(format_quantity(value), style=style("gauge--value"))
            return text
        numbers = f"{format_quantity(value)} / {format_quantity(limit)}"
        bar_width = self.content_size.width - text.cell_len - len(numbers) - 3  # ▕ ▏ and a space
        if bar_width >= MIN_BAR_WIDTH:
            filled = filled_cells(value, limit, bar_width)
            text.append("▕")
            text.append("█" * filled, style=style("gauge--bar"))
            text.append("░" * (bar_width - filled), style=style("gauge--track"))
            text.append("▏ ")
        text.append(numbers, style=style("gauge--value"))
        return text
