"""What `pip install` puts on a machine runs there: a wheel built from this checkout and
installed in a folder of its own finds its stylesheets, with no checkout beside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.feedkit import REPO

pytestmark = pytest.mark.slow

# Run by the installed copy: each screen's and dialog's CSS_PATH, as Textual resolves it, and
# the app's own, must name files that are there and parse.
PROBE = """
import importlib, inspect, pathlib, pkgutil, sys
from textual.app import App
from textual.css.stylesheet import Stylesheet
from textual.screen import Screen
from console.shell.app import NocApp
import screens, widgets
from screens.stylesheets import stylesheets

installed = pathlib.Path(sys.argv[1]).resolve()
assert pathlib.Path(screens.__file__).resolve().is_relative_to(installed), screens.__file__

for package in (screens, widgets):
    for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)

def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)

named = set()
for cls in subclasses(Screen):
    module = inspect.getfile(cls)
    if cls.CSS_PATH and pathlib.Path(module).resolve().is_relative_to(installed):
        paths = [cls.CSS_PATH] if isinstance(cls.CSS_PATH, str) else cls.CSS_PATH
        named |= {(pathlib.Path(module).parent / path).resolve() for path in paths}
app_css = {(pathlib.Path(inspect.getfile(NocApp)).parent / pathlib.Path(path)).resolve()
           for path in NocApp.CSS_PATH}
missing = sorted(str(p) for p in named | app_css if not p.is_file())
assert not missing, missing
assert named == set(stylesheets()), sorted(map(str, named ^ set(stylesheets())))
sheet = Stylesheet(variables=App().get_css_variables())
sheet.read_all(sorted(app_css))
sheet.parse()
print(len(named), len(app_css))
"""


def pip(*args: str, cwd) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args, "--no-deps", "--no-index",
                           "--quiet"], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def source_copy(folder) -> None:
    """The checkout's files, not what earlier builds left in it (build/ and *.egg-info name
    files setuptools would take whatever pyproject.toml says)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in listed.splitlines():
        if (REPO / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, folder / name)


def test_an_installed_wheel_finds_every_screens_stylesheet(tmp_path):
    source_copy(tmp_path / "source")
    pip("wheel", "--no-build-isolation", "--wheel-dir", str(tmp_path / "dist"),
        str(tmp_path / "source"), cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    site = tmp_path / "site"
    pip("install", "--target", str(site), str(wheel), cwd=tmp_path)
    assert not (site / "screens" / "accounts.py").is_symlink()
    # The installed copy first on the path; the checkout nowhere on it.
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = subprocess.run([sys.executable, "-c", PROBE, str(site)], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr[-3000:]
    named, app_css = map(int, probe.stdout.split())
    assert named >= 10 and app_css == named + 1  # the app reads them all, and app.tcss
