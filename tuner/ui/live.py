"""The live search view: a rich Live leaderboard with a progress bar per running trial on a
TTY, else one log line per trial started and finished."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn
from rich.text import Text

from tuner.store import SearchStore, TrialRecord, TrialState
from tuner.ui.board import Board, build_board, describe_params
from tuner.ui.tables import board_table, duration, failures_table, pct
from tuner.ui.terminal import Terminal


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
        eta = duration(mean * max(self.n_trials - done, 0) / self.jobs) if mean else "-"  # workers overlap
        return (f"{done}/{self.n_trials} finished ({c['complete']} complete, {c['pruned']} pruned, "
                f"{c['failed']} failed)  elapsed {duration(elapsed)}  ETA {eta}")

    def _render(self, final: bool = False) -> Group:
        parts: list[Any] = [Text(self._header(), style="bold")]
        if not final and self.tasks:
            parts.append(self.progress)
        if self.board is not None:
            parts.append(board_table(self.board))
            failures = failures_table(self.board)
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
        text = (f"epoch {epoch + 1}  loss {metrics['loss']:.4f}  val acc {pct(metrics['val_accuracy'])}  "
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
        outcome = {TrialState.COMPLETE: f"val acc {pct(record.value)}", TrialState.PRUNED: f"pruned at epoch {record.epochs}",
                   TrialState.FAILED: f"failed: {record.reason}"}.get(record.state, record.state.value)
        best = self.board.rows[0] if self.board.rows else None
        best_text = f"; best: trial {best.trial} {pct(best.val_accuracy)}" if best else ""
        self.t.info(f"trial {record.number} {outcome} ({record.epochs} epochs, {duration(record.seconds)}){best_text}"
                    f"  [{self._header()}]")

    def note(self, message: str) -> None:
        if self.live is not None:
            self.live.console.print(Text(f"warning: {message}", style="yellow"))
        else:
            self.t.warn(message)
