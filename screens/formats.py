"""How figures, times and states read on every screen: one place, so that a percentage or a
time of day looks the same wherever it is shown. Marks read without colour; the colour is for
those who have it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo

from rich.text import Text

from store.conditions import PERCENT, number, with_unit
from store.metrics import is_carrier_failure
from store.views import DAY_MS, ConsoleData, time_left

DASH = "–"
NAME_CHARS = 20  # an account's name in a list; a longer one ends in … (its screen has it whole)
NEAR_LIMIT = 0.9  # channels or CPS this close to the limit are marked
SEVERITY_MARK = {  # an alert's or a check's severity
    "critical": ("‼", "bold reverse red"),
    "error": ("✖", "bold red"),
    "warning": ("▲", "yellow"),
    "info": ("·", "dim"),
}
STATUS_LOOK = {  # an account's status
    "active": ("●", "green"),
    "inactive": ("○", "dim"),
    "disabled": ("✖", "bold red"),
    "penalty": ("▲", "bold yellow"),
}


def names_of(data: ConsoleData) -> dict[tuple[str, str], str]:
    """Every account's name by (kind, id): screens show an account by its name, not its id."""
    return {(kind, id_): name or id_ for kind, id_, name in data.account_names()}


def name_of(names: Mapping[tuple[str, str], str], kind: str, account: str) -> str:
    """An account's name; its id while the store has none for it."""
    return names.get((kind, account)) or account


def local_time(ms: int | None, tz: tzinfo, pattern: str = "%H:%M:%S") -> str:
    if ms is None:
        return DASH
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz).strftime(pattern)


def iso_utc(ms: int, timespec: str = "milliseconds") -> str:
    """For exports: ISO 8601, UTC, whatever the display time zone."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec=timespec)


def recent_time(ms: int | None, now_ms: int, tz: tzinfo, pattern: str = "%H:%M:%S") -> str:
    """A time of day within a day of now, else the date too."""
    if ms is not None and abs(now_ms - ms) >= DAY_MS:
        return local_time(ms, tz, "%m-%d %H:%M")
    return local_time(ms, tz, pattern)


def penalty_until(until_ms: int | None, now_ms: int, tz: tzinfo) -> str:
    """A penalty's end as every screen writes it: 'until 12:12' (the date too from a day)."""
    return f"until {recent_time(until_ms, now_ms, tz, '%H:%M')}"


def as_of(ms: int, now_ms: int, tz: tzinfo) -> str:
    """When a figure that is no longer current was: 'as of 12:04' (the date too from a day)."""
    return f"as of {recent_time(ms, now_ms, tz, '%H:%M')}"


def penalty_left(until_ms: int, now_ms: int) -> str:
    return f"{time_left(until_ms - now_ms)} left"


def percent(value: float | None) -> str:
    """A percentage as everything writes one (alert texts too): `49.7%`."""
    return DASH if value is None else with_unit(number(value, 1), PERCENT)


def figure(value: float | None, decimals: int = 0) -> str:
    """A number in a table, its unit in the column's header (`ACD (s)`): `164`, `2.1`."""
    return DASH if value is None else number(value, decimals)


def seconds(value: float | None, decimals: int = 0) -> str:
    """A duration in running text, as alert texts write one: `164 s`, `2.1 s`. In a table, a
    `figure` under a header that says `(s)`."""
    return DASH if value is None else with_unit(number(value, decimals), "s")


def pdd(ms: float | None) -> str:
    """PDD in running text: `2.1 s` (it is kept in milliseconds)."""
    return seconds(None if ms is None else ms / 1000, 1)


def pdd_figure(ms: float | None) -> str:
    """PDD in a table, under `PDD (s)`: `2.1`."""
    return figure(None if ms is None else ms / 1000, 1)


def money(amount: float | None, currency: str | None = None, decimals: int = 2) -> str:
    """An amount with its currency: `1,234.50 USD` (a call's charge to 4 decimals)."""
    if amount is None:
        return DASH
    return with_unit(number(amount, decimals), currency or "")


def used_of(used: int, limit: float | None) -> Text:
    """'52/60', or '52/–' without a limit (0 means unlimited); marked from 90 % of the limit,
    red at it."""
    if not limit:
        return Text(f"{used:,}/{DASH}")
    text = f"{used:,}/{limit:,.0f}"
    if used >= limit:
        return Text(f"▲ {text}", style="bold red")
    return Text(f"▲ {text}", style="yellow") if used >= NEAR_LIMIT * limit else Text(text)


def cut(text: str, width: int) -> str:
    """At most `width` characters, the last an ellipsis when cut."""
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


MIN_TAIL = 5  # kept of a name's end when its start reads like another's: "…tre 2"


def cut_names(names: Sequence[str], width: int = NAME_CHARS) -> list[str]:
    """Names of one list, each in at most `width` characters: cut at the end ("Atlas Voice
    Internat…"), except names that would then read the same, which keep the tail that tells
    them apart ("Helpline Conta…tre 2", "Helpline Conta…tre 3")."""
    cuts = [cut(name, width) for name in names]
    alike: dict[str, set[str]] = defaultdict(set)
    for name, short in zip(names, cuts, strict=True):
        alike[short].add(name)
    tails = {short: _distinct_tail(group, width) for short, group in alike.items()
             if len(group) > 1}
    return [_cut_middle(name, width, tails[short]) if short in tails else short
            for name, short in zip(names, cuts, strict=True)]


def _distinct_tail(names: set[str], width: int) -> int:
    """The shortest tail (at least MIN_TAIL) after which the names, cut in the middle, differ;
    the longest that fits when none does."""
    longest = max(width - 2, 0)
    for tail in range(min(MIN_TAIL, longest), longest + 1):
        if len({_cut_middle(name, width, tail) for name in names}) == len(names):
            return tail
    return longest


def _cut_middle(text: str, width: int, tail: int) -> str:
    if len(text) <= width:
        return text
    return text[:width - 1 - tail] + "…" + text[len(text) - tail:]


def marked(mark_and_style: tuple[str, str], text: str) -> Text:
    mark, style = mark_and_style
    return Text(f"{mark} {text}", style=style)


ANSWERED_MARK = "✓"
CARRIER_FAILURE_MARK = "✖"  # 408 and 5xx: the carrier failed, not the number or the caller


def code_style(code: int | None) -> str:
    """A SIP code's colour: answered green, a carrier's failure (408, 5xx) red."""
    if code is None:
        return ""
    return "green" if 200 <= code < 300 else "red" if is_carrier_failure(code) else ""


def code_mark(code: int | None) -> str:
    """What the colour says, in a mark that reads without it: ✓ answered, ✖ carrier failure."""
    if code is None:
        return ""
    return (ANSWERED_MARK if 200 <= code < 300 else CARRIER_FAILURE_MARK
            if is_carrier_failure(code) else "")


def sip_code(code: int | None, phrase: str = "") -> Text:
    """A final SIP code with its mark and colour ('503 ✖', '200 ✓', '404'), then `phrase`."""
    if code is None:
        return Text(DASH)
    text = Text(" ".join(part for part in (str(code), code_mark(code)) if part),
                style=code_style(code))
    if phrase:
        text.append(f" {phrase}")
    return text
