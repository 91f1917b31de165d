"""Which (rule, account) pairs a round must evaluate, so that its cost follows what changed rather
than the number of rules.

A pair is due when
- its reading (value, sample) differs from the last round's, or its account is new;
- it is not at rest: pending and firing subjects move on with time alone (pending periods,
  repeats, silences ending), so they are evaluated every round;
- its rule is a script rule (its value is known only by asking);
- or the configuration changed (rules, templates, tags, silences, acknowledgements): then every
  pair is evaluated once, as the state machine would for any of them.
Everything else would come out of `evaluation.step` unchanged (see `evaluation.at_rest`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from console.alerting.areas import SCRIPT
from console.alerting.values import RoundValues, Table
from store.alerting import Rule

TableKey = tuple[str, str, int | None]  # area, kind, sample period


def table_key(rule: Rule) -> TableKey:
    return (rule.area, rule.kind, rule.sample_period_s)


class Watchlist:
    def __init__(self, rules: Iterable) -> None:
        """`rules`: compiled rules (with `.rule`, `.subjects` and `.area`)."""
        self.rules = list(rules)
        self.by_account: dict[TableKey, dict[str, list]] = {}  # rules of fixed subjects
        self.of_kind: dict[TableKey, list] = {}  # rules on every account of a kind
        self.scripted = []
        for compiled in self.rules:
            if compiled.area.source == SCRIPT:
                self.scripted.append(compiled)
            elif compiled.subjects is None:
                self.of_kind.setdefault(table_key(compiled.rule), []).append(compiled)
            else:
                watchers = self.by_account.setdefault(table_key(compiled.rule), {})
                for account in compiled.subjects:
                    watchers.setdefault(account, []).append(compiled)
        self.fixed = sum(len(c.subjects) for c in self.rules if c.subjects is not None)
        self.full = True
        self._previous: dict[TableKey, tuple[Table, tuple]] = {}
        self._known: dict[str, frozenset[str]] = {}

    def due(self, values: RoundValues, active: Iterable[tuple]) -> Iterator[tuple]:
        """(compiled rule, account) pairs to evaluate this round, each once; `active` are the
        pairs not at rest."""
        new = self._new_accounts(values)
        changed = {key: self._changed(key, values, new) for key in
                   {*self.by_account, *self.of_kind}}
        seen: set[tuple[int, str]] = set()

        def once(compiled, account: str) -> bool:
            key = (compiled.rule.id, account)
            if key in seen:
                return False
            seen.add(key)
            return True

        if self.full:
            self.full = False
            for compiled in self.rules:
                for account in self.subjects(compiled, values):
                    if once(compiled, account):
                        yield compiled, account
            return
        for key, watchers in self.by_account.items():
            for account in changed[key]:
                for compiled in watchers.get(account, ()):
                    if once(compiled, account):
                        yield compiled, account
        for key, rules in self.of_kind.items():
            accounts = changed[key] & set(values.accounts_of(key[1]))
            for compiled in rules:
                for account in accounts:
                    if once(compiled, account):
                        yield compiled, account
        for compiled in self.scripted:
            for account in self.subjects(compiled, values):
                if once(compiled, account):
                    yield compiled, account
        for compiled, account in active:
            if once(compiled, account):
                yield compiled, account

    def count(self, values: RoundValues) -> int:
        """Every (rule, account) pair watched this round."""
        return self.fixed + sum(len(values.accounts_of(compiled.rule.kind))
                                for compiled in self.rules if compiled.subjects is None)

    @staticmethod
    def subjects(compiled, values: RoundValues) -> tuple[str, ...]:
        if compiled.subjects is None:
            return values.accounts_of(compiled.rule.kind)
        return compiled.subjects

    def _new_accounts(self, values: RoundValues) -> dict[str, frozenset[str]]:
        new = {}
        for kind in {key[1] for key in (*self.by_account, *self.of_kind)}:
            now = frozenset(values.accounts_of(kind))
            new[kind] = now - self._known.get(kind, frozenset())
            self._known[kind] = now
        return new

    def _changed(self, key: TableKey, values: RoundValues,
                 new: dict[str, frozenset[str]]) -> set[str]:
        """Accounts whose reading in this table differs from the last round's (or are new)."""
        table, default = values.table(*key)
        known = values.changed_accounts(*key) if key in self._previous else None
        before, before_default = self._previous.get(key, ({}, None))
        self._previous[key] = (table, default)
        if known is not None and default == before_default:
            return known | new.get(key[1], frozenset())
        if default != before_default:
            return set(table) | set(before) | set(values.accounts_of(key[1]))
        changed = {account for account, reading in table.items()
                   if before.get(account, default) != reading}
        changed.update(account for account in before if account not in table)
        changed.update(new.get(key[1], ()))
        return changed
