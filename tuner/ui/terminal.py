"""The terminal: a thin wrapper around rich, one per command. Plain log lines, no escape
codes, in CI logs and pipes; the live view (`tuner.ui.live`) only on a TTY."""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

from tuner import config
from tuner.ui.board import Board
from tuner.ui.tables import board_table, data_line, data_table, failures_table


class TrimmedLines:
    """A text stream that drops the spaces rich pads lines with (titles and captions are padded
    to the table's width): in a log or a file, trailing spaces are noise for diff and grep."""

    def __init__(self, stream: Any):
        self.stream, self.pending = stream, ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        if lines:
            self.stream.write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.stream.write(self.pending)
            self.pending = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return False


class _Console(Console):
    """rich's Console, except that when the reader stops reading (`tune leaderboard | head -1`) the
    command goes on, its output going nowhere, and ends with its own exit code (rich's is 1 at
    once: a search would stop mid-trial, and a listing's code depended on timing)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class Terminal:
    def __init__(self, console: Console | None = None):
        # Without a TTY (CI logs, pipes) rich would wrap at 80 columns; logs can be wider.
        tty = sys.stdout.isatty()
        width = None if tty else config.columns()
        # markup off: what is printed is names and values as written (a class folder "[b]seven" read
        # as "seven" in bold, the same as the class "seven"); styles are given as Text.
        self.console = console or _Console(highlight=False, markup=False, width=width,
                                           file=None if tty else TrimmedLines(sys.stdout))
        self.err = Console(stderr=True, highlight=False, markup=False, width=width,
                           file=None if sys.stderr.isatty() else TrimmedLines(sys.stderr))

    @property
    def interactive(self) -> bool:
        """A real TTY: FORCE_COLOR makes rich treat a pipe as a terminal (colour may follow it),
        but a live view's cursor codes in a log are noise."""
        isatty = getattr(self.console.file, "isatty", None)
        return self.console.is_terminal and bool(isatty and isatty())

    def info(self, message: str) -> None:
        self.console.print(message, markup=False, soft_wrap=True)

    def aside(self, message: str) -> None:
        """A line beside a command's output (to stderr), so that stdout stays the output alone."""
        self.err.print(message, markup=False, soft_wrap=True)

    def warn(self, message: str) -> None:
        self.err.print(Text(f"warning: {message}", style="yellow"), soft_wrap=True)

    def error(self, message: str) -> None:
        self.err.print(Text(f"error: {message}", style="bold red"), soft_wrap=True)

    def print_data(self, meta: dict[str, Any]) -> None:
        """A study's data: images per class and split, then its warnings (`tuner.data.summary`)."""
        from tuner.data.summary import data_warnings

        split = meta.get("split") or {}
        table = data_table(split)
        if table is not None:
            self.info(data_line(split))
            self.console.print(table)
        for line in data_warnings(split, meta.get("space") or {}):
            self.warn(line)

    def print_board(self, board: Board) -> None:
        self.console.print(board_table(board))
        failures = failures_table(board)
        if failures is not None:
            self.console.print(failures)
