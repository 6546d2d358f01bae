"""Terminal output of the ``relay`` commands (``rich``): aligned tables, progress, one-line errors.

Consoles are made per call so they write to whatever ``sys.stdout``/``sys.stderr`` are at that
moment (tests capture them). Piped output gets no colour and no width limit, so scripts can
read whole lines; markup is off because route names, ids and reasons are data, not markup.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.padding import Padding
from rich.table import Table


def console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr): the terminal's width when it is one, else unbounded lines."""
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    return Console(stderr=stderr, markup=False, highlight=False, emoji=False,
                   width=None if terminal else 1000, soft_wrap=not terminal)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, right: Iterable[str] = (),
          indent: int = 1, out: Console | None = None) -> None:
    """Print ``rows`` under ``headers`` in aligned columns (numbers named in ``right`` right-aligned)."""
    numeric = set(right)
    grid = Table(box=None, show_edge=False, pad_edge=True, header_style="bold", expand=False)
    for header in headers:
        grid.add_column(header, justify="right" if header in numeric else "left", no_wrap=True, overflow="fold")
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    (out or console()).print(Padding.indent(grid, indent))


class OneLineHandler(logging.Handler):
    """Log records as one line each on stderr, without tracebacks (``--debug`` shows them), and each
    distinct message once: a storage outage during a backfill says what failed, not 60 lines per chunk."""

    def __init__(self, prog: str):
        super().__init__(logging.WARNING)
        self.prog = prog
        self.seen: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            key = f"{record.name}:{record.msg}"
            self.seen[key] = self.seen.get(key, 0) + 1
            if self.seen[key] > 1:
                return
            line = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                line = f"{line}: {describe(record.exc_info[1])}"
            sys.stderr.write(f"{self.prog}: {line}\n")
        except Exception:  # logging must never fail the command
            self.handleError(record)

    def repeats(self) -> int:
        """How many log lines were left out as repeats."""
        return sum(count - 1 for count in self.seen.values())


def describe(error: BaseException) -> str:
    """``Type: first line of the message``: enough to name what failed, never a traceback."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def print_warnings(warnings: Sequence[str]) -> None:
    """What the DCR rules could not check (shared/dcr_rules.py): said once each, never a failure."""
    for warning in dict.fromkeys(warnings):
        print(f"warning: {warning}", file=sys.stderr)
