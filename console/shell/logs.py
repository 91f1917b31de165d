"""The log's lines: what they quote from the feed (a name, a reason, a frame) cannot write a
control sequence to the terminal or forge a line of its own."""

from __future__ import annotations

import logging
import sys

from console.feed.printable import printable

FORMAT = "%(asctime)s %(levelname)s %(message)s"


class PrintableFormatter(logging.Formatter):
    """Each message on one line, its unprintable characters (line feeds too) made visible; a
    traceback keeps its lines, each made printable."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = printable(record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        return "\n".join(printable(line) for line in super().formatException(ei).split("\n"))


class CurrentStderrHandler(logging.StreamHandler):
    """Writes each line to sys.stderr as it is then, not as it was at start-up: while the console
    draws, Textual redirects sys.stderr (its own log), so a line (a gap, a reconnection) never
    lands on the terminal behind its back, scribbling over the screen."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass  # always the current sys.stderr


def configure(level: int = logging.WARNING) -> None:
    """Log to standard error through PrintableFormatter (once per process: later calls keep
    the first set-up, as logging.basicConfig does)."""
    handler = CurrentStderrHandler()
    handler.setFormatter(PrintableFormatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
