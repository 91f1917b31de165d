"""`noc --help` answers at once: Textual, SQLModel (SQLAlchemy), websockets and the ingest
service are imported only by the commands that use them, never to print help."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("textual", "sqlmodel", "sqlalchemy", "websockets", "console.feed.service")


@pytest.mark.parametrize("args", [["--help"], ["demo", "--help"], ["ingest", "--help"],
                                  ["report", "--help"], ["alerts", "export", "--help"]],
                         ids=" ".join)
def test_help_loads_none_of_the_heavy_parts(args):
    probe = (
        "import sys\n"
        "from console.shell.cli import main\n"
        "try:\n"
        f"    main({args!r}, prog_name='noc')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))\n"
    )
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           check=True).stdout.rstrip().splitlines()
    assert shown[0].startswith("Usage: noc")
    assert shown[-1] == "[]"
