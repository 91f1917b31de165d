"""Script areas: a rule's value from a function of a plug-in module the operator configures
(`[alerts] script_module`: a .py file, or a module name on the Python path).

TRUSTED CODE. The module is imported into the writer process and runs with its rights; only an
administrator who may edit noc's config should be able to name it. The store is handed over
read-only (a `mode=ro` connection with `query_only` set), which protects the data from mistakes,
not from a hostile module.

A function takes a ScriptContext and returns a number, or None for "no data":

    def blocked_clis(context):
        (count,) = context.db.execute(
            "SELECT count(*) FROM call WHERE customer = ? AND code = 403 AND end_ms > ?",
            (context.account, context.now_ms - 3_600_000)).fetchone()
        return count
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from store.alerting import Rule
from store.database import connect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScriptContext:
    db: sqlite3.Connection  # read-only
    rule: Rule
    kind: str
    account: str
    now_ms: int


class Scripts:
    """The plug-in module, imported on first use, and a read-only connection for it."""

    def __init__(self, module: str, db_path: str | Path) -> None:
        self.spec = module
        self.db_path = Path(db_path)
        self._module: ModuleType | None = None
        self._db: sqlite3.Connection | None = None

    def function(self, name: str) -> Callable[[ScriptContext], float | None]:
        """The named function; LookupError saying why it cannot be had."""
        if not self.spec:
            raise LookupError("no plug-in module: set [alerts] script_module")
        if self._module is None:
            self._module = _import(self.spec)
        found = getattr(self._module, name, None)
        if not callable(found):
            raise LookupError(f"{self.spec} has no function {name!r}")
        return found

    def value(self, rule: Rule, kind: str, account: str, now_ms: int) -> tuple[float | None, str]:
        """(value, detail): the function's number, or None and why not."""
        try:
            result = self.function(rule.script)(
                ScriptContext(self._connection(), rule, kind, account, now_ms))
        except Exception as error:  # a plug-in's failure is the rule's "no data", never ours
            log.warning("script %s of rule %r failed: %s", rule.script, rule.title, error)
            return None, f"script failed: {type(error).__name__}: {error}"
        if result is None:
            return None, "the script returned no value"
        try:
            return float(result), ""
        except (TypeError, ValueError):
            return None, f"the script returned {result!r}, not a number"

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = connect(self.db_path)
            self._db.execute("PRAGMA query_only = ON")
        return self._db


def _import(spec: str) -> ModuleType:
    if spec.endswith(".py"):
        path = Path(spec).expanduser()
        loader_spec = importlib.util.spec_from_file_location(f"noc_alert_scripts_{path.stem}",
                                                             path)
        if loader_spec is None or loader_spec.loader is None or not path.exists():
            raise LookupError(f"cannot load the plug-in module {path}")
        module = importlib.util.module_from_spec(loader_spec)
        loader_spec.loader.exec_module(module)
        return module
    return importlib.import_module(spec)
