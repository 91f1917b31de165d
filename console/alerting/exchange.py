"""Rules (and the named templates they use) to and from a TOML file:

    [[template]]
    name = "low-asr"
    subject = "ASR of {{ account.name }} at {{ value_text }}"
    body = '''
    ...
    '''

    [[tag]]                    # accounts a rule may target together (tag = "gold")
    name = "gold"
    kind = "customer"
    accounts = ["acme", "blue-voip"]

    [[rule]]
    title = "Low ASR Warning"
    kind = "customer"
    company = "acme"
    recipients = ["noc@example.com"]
    area = "asr"
    operator = "<="
    threshold = 30.0
    reset_threshold = 31.0
    sample_period = 300
    template = "low-asr"

An import is all or nothing: every rule is validated first, and any problem, named by rule (its
place, title and line) and field, refuses the whole file. A rule whose title exists is replaced;
a tag in the file has the members the file lists, no others.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from console.alerting import rules as rule_rules
from console.alerting import templates
from console.alerting.rules import RuleInvalid
from store import alerting as store
from store.alerting import Template

SECTIONS = ("rule", "template", "tag")
KINDS = ("customer", "carrier")
DEMO_RULES = Path(__file__).with_name("demo_rules.toml")  # what `noc demo` starts with
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class ImportInvalid(ValueError):
    """The file cannot be imported; `problems` lists each, str() all of them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ImportResult:
    created: int
    replaced: int
    templates: int
    tags: int = 0


def export_text(path: str | Path) -> str:
    """Every rule, and every named template, as TOML."""
    with store.reading(path) as db:
        all_rules = store.load_rules(db)
        named = sorted(store.load_templates(db).values(), key=lambda t: t.name)
        members: dict[tuple[str, str], list[str]] = {}
        for kind, account, tag in db.execute(
                "SELECT kind, account, tag FROM account_tag ORDER BY kind, tag, account"):
            members.setdefault((kind, tag), []).append(account)
    parts = ["# noc alert rules (noc alerts export); import with: noc alerts import FILE\n"]
    for (kind, tag), accounts in members.items():
        parts.append(_table("tag", {"name": tag, "kind": kind, "accounts": accounts}))
    for template in named:
        parts.append(_table("template", {"name": template.name, "subject": template.subject,
                                         "body": template.body}))
    for rule in all_rules:
        parts.append(_table("rule", rule_rules.rule_fields(rule)))
    return "\n".join(parts)


def import_text(path: str | Path, text: str, *, now_ms: int) -> ImportResult:
    """Validate every rule and template of `text`, then store them in one transaction."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ImportInvalid([f"not TOML: {error}"]) from None
    problems = [f"unknown section [{name}]: the file holds [[rule]], [[template]] and [[tag]] "
                "tables"
                for name in data if name not in SECTIONS]
    rule_lines = [number for number, line in enumerate(text.splitlines(), start=1)
                  if re.match(r"\s*\[\[\s*rule\s*\]\]", line)]
    with store.writing(path) as db:
        named = store.load_templates(db)
        imported = _templates(data.get("template", []), now_ms, problems)
        tags = _tags(data.get("tag", []), problems)
        named |= {t.name: t for t in imported}
        existing = {rule.title: rule for rule in store.load_rules(db)}
        valid, titles = [], set()
        for index, fields in enumerate(data.get("rule", []), start=1):
            where = _where(index, fields, rule_lines)
            try:
                rule = rule_rules.validate(fields, named_templates=named, now_ms=now_ms)
            except RuleInvalid as invalid:
                problems += [f"{where}: {error}" for error in invalid.errors]
                continue
            if rule.title in titles:
                problems.append(f"{where}: title: {rule.title!r} is already used in the file")
            titles.add(rule.title)
            old = existing.get(rule.title)
            if old is not None:
                rule = replace(rule, id=old.id, created_ms=old.created_ms)
            valid.append(rule)
        if problems:
            raise ImportInvalid(problems)
        for template in imported:
            store.write_template(db, template)
        for kind, name, accounts in tags:
            store.write_tag(db, kind, name, accounts)
        for rule in valid:
            store.write_rule(db, rule)
    replaced = sum(rule.id is not None for rule in valid)
    return ImportResult(len(valid) - replaced, replaced, len(imported), len(tags))


def _templates(tables: list, now_ms: int, problems: list[str]) -> list[Template]:
    found = []
    for index, table in enumerate(tables, start=1):
        name = table.get("name", "") if isinstance(table, dict) else ""
        where = f"template {index} ({name!r})"
        if not isinstance(table, dict) or set(table) - {"name", "subject", "body"}:
            problems.append(f"{where}: a template has a name, a subject and a body only")
            continue
        if not isinstance(name, str) or not name or templates.looks_inline(name):
            problems.append(f"{where}: name: one word, without spaces or braces")
            continue
        template = Template(name, str(table.get("subject", templates.DEFAULT_SUBJECT)),
                            str(table.get("body", "")), now_ms)
        try:
            templates.check(template, rule_rules.sample_context())
        except templates.TemplateProblem as problem:
            problems.append(f"{where}: {problem}")
            continue
        found.append(template)
    return found


def _tags(tables: list, problems: list[str]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(kind, name, accounts) of each [[tag]]."""
    found = []
    for index, table in enumerate(tables, start=1):
        name = table.get("name", "") if isinstance(table, dict) else ""
        where = f"tag {index} ({name!r})"
        if not isinstance(table, dict) or set(table) != {"name", "kind", "accounts"}:
            problems.append(f"{where}: a tag has a name, a kind and accounts, all three")
            continue
        accounts = table["accounts"]
        if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name):
            problems.append(f"{where}: name: one word, e.g. gold")
        elif table["kind"] not in KINDS:
            problems.append(f"{where}: kind: customer or carrier")
        elif not isinstance(accounts, list) or not all(
                isinstance(a, str) and a.strip() for a in accounts):
            problems.append(f"{where}: accounts: a list of account ids")
        elif (table["kind"], name) in {(kind, tag) for kind, tag, _ in found}:
            problems.append(f"{where}: this tag is already in the file")
        else:
            found.append((table["kind"], name, tuple(a.strip() for a in accounts)))
    return found


def _where(index: int, fields: object, lines: list[int]) -> str:
    title = fields.get("title") if isinstance(fields, dict) else None
    line = f", line {lines[index - 1]}" if index <= len(lines) else ""
    return f"rule {index}" + (f" ({title!r}{line})" if title else f" ({line.lstrip(', ')})")


def _table(name: str, fields: dict[str, object]) -> str:
    lines = [f"[[{name}]]"]
    lines += [f"{key} = {_value(value)}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    text = str(value)
    if "\n" in text and "'''" not in text and not CONTROL.search(text.replace("\t", "")):
        return f"'''\n{text}'''"  # a multi-line literal: the body as it is written
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def import_demo_rules(path: str | Path, *, now_ms: int) -> ImportResult:
    """The demo's starter rules (demo_rules.toml)."""
    return import_text(path, DEMO_RULES.read_text(encoding="utf-8"), now_ms=now_ms)
