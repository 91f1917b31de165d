"""The alert rule editor: how the form looks, and what a user gets from it (a saved rule, the
problems marked where they are, an edit in place, fields that come and go with the area, no
changes lost to a stray Esc)."""

from __future__ import annotations

import threading

import pytest
from textual.widgets import Checkbox, Input, Select, Static

from console import testing
from console.alerting import rules
from console.alerting.areas import AREAS
from screens.confirm import Confirm
from screens.rule_editor import RuleEditor, hysteresis_hint
from store.alerting import AlertData

SIZES = [(80, 24), (120, 40)]


def open_editor(app, noc_db, **options) -> RuleEditor:
    editor = RuleEditor(noc_db, accounts=app.data.account_names(),
                        now_ms=testing.FIXED_NOW_MS, **options)
    app.push_screen(editor, callback=lambda rule: setattr(editor, "dismissed_with", rule))
    return editor


async def opened(pilot, settle, noc_db, **options) -> RuleEditor:
    await settle(pilot)
    editor = open_editor(pilot.app, noc_db, **options)
    await pilot.pause()
    return editor


async def save(pilot, editor: RuleEditor) -> None:
    """ctrl+s, then wait for the save's answer (it runs on a thread)."""
    await pilot.press("ctrl+s")
    await testing.until(pilot, lambda: not editor.saving)
    await pilot.pause()


async def pick(pilot, typed: str) -> None:
    """Open the focused choice, type to find an option, take it: as a user does."""
    await pilot.press("enter", *typed, "enter")
    await pilot.pause()


async def tab_to(pilot, widget_id: str) -> None:
    """Tab forward until `widget_id` has the focus (fails rather than looping forever)."""
    for _ in range(30):
        if pilot.app.focused is not None and pilot.app.focused.id == widget_id:
            return
        await pilot.press("tab")
    raise AssertionError(f"Tab never reached #{widget_id}")


def shown(editor: RuleEditor, row: str) -> bool:
    return editor.query_one(f"#row-{row}").display


def error_text(editor: RuleEditor, row: str) -> str:
    error = editor.query_one(f"#row-{row} .error", Static)
    return str(error.render()) if error.display else ""


# How it looks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_new_rule_form(noc_app, noc_db, noc_settle, snap_compare, size):
    async def run_before(pilot):
        await opened(pilot, noc_settle, noc_db)

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


def test_form_with_problems(noc_app, noc_db, noc_settle, snap_compare):
    async def run_before(pilot):
        editor = await opened(pilot, noc_settle, noc_db)
        await pilot.press(*"Carrier ASR low", "tab", "tab", "tab")
        await pick(pilot, "asr")
        await tab_to(pilot, "threshold")
        await pilot.press("2", "0", "tab", "2", "5")
        await tab_to(pilot, "recipients")
        await pilot.press(*"noc at example")
        await save(pilot, editor)

    assert snap_compare(noc_app(), terminal_size=(80, 24), run_before=run_before)


# What it does ---------------------------------------------------------------------------------

async def test_a_rule_typed_in_is_saved_and_returned(noc_app, noc_db, noc_settle):
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await opened(pilot, noc_settle, noc_db)
        await pilot.press(*"Ember failing", "tab")
        await pick(pilot, "carrier")
        await pilot.press("tab")
        await pick(pilot, "ember")
        await pilot.press("tab")
        await pick(pilot, "consecutive")
        await pilot.press("tab")  # the operator: >= already
        await pilot.press("tab", "5", "0", "enter", "0")  # Enter moves on, like Tab
        await tab_to(pilot, "penalty")
        await pick(pilot, "5 min")
        await tab_to(pilot, "recipients")
        await pilot.press(*"noc@example.com")
        await save(pilot, editor)

        rule = AlertData(noc_db).rule("Ember failing")
        assert rule is not None
        assert (rule.kind, rule.scope, rule.company) == ("carrier", "account", "ember-link")
        assert (rule.area, rule.operator, rule.threshold, rule.reset_threshold) == \
            ("consecutive_failures", ">=", 50.0, 0.0)
        assert rule.penalty_s == 300 and rule.recipients == ("noc@example.com",)
        assert (rule.level, rule.enabled) == ("warning", True)
        assert editor.dismissed_with == rule
        assert app.screen is not editor


async def test_problems_are_marked_at_their_fields_and_nothing_is_saved(noc_app, noc_db,
                                                                       noc_settle):
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await opened(pilot, noc_settle, noc_db)
        await pilot.press(*"Carrier ASR low", "tab", "tab", "tab")
        await pick(pilot, "asr")
        await tab_to(pilot, "operator")
        await pilot.press("enter", "up", "up", "enter")  # from ≥ (the default) up to ≤
        await pilot.pause()
        await pilot.press("tab", "3", "0", "tab", "2", "9")
        hint = editor.query_one("#row-condition .hint", Static)
        assert "reset must be above 30%" in str(hint.render())
        await tab_to(pilot, "recipients")
        await pilot.press(*"not an address")
        await save(pilot, editor)

        assert app.screen is editor
        assert AlertData(noc_db).rule("Carrier ASR low") is None
        assert "✖ for `ASR ≤ 30%`, the reset threshold must be above 30%" in \
            error_text(editor, "condition")
        assert "✖ 'not an address' is neither an email address" in \
            error_text(editor, "recipients")
        assert error_text(editor, "title") == ""
        assert app.focused is editor.query_one("#reset-threshold", Input)
        summary = str(editor.query_one("#summary", Static).render())
        assert summary == "✖ 2 problems: fix the marked fields"

        await pilot.press("backspace", "backspace", "3", "1")
        assert "clears at 31% or above" in str(hint.render())


