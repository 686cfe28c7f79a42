"""The terminal: a thin wrapper around rich. A live view while searching on a TTY; plain log
lines, no escape codes, in CI logs and pipes."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from tuner.ui.board import Board, build_board
from tuner.store import Evaluation, SearchStore, TrialRecord, TrialState


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _times_line(board: Board) -> str | None:
    t = board.times
    if t is None:
        return None
    return (f"per trial, medians of {t.trials} complete: {t.wall:.1f} s in all; training {t.training:.1f} s, "
            f"compile {t.compile:.1f} s, validation {t.validation:.1f} s, other {t.other:.1f} s (build, save, sampler)")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class Terminal:
    def __init__(self, console: Console | None = None):
        # Without a TTY (CI logs, pipes) rich would wrap at 80 columns; logs can be wider.
        width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", 150))
        self.console = console or Console(highlight=False, width=width)
        self.err = Console(stderr=True, highlight=False, width=width)

    @property
    def interactive(self) -> bool:
        return self.console.is_terminal

    def info(self, message: str) -> None:
        self.console.print(message, markup=False, soft_wrap=True)

    def warn(self, message: str) -> None:
        self.err.print(Text(f"warning: {message}", style="yellow"), soft_wrap=True)

    def error(self, message: str) -> None:
        self.err.print(Text(f"error: {message}", style="bold red"), soft_wrap=True)

    def board_table(self, board: Board) -> Table:
        c = board.counts
        title = (f"{board.study}: {c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed"
                 + (f", {c['running']} running" if c["running"] else ""))
        table = Table(title=title, title_justify="left", expand=False, caption=_times_line(board),
                      caption_justify="left")
        for name, justify in (("#", "right"), ("trial", "right"), ("val acc", "right"), ("val loss", "right"),
                              ("epochs", "right"), ("time", "right"), ("parameters", "left")):
            table.add_column(name, justify=justify, no_wrap=name != "parameters")
        for r in board.rows:
            table.add_row(str(r.rank), str(r.trial), _pct(r.val_accuracy),
                          "-" if r.val_loss is None else f"{r.val_loss:.4f}", str(r.epochs), _duration(r.seconds), r.summary)
        return table

    def failures_table(self, board: Board) -> Table | None:
        if not board.failures:
            return None
        table = Table(title="recent failed trials", title_justify="left")
        table.add_column("trial", justify="right")
        table.add_column("reason")
        for r in board.failures:
            table.add_row(str(r.trial), r.reason or "unknown")
        return table

    def print_board(self, board: Board) -> None:
        self.console.print(self.board_table(board))
        failures = self.failures_table(board)
        if failures is not None:
            self.console.print(failures)


class SearchView:
    """The search observer: a rich Live view on a TTY, else one line per trial."""

    def __init__(self, terminal: Terminal, store: SearchStore, study: str, n_trials: int, top: int = 10):
        self.t, self.store, self.study, self.n_trials, self.top = terminal, store, study, n_trials, top
        self.jobs = 1
        self.start = time.monotonic()
        self.board: Board | None = None
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[metrics]}"),
                                 console=terminal.console)
        self.tasks: dict[int, Any] = {}  # running trial -> its progress bar (several with --jobs)
        self.live: Live | None = None

    def __enter__(self) -> "SearchView":
        return self

    def search_started(self, setup: dict[str, str]) -> None:
        self.jobs = int(setup.get("jobs", 1))
        xla = ", XLA off" if setup.get("xla") == "off" else ""
        jobs = f", {setup['jobs']} worker processes" if int(setup.get("jobs", 1)) > 1 else ""
        self.t.info(f"training with Keras {setup['keras']} on {setup['backend']} "
                    f"({setup['device']}, {setup['precision']}{xla}{jobs})")
        self.board = build_board(self.store, self.study, self.top)
        if self.t.interactive:
            self.live = Live(self._render(), console=self.t.console, refresh_per_second=4, transient=False)
            self.live.__enter__()

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.update(self._render(final=True))
            self.live.__exit__(*exc)

    def _header(self) -> str:
        c = self.board.counts if self.board else {"complete": 0, "pruned": 0, "failed": 0}
        done = c["complete"] + c["pruned"]
        elapsed = time.monotonic() - self.start
        mean = self.board.mean_seconds if self.board else None
        eta = _duration(mean * max(self.n_trials - done, 0) / self.jobs) if mean else "-"  # workers overlap
        return (f"{done}/{self.n_trials} finished ({c['complete']} complete, {c['pruned']} pruned, "
                f"{c['failed']} failed)  elapsed {_duration(elapsed)}  ETA {eta}")

    def _render(self, final: bool = False) -> Group:
        parts: list[Any] = [Text(self._header(), style="bold")]
        if not final and self.tasks:
            parts.append(self.progress)
        if self.board is not None:
            parts.append(self.t.board_table(self.board))
            failures = self.t.failures_table(self.board)
            if failures is not None:
                parts.append(failures)
        return Group(*parts)

    def _start_point(self, number: int) -> str:
        """' (start point i/n)' when the trial was queued as one of the space's start points
        (its recorded origin: a sampled trial may happen to draw the same values)."""
        points = self.board.meta.get("space", {}).get("start", []) if self.board else []
        index = self.store.trials.start_point(self.study, number) if points else None
        return "" if index is None else f" (start point {index + 1}/{len(points)})"

    def trial_started(self, number: int, params: dict[str, Any], max_epochs: int) -> None:
        from tuner.ui.board import describe_params

        start = self._start_point(number)
        if self.live is None:
            searched = [k for k, v in self.board.meta.get("space", {}).get("params", {}).items() if isinstance(v, dict)]
            self.t.info(f"trial {number} started{start}: {describe_params(params, searched or None)}")
            return
        self.tasks[number] = self.progress.add_task(f"trial {number}{start}", total=max_epochs, metrics="compiling")
        self.live.update(self._render())

    def epoch_ended(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        if self.live is None or number not in self.tasks:
            return
        text = (f"epoch {epoch + 1}  loss {metrics['loss']:.4f}  val acc {_pct(metrics['val_accuracy'])}  "
                f"val loss {metrics['val_loss']:.4f}")
        self.progress.update(self.tasks[number], completed=epoch + 1, metrics=text)
        self.live.update(self._render())

    def trial_finished(self, record: TrialRecord) -> None:
        self.board = build_board(self.store, self.study, self.top)
        if record.number in self.tasks:
            self.progress.remove_task(self.tasks.pop(record.number))
        if self.live is not None:
            self.live.update(self._render())
            return
        outcome = {TrialState.COMPLETE: f"val acc {_pct(record.value)}", TrialState.PRUNED: f"pruned at epoch {record.epochs}",
                   TrialState.FAILED: f"failed: {record.reason}"}.get(record.state, record.state.value)
        best = self.board.rows[0] if self.board.rows else None
        best_text = f"; best: trial {best.trial} {_pct(best.val_accuracy)}" if best else ""
        self.t.info(f"trial {record.number} {outcome} ({record.epochs} epochs, {_duration(record.seconds)}){best_text}"
                    f"  [{self._header()}]")

    def note(self, message: str) -> None:
        if self.live is not None:
            self.live.console.print(Text(f"warning: {message}", style="yellow"))
        else:
            self.t.warn(message)


def evaluation_tables(record: Evaluation) -> list[Table]:
    """The recorded test evaluation: best trial and ensemble side by side, then the members."""
    sel, test = record.selection, record.test
    table = Table(title=f"held-out test set: {record.n_test} images", title_justify="left")
    for name in ("model", "val acc", "val loss", "test acc", "test loss"):
        table.add_column(name, justify="left" if name == "model" else "right")
    table.add_row(f"best trial ({sel.best_trial})", _pct(sel.best_val_accuracy), f"{sel.best_val_loss:.4f}",
                  _pct(test["best"]["accuracy"]), f"{test['best']['loss']:.4f}")
    table.add_row(f"ensemble ({len(sel.members)} members)", _pct(sel.val_accuracy), f"{sel.val_loss:.4f}",
                  _pct(test["ensemble"]["accuracy"]), f"{test['ensemble']['loss']:.4f}")
    caption = f"ensemble gain over the best trial on test: {100 * record.gain:+.2f} points"
    if "refit" in test:  # validation trained these models: no validation figure
        refit = record.refit or {}
        table.add_row(f"ensemble refit on train+val ({len(refit['models'])} refit)", "-", "-",
                      _pct(test["refit"]["accuracy"]), f"{test['refit']['loss']:.4f}")
        caption += (f"\nrefit gain over the ensemble on test: {100 * (record.refit_gain or 0.0):+.2f} points "
                    f"({refit['n_images']} images, {sum(refit['seconds'].values()):.0f} s of training)")
        caption += "".join(f"\nrefit of trial {n} not used: {why}" for n, why in refit["failed"].items())
    table.caption = (f"{caption}\nmembers chosen by greedy selection on validation {sel['metric']}; "
                     f"evaluated {record.when}")
    table.caption_justify = "left"
    members = Table(title="ensemble weights", title_justify="left")
    members.add_column("trial", justify="right")
    members.add_column("weight", justify="right")
    members.add_column("temperature", justify="right")  # its logits / T: calibrated on validation data
    members.add_column("mirrored too", justify="right")
    for n, w in sorted(sel.members.items(), key=lambda kv: -kv[1]):
        flipped = {True: "yes", False: "no"}.get(sel.flips.get(n), "as trained")
        members.add_row(str(n), f"{w:.3f}", f"{sel.temperatures.get(n, 1.0):.2f}", flipped)
    return [table, members]
