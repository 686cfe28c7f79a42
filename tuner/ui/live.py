"""The live search view: a rich Live leaderboard with a progress bar per running trial on a
TTY, else log lines: each trial started and finished, and its epochs, one line every
`PLAIN_EPOCH_SECONDS` at most per trial (a CI log shows progress without flooding)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn
from rich.text import Text

from tuner.search.budget import Plan
from tuner.store import SearchStore, TrialRecord, TrialState
from tuner.ui.board import Board, build_board, describe_params
from tuner.ui.tables import board_table, failures_table, figure, pct, scored
from tuner.wording import duration, plural
from tuner.ui.terminal import Terminal

PLAIN_EPOCH_SECONDS = 10.0


class SearchView:
    """The search observer: a rich Live view on a TTY, else one line per trial."""

    def __init__(self, terminal: Terminal, store: SearchStore, study: str, n_trials: int, top: int = 10,
                 intro: str | None = None, timeout: float | None = None):
        self.t, self.store, self.study, self.n_trials, self.top = terminal, store, study, n_trials, top
        self.timeout = timeout  # the ETA is never past it: running trials stop after their current step
        self.intro = intro  # the search's first line, once it starts
        self.jobs = 1
        self.start = time.monotonic()
        self.board: Board | None = None
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[metrics]}"),
                                 console=terminal.console)
        self.tasks: dict[int, Any] = {}  # running trial -> its progress bar (several with --jobs)
        self.epochs: dict[int, tuple[int, float]] = {}  # running trial -> (its epochs, when last said) in plain mode
        self.said: set[int] = set()  # trials whose result line was printed: the best named is one of them
        self.started: set[int] = set()  # trials this view said started: counted once their line comes
        self.live: Live | None = None
        self.budget_said = False

    def __enter__(self) -> "SearchView":
        return self

    def search_started(self, setup: dict[str, str]) -> None:
        self.jobs = int(setup.get("jobs", 1))
        xla = ", XLA off" if setup.get("xla") == "off" else ""
        # One worker is a choice too (a CNN over 5M multiply-adds trains faster alone on every core).
        jobs = f", {plural(int(setup['jobs']), 'worker process', 'worker processes')}" if "jobs" in setup else ""
        if self.intro:
            self.t.info(self.intro)
        self.t.info(f"training with Keras {setup['keras']} on {setup['backend']} "
                    f"({setup['device']}, {setup['precision']}{xla}{jobs})")
        self.board = build_board(self.store, self.study, self.top)
        self.said = {row.trial for row in self.board.rows}  # a resumed study's trials are known already
        self.t.print_data(self.board.meta)
        if self.t.interactive:
            self.live = Live(self._render(), console=self.t.console, refresh_per_second=4, transient=False)
            self.live.__enter__()

    def __exit__(self, *exc: Any) -> None:
        if self.board is not None:  # as the search left the study: a trial running at the last line has ended since
            self.board = build_board(self.store, self.study, self.top)
        if self.live is not None:
            self.live.update(self._render(final=True))
            self.live.__exit__(*exc)

    def _header(self) -> str:
        c = self.board.counts if self.board else {"complete": 0, "pruned": 0, "failed": 0}
        done = c["complete"] + c["pruned"]
        elapsed = time.monotonic() - self.start
        mean = self.board.mean_seconds if self.board else None
        eta = duration(self._eta(mean, done, elapsed))
        return (f"{done}/{self.n_trials} finished ({c['complete']} complete, {c['pruned']} pruned, "
                f"{c['failed']} failed)  elapsed {duration(elapsed)}  ETA {eta}")

    def _eta(self, mean: float | None, done: int, elapsed: float) -> float | None:
        """Seconds left: the trials still to run at the mean so far (workers overlap), but not
        past the deadline."""
        left = self.timeout - elapsed if self.timeout is not None else None
        if mean is None:
            return None if left is None else max(left, 0.0)
        estimate = mean * max(self.n_trials - done, 0) / self.jobs
        return estimate if left is None else max(min(estimate, left), 0.0)

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

    def trial_started(self, number: int, params: dict[str, Any], max_epochs: int, plan: Plan | None = None) -> None:
        self._say_budget(plan)
        if max_epochs:  # a proposal set aside is said here, and not counted
            self.started.add(number)
        start, planned = self._start_point(number), f" ({plan.describe()})" if plan and plan.describe() else ""
        if self.live is None or not max_epochs:  # a proposal set aside has no bar: one line says why
            searched = [k for k, v in self.board.meta.get("space", {}).get("params", {}).items() if isinstance(v, dict)]
            what = "started" if max_epochs else "set aside"
            line = f"trial {number} {what}{start}: {describe_params(params, searched or None)}{planned}"
            if self.live is not None:
                self.live.console.print(Text(line))
                return
            self.t.info(line)
            self.epochs[number] = (max_epochs, time.monotonic())  # its first epoch line after the interval
            return
        self.tasks[number] = self.progress.add_task(f"trial {number}{start}", total=max_epochs,
                                                    metrics=f"compiling{planned}")
        self.live.update(self._render())

    def _say_budget(self, plan: Plan | None) -> None:
        """Once, with the first estimate under a deadline: what the time left holds."""
        if self.budget_said or plan is None or plan.left is None or not plan.epoch_seconds:
            return
        self.budget_said = True
        left = max(plan.left, 0.0)  # as the worker saw it: the parent may hear of it later
        epochs = int(max(left - plan.fixed_seconds, 0.0) // plan.epoch_seconds)  # a trial's start is not epochs
        each = "each of " + plural(self.jobs, "worker") if self.jobs > 1 else "the worker"
        line = (f"budget: {duration(left)} left (--timeout); at the first estimated proposal's "
                f"{plan.epoch_seconds:.1f} s an epoch, {each} has time for about {plural(epochs, 'epoch')}")
        if self.live is not None:
            self.live.console.print(Text(line))
        else:
            self.t.info(line)

    def epoch_ended(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        balanced = metrics.get("val_balanced_accuracy") if self.board is not None and self.board.show_balanced else None
        scores = (f"loss {metrics['loss']:.4f}  val acc {pct(metrics['val_accuracy'])}  "
                  + (f"val bal acc {pct(balanced)}  " if balanced is not None else "")
                  + f"val loss {metrics['val_loss']:.4f}")
        if self.live is None:
            return self._plain_epoch(number, epoch, scores)
        if number not in self.tasks:
            return
        self.progress.update(self.tasks[number], completed=epoch + 1, metrics=f"epoch {epoch + 1}  {scores}")
        self.live.update(self._render())

    def _plain_epoch(self, number: int, epoch: int, scores: str) -> None:
        max_epochs, said = self.epochs.get(number, (0, -PLAIN_EPOCH_SECONDS))
        now = time.monotonic()
        if now - said >= PLAIN_EPOCH_SECONDS:
            self.epochs[number] = (max_epochs, now)
            of = f"/{max_epochs}" if max_epochs else ""
            self.t.info(f"trial {number} epoch {epoch + 1}{of}  {scores}")

    def memory_grew(self, fraction: float) -> None:
        pass  # the supervisor's business (a standby), not the terminal's

    def trial_finished(self, record: TrialRecord) -> None:
        self.epochs.pop(record.number, None)
        # Another worker's trial can be in the store before its own line comes: its line counts it, and
        # the best named is a trial said.
        self.said.add(record.number)
        unsaid = frozenset(self.started - self.said) if self.live is None else frozenset()
        self.board = build_board(self.store, self.study, self.top, unsaid=unsaid)
        if record.number in self.tasks:
            self.progress.remove_task(self.tasks.pop(record.number))
        if self.live is not None:
            self.live.update(self._render())
            return
        objective = self.board.objective
        pruned = f"{scored(objective, record.value)}, {record.reason}" if record.ranks else f"pruned at epoch {record.epochs}"
        complete = scored(objective, record.value) + (f", {record.reason}" if record.reason else "")
        outcome = {TrialState.COMPLETE: complete, TrialState.PRUNED: pruned,
                   TrialState.FAILED: f"failed: {record.reason}"}.get(record.state, record.state.value)
        best = next((row for row in self.board.rows if row.trial in self.said), None)
        best_text = f"; best: trial {best.trial} {figure(objective, best.value)}" if best else ""
        self.t.info(f"trial {record.number} {outcome} ({plural(record.epochs, 'epoch')}, {duration(record.seconds)}){best_text}"
                    f"  [{self._header()}]")

    def note(self, message: str) -> None:
        if self.live is not None:
            self.live.console.print(Text(f"warning: {message}", style="yellow"))
        else:
            self.t.warn(message)