async def test_a_title_taken_is_marked_under_the_title(noc_app, noc_db, noc_settle):
    rules.save_rule(noc_db, {"title": "Failing carriers", "kind": "carrier", "company": "*",
                             "area": "consecutive_failures", "operator": ">=",
                             "threshold": 50}, now_ms=testing.FIXED_NOW_MS)
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await opened(pilot, noc_settle, noc_db)
        await pilot.press(*"Failing carriers")
        await tab_to(pilot, "threshold")
        await pilot.press("9")
        await save(pilot, editor)
        assert "a rule titled 'Failing carriers' exists" in error_text(editor, "title")
        assert app.focused is editor.query_one("#title", Input)


async def test_an_edited_rule_keeps_its_id(noc_app, noc_db, noc_settle):
    saved = rules.save_rule(noc_db, {
        "title": "Acme ASR", "kind": "customer", "company": "acme-telecom", "area": "asr",
        "operator": "<=", "threshold": 30, "reset_threshold": 35, "sample_period": "10m",
        "minimum_sample": 20, "penalty": 600, "recipients": ["noc@example.com"],
        "level": "error"}, now_ms=testing.FIXED_NOW_MS - 60_000)
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        editor = await opened(pilot, noc_settle, noc_db, rule=saved)
        assert editor.query_one("#title", Input).value == "Acme ASR"
        assert [editor.query_one(f"#{name}", Select).value
                for name in ("kind", "account", "area", "operator", "penalty", "level")] == \
            ["customer", "acme-telecom", "asr", "<=", "<custom>", "error"]
        assert [editor.query_one(f"#{name}", Input).value for name in (
            "threshold", "reset-threshold", "sample-period", "minimum-sample", "penalty-custom",
            "recipients")] == ["30", "35", "10m", "20", "10m", "noc@example.com"]

        await tab_to(pilot, "threshold")
        await pilot.press("2", "5")  # the focus selects the text: typing replaces it
        await save(pilot, editor)

        rule = AlertData(noc_db).rule("Acme ASR")
        assert rule is not None and rule.id == saved.id
        assert (rule.threshold, rule.reset_threshold, rule.penalty_s) == (25.0, 35.0, 600)
        assert rule.created_ms == saved.created_ms
        assert editor.dismissed_with == rule


async def test_a_copy_is_a_new_rule(noc_app, noc_db, noc_settle):
    saved = rules.save_rule(noc_db, {"title": "Quarantine burst", "area": "quarantined",
                                     "operator": ">", "threshold": 10},
                            now_ms=testing.FIXED_NOW_MS)
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await opened(pilot, noc_settle, noc_db, rule=saved, copy=True)
        assert editor.query_one("#title", Input).value == "Quarantine burst (copy)"
        assert editor.query_one("#kind", Select).value == "feed"
        await save(pilot, editor)
        copy = AlertData(noc_db).rule("Quarantine burst (copy)")
        assert copy is not None and copy.id != saved.id
        assert (copy.kind, copy.area, copy.threshold) == ("feed", "quarantined", 10.0)


async def test_fields_that_do_not_apply_are_hidden(noc_app, noc_db, noc_settle):
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await opened(pilot, noc_settle, noc_db)
        await pilot.press("tab", "tab", "tab")
        await pick(pilot, "asr")
        assert shown(editor, "sample-period") and shown(editor, "minimum-sample")
        await pick(pilot, "balance")
        assert not shown(editor, "sample-period") and not shown(editor, "minimum-sample")
        assert shown(editor, "account") and shown(editor, "penalty")

        await pilot.press("shift+tab", "shift+tab")  # back to Applies to
        await pick(pilot, "feed")
        area = editor.query_one("#area", Select)
        assert [value for _, value in area._options] == ["quarantined"]
        assert area.value == "quarantined"
        assert not shown(editor, "account") and not shown(editor, "penalty")
        assert shown(editor, "sample-period")

        await pick(pilot, "customer")  # the focus stays on Applies to
        assert "channel_breaches" in [value for _, value in area._options]
        assert shown(editor, "account")


