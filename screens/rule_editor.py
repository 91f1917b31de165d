"""The alert rule editor: a modal form that creates, edits or copies one rule.

The form only gathers what is typed, in the field names of console.alerting.rules; saving hands
them to `save_rule`, whose validation is the only one, and each problem it reports is marked
under its field. Fields that do not apply to the chosen account kind or area are hidden, and not
sent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from console.alerting.areas import (
    AREAS,
    CARRIER,
    CUSTOMER,
    DEFAULT_SAMPLE_PERIOD_S,
    INSTANT,
    SCRIPT,
    Area,
)
from console.alerting.rules import (
    OPERATORS,
    PENALTIES,
    UNITS,
    FieldError,
    RuleInvalid,
    rule_fields,
    save_rule,
)
from console.alerting.templates import looks_inline
from screens.confirm import Confirm
from screens.safe_text import plain
from store.alerting import FEED, LEVELS, Rule
from store.conditions import SIGNS
from store.database import StoreError
from widgets.dialogs import ShowDialog
from widgets.toggles import MarkedCheckbox

KINDS = ((CUSTOMER, "customer"), (CARRIER, "carrier"), (FEED, "the feed"))
ALL_ACCOUNTS = "*"
TAGGED = "<tagged>"  # the Account choice that reveals the Tag input; not an account id
CUSTOM_PENALTY = "<custom>"
DIALOG_CHROME = 4  # rows the form cannot use: the dialog's border, the footer and its margin
DURATIONS = ("sample_period", "pending", "penalty", "repeat")
NEW_RULE = {"kind": CARRIER, "company": ALL_ACCOUNTS, "area": "consecutive_failures",
            "operator": ">=", "level": "warning", "enabled": True}
# Where each rule field is shown: the form row that marks its errors, in the order of the form
# (the first field at fault gets the focus).
FIELD_ROWS = {
    "title": "title", "kind": "kind", "company": "account", "tag": "account", "area": "area",
    "script": "script", "operator": "condition", "threshold": "condition",
    "reset_threshold": "condition", "sample_period": "sample-period",
    "minimum_sample": "minimum-sample", "pending": "pending", "repeat": "repeat",
    "penalty": "penalty", "recipients": "recipients", "template": "template", "level": "level",
    "enabled": "enabled",
}
# Fields that share a row with others, named in their error lines so as to say which is at fault.
NAMED_IN_ERRORS = ("operator", "threshold", "tag")
FIRES = {"<": "below {}", "<=": "at {} or below", "=": "at exactly {}", ">=": "at {} or above",
         ">": "above {}"}


def duration_text(seconds: int) -> str:
    """Seconds as one would type them: 300 -> "5m", 5400 -> "90m"."""
    for unit, size in sorted(UNITS.items(), key=lambda item: -item[1]):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def area_label(area: Area) -> str:
    """`ASR (%)`, `PDD (s)`, `Consecutive failures`: the unit a threshold is typed in."""
    return f"{area.label} ({area.unit})" if area.unit else area.label


def field_text(fields: Mapping[str, object], name: str) -> str:
    """A rule field (as rules.rule_fields gives it) as it is typed in the form."""
    value = fields.get(name)
    if value is None:
        return ""
    if name in DURATIONS:
        return duration_text(int(str(value)))
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def entry(name: str, fields: Mapping[str, object], placeholder: str, *, short: bool = False,
          widget_id: str | None = None) -> Input:
    """A one-line input for the rule field `name`, showing its value in `fields`."""
    return Input(field_text(fields, name), placeholder=placeholder, compact=True,
                 classes="short" if short else "wide", id=widget_id or name.replace("_", "-"))


def choice(widget_id: str, options: list[tuple[str, str]], value: object, *,
           short: bool = False) -> Select[str]:
    """A one-line choice among (label, value) options, one of which is always chosen."""
    return Select(options, value=value, allow_blank=False, compact=True,
                  classes="short" if short else "", id=widget_id)


def _number(text: str) -> float | None:
    try:
        number = float(text.replace(",", ""))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def hysteresis_hint(area: Area, operator: str, threshold: str, reset: str) -> tuple[str, bool]:
    """When the rule fires and clears, in words, from what is typed so far; and whether the
    reset threshold is on the wrong side (the hint then says where it must be)."""
    if not threshold.strip() or operator not in FIRES:
        return "fires at the threshold; reset (optional): where it clears", False
    limit = _number(threshold)
    if limit is None:
        return "the threshold must be a number", True
    fires = "fires " + FIRES[operator].format(area.format_limit(limit))
    if not reset.strip():
        return f"{fires}, clears as soon as the condition no longer holds", False
    back = _number(reset)
    if back is None:
        return f"{fires}; the reset threshold must be a number", True
    shown = area.format_limit(back)
    if operator == "=":
        return f"{fires}; = clears as soon as the value differs: leave reset empty", True
    if operator in ("<", "<="):
        if back > limit or (operator == "<" and back == limit):
            return f"{fires}, clears at {shown} or above", False
        side = "above" if operator == "<=" else "at or above"
    else:
        if back < limit or (operator == ">" and back == limit):
            return f"{fires}, clears at {shown} or below", False
        side = "below" if operator == ">=" else "at or below"
    return f"{fires}; reset must be {side} {area.format_limit(limit)}", True


def problems_summary(errors: Sequence[FieldError], unshown: Sequence[FieldError]) -> str:
    """`2 problems: fix the marked fields`, followed by those no field of the form shows."""
    count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
    marked = len(errors) - len(unshown)
    parts = ["fix the marked fields"] if marked else []
    parts += [str(error) for error in unshown]
    return f"✖ {count}: " + "; ".join(parts)


class FormRow(Vertical):
    """One field of the form: its label and controls on a line, then its hint and its errors."""

    def __init__(self, name: str, label: str, *controls: Widget, hint: str = "",
                 hint_below: bool = False, starts_group: bool = False) -> None:
        super().__init__(id=f"row-{name}", classes="row group" if starts_group else "row")
        self.field_label = label
        self.controls = controls
        self.hint = hint
        self.hint_below = hint_below

    def compose(self) -> ComposeResult:
        with Horizontal(classes="line"):
            yield Label(self.field_label, classes="label")
            yield from self.controls
            if self.hint and not self.hint_below:
                yield Static(self.hint, classes="hint", markup=False)
        if self.hint and self.hint_below:
            yield Static(self.hint, classes="hint below", markup=False)
        yield Static(classes="error below", markup=False)

    def show_errors(self, messages: Sequence[str]) -> None:
        error = self.query_one(".error", Static)
        error.update("\n".join(f"✖ {message}" for message in messages))
        error.display = bool(messages)


class RuleEditor(ModalScreen[Rule | None]):
    """A new rule (`rule` None), an existing one edited in place, or a copy of one (`copy`).

    Dismisses with the saved Rule, or None when cancelled."""

    CSS_PATH = "rule_editor.tcss"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, db_path: Path, *, rule: Rule | None = None,
                 accounts: Sequence[tuple[str, str, str]] = (), templates: Sequence[str] = (),
                 now_ms: int, copy: bool = False) -> None:
        """`accounts` are (kind, id, name); `templates` the names of the named templates."""
        super().__init__()
        self.db_path = db_path
        self.rule_id = rule.id if rule is not None and not copy else None
        self.accounts = accounts
        self.templates = templates
        self.now_ms = now_ms
        self.initial = rule_fields(rule) if rule is not None else dict(NEW_RULE)
        if rule is not None and copy:
            self.initial["title"] = f"{rule.title} (copy)"
        self.heading = (f"Edit rule: {rule.title}" if self.rule_id is not None
                        else "New alert rule")
        # The kind the Account and Area choices were made for.
        self.shown_kind = str(self.initial.get("kind", FEED))
        self.unchanged: dict[str, object] = {}
        self.saving = False  # a save runs on a thread until its answer comes

    # Building the form -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        start = self.initial
        kind = self.shown_kind
        area = AREAS[str(start["area"])]
        penalty_s = int(start.get("penalty", 0))
        preset = next((name for name, seconds in PENALTIES.items() if seconds == penalty_s),
                      CUSTOM_PENALTY)
        default_period = duration_text(DEFAULT_SAMPLE_PERIOD_S)
        with Vertical(id="dialog") as dialog:
            dialog.border_title = plain(self.heading)
            dialog.border_subtitle = "ctrl+s save · Esc cancel"
            with VerticalScroll(id="form", can_focus=False):
                yield FormRow("title", "Title", entry("title", start, "e.g. Carrier ASR low"))
                yield FormRow("kind", "Applies to", choice(
                    "kind", [(label, value) for value, label in KINDS], kind, short=True))
                yield FormRow("account", "Account",
                              choice("account", self.account_choices(kind, start),
                                     self.account_value(start)),
                              entry("tag", start, "tag", short=True))
                yield FormRow("area", "Area", choice("area", self.area_choices(kind), area.name),
                              starts_group=True)
                yield FormRow("script", "Script function", entry("script", start, "name"),
                              hint="a function of the plug-in module", hint_below=True)
                yield FormRow("condition", "Condition",
                              choice("operator", [(SIGNS[op], op) for op in OPERATORS],
                                     start.get("operator", ">=")),
                              entry("threshold", start, "threshold", short=True),
                              Label("reset", id="reset-label"),
                              entry("reset_threshold", start, "optional", short=True),
                              hint=self.initial_hint(area), hint_below=True)
                yield FormRow("sample-period", "Sample period",
                              entry("sample_period", start, default_period, short=True),
                              hint=f"default {default_period}")
                yield FormRow("minimum-sample", "Minimum sample",
                              entry("minimum_sample", start, "0", short=True),
                              hint="attempts in window; fewer = insufficient data")
                yield FormRow("pending", "Pending", entry("pending", start, "none", short=True),
                              hint="hold this long before firing")
                yield FormRow("repeat", "Repeat", entry("repeat", start, "once", short=True),
                              hint="while firing; empty = once", starts_group=True)
                yield FormRow("penalty", "Penalty",
                              choice("penalty", [(name, name) for name in PENALTIES]
                                     + [("custom…", CUSTOM_PENALTY)], preset, short=True),
                              entry("penalty", start if preset == CUSTOM_PENALTY else {},
                                    "e.g. 2h", short=True, widget_id="penalty-custom"),
                              hint="disables the account when it fires")
                yield FormRow("recipients", "Recipients",
                              entry("recipients", start, "noc@example.com"),
                              hint="comma-separated emails, +phone numbers or apprise URLs",
                              hint_below=True)
                yield FormRow("template", "Template", choice(
                    "template", self.template_choices(str(start.get("template", ""))),
                    str(start.get("template", ""))))
                yield FormRow("level", "Level", choice(
                    "level", [(level, level) for level in LEVELS],
                    start.get("level", "warning"), short=True))
                yield FormRow("enabled", "Enabled", MarkedCheckbox(
                    "the engine evaluates this rule", value=bool(start.get("enabled", True)),
                    compact=True, id="enabled"))
            with Horizontal(id="footer"):
                yield Static(id="summary", markup=False)
                yield Button("Save", variant="primary", compact=True, id="save")
                yield Button("Cancel", compact=True, id="cancel")

    def initial_hint(self, area: Area) -> str:
        """The condition's hint as first shown (updated as the user types)."""
        return hysteresis_hint(area, str(self.initial.get("operator", "")),
                               field_text(self.initial, "threshold"),
                               field_text(self.initial, "reset_threshold"))[0]

    @staticmethod
    def account_value(fields: dict[str, object]) -> str:
        return TAGGED if "tag" in fields else str(fields.get("company", ALL_ACCOUNTS))

    def account_choices(self, kind: str,
                        fields: dict[str, object]) -> list[tuple[str | Text, str]]:
        """All of the kind, its accounts by name, the rule's own account even if it is gone,
        and the choice of a tag."""
        if kind == FEED:
            return [("the feed as a whole", ALL_ACCOUNTS)]
        choices = [(f"All {kind}s", ALL_ACCOUNTS)]
        choices += [(plain(name or id_), id_) for kind_, id_, name in self.accounts
                    if kind_ == kind]
        company = fields.get("company")
        if fields.get("kind") == kind and company and company != ALL_ACCOUNTS \
                and all(value != company for _, value in choices):
            choices.append((plain(str(company)), str(company)))
        return [*choices, ("Tagged…", TAGGED)]

    @staticmethod
    def area_choices(kind: str) -> list[tuple[str, str]]:
        return [(area_label(area), area.name) for area in AREAS.values() if kind in area.kinds]

    def template_choices(self, current: str) -> list[tuple[str, str]]:
        choices = [("Default for the area", "")] + [(name, name) for name in self.templates]
        if current and current not in self.templates:  # kept as it is, to be saved unchanged
            label = (f"Inline: {current.strip().splitlines()[0][:40]}" if looks_inline(current)
                     else f"{current} (no such template)")
            choices.append((label, current))
        return choices

    def on_resize(self) -> None:
        """Let the form scroll within what the border and the footer leave of the screen (CSS
        has no calc), so that the footer and its problem summary always show."""
        self.query_one("#form").styles.max_height = max(3, self.size.height - DIALOG_CHROME)

    def on_mount(self) -> None:
        self.show_applicable()
        self.update_hint()
        self.unchanged = self.fields()
        self.query_one("#title", Input).focus()

    # Reading the form --------------------------------------------------------------------------

    def value(self, select_id: str) -> str:
        return str(self.query_one(f"#{select_id}", Select).value)

    def text(self, input_id: str) -> str:
        return self.query_one(f"#{input_id}", Input).value

    @property
    def area(self) -> Area:
        return AREAS[self.value("area")]

    def fields(self) -> dict[str, object]:
        """What is typed, as rules.FIELDS; fields hidden for this kind and area are left out."""
        kind, area = self.value("kind"), self.area
        fields: dict[str, object] = {"title": self.text("title"), "area": area.name}
        if kind != FEED:
            fields["kind"] = kind
            account = self.value("account")
            if account == TAGGED:
                fields["tag"] = self.text("tag")
            else:
                fields["company"] = account
            penalty = self.value("penalty")
            fields["penalty"] = (self.text("penalty-custom") if penalty == CUSTOM_PENALTY
                                 else PENALTIES[penalty])
        if area.source == SCRIPT:
            fields["script"] = self.text("script")
        if area.name != "no_traffic":
            fields |= {"operator": self.value("operator"), "threshold": self.text("threshold"),
                       "reset_threshold": self.text("reset-threshold")}
        if area.source not in (INSTANT, SCRIPT):
            fields["sample_period"] = self.text("sample-period")
        if area.has_sample:
            fields["minimum_sample"] = self.text("minimum-sample")
        fields |= {"pending": self.text("pending"), "repeat": self.text("repeat"),
                   "recipients": self.text("recipients"), "template": self.value("template"),
                   "level": self.value("level"),
                   "enabled": self.query_one("#enabled", Checkbox).value}
        return fields

    # Reacting to choices -----------------------------------------------------------------------

    @on(Select.Changed, "#kind")
    def kind_changed(self) -> None:
        kind = self.value("kind")
        if kind == self.shown_kind:  # the Changed posted as the form is built, or no change
            return
        self.shown_kind = kind
        area = self.query_one("#area", Select)
        keep = area.value
        area.set_options(self.area_choices(kind))
        if any(value == keep for _, value in self.area_choices(kind)):
            area.value = keep
        self.query_one("#account", Select).set_options(self.account_choices(kind, {}))
        self.show_applicable()
        self.update_hint()

    @on(Select.Changed, "#area, #account, #penalty")
    def choice_changed(self) -> None:
        self.show_applicable()
        self.update_hint()

    @on(Select.Changed, "#operator")
    @on(Input.Changed, "#threshold, #reset-threshold")
    def condition_changed(self) -> None:
        self.update_hint()

    def show_applicable(self) -> None:
        """Show only the fields that apply to the chosen kind and area."""
        kind, area = self.value("kind"), self.area
        shown = {
            "account": kind != FEED,
            "penalty": kind != FEED,
            "script": area.source == SCRIPT,
            "condition": area.name != "no_traffic",
            "sample-period": area.source not in (INSTANT, SCRIPT),
            "minimum-sample": area.has_sample,
        }
        for row, display in shown.items():
            self.query_one(f"#row-{row}").display = display
        self.query_one("#tag").display = self.value("account") == TAGGED
        self.query_one("#penalty-custom").display = self.value("penalty") == CUSTOM_PENALTY

    def update_hint(self) -> None:
        text, wrong = hysteresis_hint(self.area, self.value("operator"), self.text("threshold"),
                                      self.text("reset-threshold"))
        hint = self.query_one("#row-condition .hint", Static)
        hint.update(text)
        hint.set_class(wrong, "-wrong")

    # Keys --------------------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter moves on, like Tab: saving is ctrl+s, so a hurried Enter saves nothing."""
        event.stop()
        self.focus_next()

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        if self.saving:
            return
        self.saving = True
        self.query_one("#summary", Static).update("Saving…")
        self._save(self.fields())

    class Saved(Message):
        """A save run on a thread: the rule saved, or the problems found, or the store's
        error."""

        def __init__(self, rule: Rule | None, errors: Sequence[FieldError] = (),
                     error: str = "") -> None:
            super().__init__()
            self.rule, self.errors, self.error = rule, errors, error

    @work(thread=True, exclusive=True, group="rule-save")
    def _save(self, fields: dict[str, object]) -> None:
        """Validate and write on a thread: a store kept busy by another program must not
        freeze the console."""
        try:
            rule = save_rule(self.db_path, fields, now_ms=self.now_ms, rule_id=self.rule_id)
        except RuleInvalid as invalid:
            self.post_message(self.Saved(None, invalid.errors))
        except StoreError as error:
            self.post_message(self.Saved(None, error=str(error)))
        else:
            self.post_message(self.Saved(rule))

    def on_rule_editor_saved(self, saved: Saved) -> None:
        self.saving = False
        if saved.rule is not None:
            self.dismiss(saved.rule)
            return
        self.show_errors(saved.errors)
        if saved.error:
            self.query_one("#summary", Static).update(f"✖ not saved: {saved.error}")

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.fields() == self.unchanged:
            self.dismiss(None)
            return

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss(None)

        self.post_message(ShowDialog(Confirm("Discard your changes?", yes="Discard",
                                             title="Unsaved rule"), answered))

    # Errors ------------------------------------------------------------------------------------

    def show_errors(self, errors: Sequence[FieldError]) -> None:
        """Mark each error under its field, focus the first field at fault, and sum up; errors
        of fields the form does not show go in the summary."""
        by_row: dict[str, list[str]] = {}
        unshown: list[FieldError] = []
        ordered = self.in_form_order(errors)
        for error in ordered:
            row = FIELD_ROWS.get(error.field)
            if row is None or not self.query_one(f"#row-{row}").display:
                unshown.append(error)
                continue
            prefix = f"{error.field}: " if error.field in NAMED_IN_ERRORS else ""
            by_row.setdefault(row, []).append(prefix + error.message)
        for form_row in self.query(FormRow):
            form_row.show_errors(by_row.get(form_row.id.removeprefix("row-"), []))
        self.query_one("#summary", Static).update(
            problems_summary(errors, unshown) if errors else "")
        first = next((error for error in ordered if error not in unshown), None)
        if first is not None:
            self.control_of(first.field).focus()

    @staticmethod
    def in_form_order(errors: Iterable[FieldError]) -> list[FieldError]:
        order = list(FIELD_ROWS)
        return sorted(errors, key=lambda e: order.index(e.field) if e.field in order
                      else len(order))

    def control_of(self, field: str) -> Widget:
        """The widget to type in to fix `field`."""
        if field == "company" and self.value("account") == TAGGED or field == "tag":
            return self.query_one("#tag")
        if field == "penalty" and self.value("penalty") == CUSTOM_PENALTY:
            return self.query_one("#penalty-custom")
        widget_id = "account" if field == "company" else field.replace("_", "-")
        return self.query_one(f"#{widget_id}")
