"""Script areas: a rule's value from a function of a plug-in module the operator configures
(`[alerts] script_module`: a .py file, or a module name on the Python path).

TRUSTED CODE. The module runs with the writer's rights; only an administrator who may edit
noc's config should be able to name it. What a script may do: read the store through
`context.db` (read-only: a `mode=ro` connection with `query_only` set, which protects the data
from mistakes, not from a hostile module), compute, and return a number, or None for "no data".
It runs in a child process of the writer (console.alerting.bounded), within `[alerts]
script_timeout` seconds (5 by default) and SCRIPT_MEMORY_MIB for each account: over either, the
rule has no value for that account, the reason is in its detail, and the next call gets a fresh
child. The module is imported once per child, so what it keeps between calls may be lost.

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
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from console.alerting.bounded import BoundedProcess, Bounds, OverBound
from store.alerting import Rule
from store.database import connect, locate

SCRIPT_SECONDS = 5.0
SCRIPT_MEMORY_MIB = 512
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScriptContext:
    db: sqlite3.Connection  # read-only
    rule: Rule
    kind: str
    account: str
    now_ms: int


class Scripts:
    """Script areas' values, each worked out by the plug-in module in a bounded child."""

    def __init__(self, module: str, db_path: str | Path, *,
                 seconds: float = SCRIPT_SECONDS) -> None:
        self.spec = module
        self.db_path = locate(db_path)
        self._process = BoundedProcess(Bounds(seconds, SCRIPT_MEMORY_MIB))

    def value(self, rule: Rule, kind: str, account: str, now_ms: int) -> tuple[float | None, str]:
        """(value, detail): the function's number, or None and why not."""
        try:
            value, detail, failed = self._process.call(
                _value, self.spec, str(self.db_path), rule, kind, account, now_ms)
        except OverBound as over:
            value, detail, failed = None, f"script {over}", True
        if failed:  # a plug-in's failure is the rule's "no data", never ours
            log.warning("script %s of rule %r: %s", rule.script, rule.title, detail)
        return value, detail

    def close(self) -> None:
        self._process.close()


# In the child process: the module and the connection, kept while the child lives.
_modules: dict[str, ModuleType] = {}
_connections: dict[str, sqlite3.Connection] = {}


def _value(spec: str, db_path: str, rule: Rule, kind: str, account: str,
           now_ms: int) -> tuple[float | None, str, bool]:
    """(value, detail, whether the script failed), worked out in the child. Its errors go back
    as text: an exception class of the plug-in would not unpickle in the writer."""
    try:
        result = _function(spec, rule.script)(
            ScriptContext(_connection(db_path), rule, kind, account, now_ms))
    except Exception as error:
        return None, f"script failed: {type(error).__name__}: {error}", True
    if result is None:
        return None, "the script returned no value", False
    try:
        return float(result), "", False
    except (TypeError, ValueError):
        return None, f"the script returned {result!r:.200}, not a number", True


def _function(spec: str, name: str):
    """The named function of the plug-in module; LookupError saying why it cannot be had."""
    if not spec:
        raise LookupError("no plug-in module: set [alerts] script_module")
    if spec not in _modules:
        _modules[spec] = _import(spec)
    found = getattr(_modules[spec], name, None)
    if not callable(found):
        raise LookupError(f"{spec} has no function {name!r}")
    return found


def _connection(db_path: str) -> sqlite3.Connection:
    if db_path not in _connections:
        _connections[db_path] = connect(db_path)  # read-only, in either engine
    return _connections[db_path]


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