async def test_tagged_and_custom_reveal_their_input(noc_app, noc_db, noc_settle):
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await opened(pilot, noc_settle, noc_db)
        tag, custom = editor.query_one("#tag", Input), editor.query_one("#penalty-custom", Input)
        assert not tag.display and not custom.display
        await pilot.press(*"Gold carriers", "tab", "tab")
        await pick(pilot, "tagged")
        assert tag.display
        await pilot.press("tab", *"gold")
        await tab_to(pilot, "threshold")
        await pilot.press("1", "0", "0")
        await tab_to(pilot, "penalty")
        await pick(pilot, "custom")
        assert custom.display
        await pilot.press("tab", *"2h")
        await save(pilot, editor)
        rule = AlertData(noc_db).rule("Gold carriers")
        assert rule is not None
        assert (rule.scope, rule.company, rule.penalty_s) == ("tag", "gold", 7_200)


async def test_esc_with_changes_asks_before_discarding(noc_app, noc_db, noc_settle):
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await opened(pilot, noc_settle, noc_db)
        await pilot.press("escape")  # nothing typed: closes at once
        await pilot.pause()
        assert app.screen is not editor and editor.dismissed_with is None

        editor = open_editor(app, noc_db)
        await pilot.pause()
        await pilot.press(*"Half-typed")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is editor
        assert editor.query_one("#title", Input).value == "Half-typed"

        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert app.screen is not editor and editor.dismissed_with is None
        assert AlertData(noc_db).rule("Half-typed") is None


async def test_an_unchanged_edit_closes_without_asking(noc_app, noc_db, noc_settle):
    saved = rules.save_rule(noc_db, {"title": "Gold ASR", "kind": "carrier", "tag": "gold",
                                     "area": "asr", "operator": "<", "threshold": 20,
                                     "template": "Subject: ASR {{ value }}\nlow",
                                     "enabled": False}, now_ms=testing.FIXED_NOW_MS)
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await opened(pilot, noc_settle, noc_db, rule=saved)
        assert editor.query_one("#tag", Input).value == "gold"
        assert editor.query_one("#enabled", Checkbox).value is False
        assert editor.fields()["template"] == saved.template
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not editor


async def test_problems_of_fields_not_shown_go_in_the_summary(noc_app, noc_db, noc_settle):
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await opened(pilot, noc_settle, noc_db)
        editor.show_errors([rules.FieldError("script", "only script rules name a function"),
                            rules.FieldError("threshold", "a number is needed")])
        await pilot.pause()
        summary = str(editor.query_one("#summary", Static).render())
        assert summary == ("✖ 2 problems: fix the marked fields; "
                           "script: only script rules name a function")
        assert error_text(editor, "condition") == "✖ threshold: a number is needed"
        assert app.focused is editor.query_one("#threshold", Input)


@pytest.mark.parametrize(("operator", "threshold", "reset", "hint"), [
    ("<=", "30", "", "fires at 30% or below, clears as soon as the condition no longer holds"),
    ("<=", "30", "31", "fires at 30% or below, clears at 31% or above"),
    ("<=", "30", "30", "fires at 30% or below; reset must be above 30%"),
    ("<", "30", "30", "fires below 30%, clears at 30% or above"),
    (">=", "30", "31", "fires at 30% or above; reset must be below 30%"),
    (">", "30", "31", "fires above 30%; reset must be at or below 30%"),
    ("=", "0", "1", "fires at exactly 0%; = clears as soon as the value differs: leave reset "
                    "empty"),
    ("<=", "", "", "fires at the threshold; reset (optional): where it clears"),
    ("<=", "thirty", "", "the threshold must be a number"),
])
def test_hysteresis_hint_in_words(operator, threshold, reset, hint):
    assert hysteresis_hint(AREAS["asr"], operator, threshold, reset)[0] == hint


async def test_a_save_runs_on_a_thread_and_the_form_says_so_meanwhile(noc_app, noc_db, noc_settle,
                                                                      monkeypatch):
    """Saving (validation and the write, which a busy store may hold) is not run by the event
    loop: the form says it is saving while it runs, then closes with the rule."""
    import screens.rule_editor as rule_editor

    let_go, on_main_thread = threading.Event(), []
    save_rule = rule_editor.save_rule

    def held(*args, **kwargs):
        on_main_thread.append(threading.current_thread() is threading.main_thread())
        let_go.wait(30)
        return save_rule(*args, **kwargs)

    saved = rules.save_rule(noc_db, {"title": "Quarantine burst", "area": "quarantined",
                                     "operator": ">", "threshold": 10},
                            now_ms=testing.FIXED_NOW_MS)
    monkeypatch.setattr(rule_editor, "save_rule", held)
    app = noc_app()
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            editor = await opened(pilot, noc_settle, noc_db, rule=saved, copy=True)
            await pilot.press("ctrl+s")
            await testing.until(pilot, lambda: on_main_thread)
            assert on_main_thread == [False]
            assert str(editor.query_one("#summary", Static).render()) == "Saving…"
            let_go.set()
            await testing.until(pilot, lambda: app.screen is not editor)
    finally:
        let_go.set()
    assert editor.dismissed_with == AlertData(noc_db).rule("Quarantine burst (copy)")
