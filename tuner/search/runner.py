"""`TrialRunner`: how one trial runs and is recorded, whichever engine proposed it.

`run` trains a proposal's parameters, writes its artifacts, keeps the model only while it
ranks in the top K, records the result in the study (the one place a trial that ran has its
outcome written), bounds the disk and frees the backend's memory: one read of the study's
trials serves both the ranking and the bound. `finish` then tells the observer and counts
failures in a row. Engines only propose (`tuner.search.engines`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from tuner.wording import plural
from tuner import interrupts
from tuner.errors import SearchStopped, TrialFailed, TrialPruned, TrialSetAside, TrialTakenOver
from tuner.search import budget
from tuner.search.context import Proposal, SearchContext
from tuner.store import SearchStore, TrialRecord, TrialState
from tuner.store.trials import models_to_keep
from tuner.training.metrics import OBJECTIVE_SCORES, accuracy, class_accuracy, learned_nothing, log_loss, predicted_counts


class TrialRunner:
    def __init__(self, ctx: SearchContext):
        self.ctx = ctx
        self.consecutive_failures = 0
        self.first_rss: int | None = None
        self.retiring = False  # no new trial starts once this is set
        self.growth_told = False

    def trial_seed(self, number: int) -> int:
        return self.ctx.space.training.seed * 100_003 + number

    def run(self, proposal: Proposal) -> TrialRecord | None:
        """Train and record; never raises for a failed or pruned trial; None for a proposal set
        aside untrained (not one epoch of it fits before the deadline). Ctrl-C or SIGTERM fails
        the trial with the signal as its reason, then goes on up."""
        from tuner.training.memory import free_memory  # imports nothing heavy until it runs

        ctx = self.ctx
        try:
            record, keep = self._train(proposal)
        except KeyboardInterrupt as e:
            ctx.store.trials.fail(ctx.study, proposal.number, f"interrupted ({interrupts.cause(e)})")
            raise
        except TrialSetAside as e:
            ctx.store.trials.set_aside(ctx.study, proposal.number, str(e))
            return None
        try:
            ctx.store.trials.finish(ctx.study, record)
        except TrialTakenOver as e:  # judged dead by another worker: the study keeps that verdict
            ctx.observer.note(str(e))
            record, keep = replace(record, state=TrialState.FAILED, value=None, reason=str(e)), None
        if keep is not None:  # after the record: a crash before it must not have cost a top model
            ctx.store.artifacts.keep_models(ctx.study, keep)
        free_memory(collect=not self._past_deadline())  # after the record, which it may delay by seconds
        return record

    def _past_deadline(self) -> bool:
        """No trial follows in this process: the full collection would only delay its end."""
        return self.ctx.deadline is not None and time.monotonic() >= self.ctx.deadline

    def _train(self, proposal: Proposal) -> tuple[TrialRecord, set[int] | None]:
        """The trial's record and, when it saved a model, the trials whose models stay. Raises
        TrialSetAside for a proposal its plan does not start."""
        from tuner.training.fit import train_trial  # imports Keras: only when a trial really runs

        interrupts.check()
        ctx, number, params = self.ctx, proposal.number, proposal.params
        seed, asked = self.trial_seed(number), proposal.max_epochs or ctx.space.training.max_epochs
        start = time.perf_counter()
        schedule = _Schedule(self, proposal, asked)
        metric = ctx.space.objective.metric

        def on_epoch(epoch: int, metrics: dict[str, float], whole: bool) -> None:
            ctx.observer.epoch_ended(number, epoch, metrics)
            # A part of an epoch (a deadline's) would be judged against others' whole epochs.
            if whole and proposal.should_prune(epoch, metrics[metric]):
                raise TrialPruned(f"pruned after epoch {epoch + 1}")

        base = TrialRecord(number=number, state=TrialState.FAILED, value=None, params=params, seed=seed,
                           max_epochs=asked)
        keep: set[int] | None = None
        try:
            result = train_trial(params, ctx.data, max_epochs=asked, patience=ctx.space.training.patience,
                                 seed=seed, on_epoch=on_epoch, stop_check=lambda: self._time_up(start),
                                 planner=schedule.epochs_for)
        except TrialPruned as e:
            record = replace(base, state=TrialState.PRUNED, reason=str(e), value=_last(e.history, metric),
                             val_accuracy=_last(e.history, "val_accuracy"), history=e.history, timings=e.timings)
        except TrialFailed as e:
            record = replace(base, reason=str(e), history=e.history, timings=e.timings)
        else:
            record = self._trained(replace(base, max_epochs=schedule.epochs), result, schedule.shortened())
            keep = self._save_result(record, result)
            del result
        schedule.announce()  # a trial that failed before its model was built was not announced yet
        record = replace(record, seconds=time.perf_counter() - start, max_epochs=schedule.epochs)
        if not record.ranks:
            ctx.store.artifacts.save_trial_files(ctx.study, record, None)
        return record, keep

    def _trained(self, base: TrialRecord, result: Any, shortened: str | None) -> TrialRecord:
        """A trial that trained to its end. Cut short by the deadline, or planned shorter than
        asked, it is pruned (a sampler weighs it as a low-fidelity result), but with its best
        epoch's figures and predictions it still ranks (`TrialRecord.ranks`)."""
        planned_all = shortened is not None and len(result.history.get("loss", [])) >= base.max_epochs
        if result.stopped is not None:
            state, reason = TrialState.PRUNED, f"stopped at {result.stopped}"
        elif planned_all:  # it trained every planned epoch: a low-fidelity result
            state, reason = TrialState.PRUNED, f"shortened: {shortened}"
        else:  # it ended on its own (early stopping, or it learned nothing) before its plan's end
            state, reason = TrialState.COMPLETE, learned_nothing(result.history.get("loss", []), self.ctx.data.n_classes,
                                                                  result.history.get("val_accuracy", []))
        return replace(base, state=state, reason=reason, history=result.history, best_epoch=result.best_epoch,
                       timings=result.timings, **self._figures(result.val_probs))

    def plan(self, cost: Any, asked: int, proposal: Proposal | None = None) -> budget.Plan:
        """The epochs a trial of `cost` trains here, calibrated by the study's trials run with
        this process's threads (`tuner.training.cost`, `tuner.search.budget`)."""
        from tuner import config
        from tuner.training import cost as costs

        ctx, threads = self.ctx, config.training_threads()
        trials = ctx.store.trials.all(ctx.study)
        # A trial cut by a stop has a part epoch among its epochs' times: no measurement.
        measured = [m for t in trials if t.timings.get("threads") == threads and not (t.reason or "").startswith("stopped at")
                    and (m := costs.Measured.of(t.timings, t.epochs)) is not None]
        calibration = costs.calibrate(costs.prior(ctx.device, threads), measured, cost.batch_size * cost.work)
        now = time.monotonic()
        left = None if ctx.deadline is None else ctx.deadline - now
        ranked = any(t.ranks for t in trials)
        first = ctx.first_result_by is not None and not ranked
        rerun = proposal is not None and proposal.rerun  # a start point again: no third-of-a-schedule floor
        alone = sum(t.state is TrialState.RUNNING for t in trials) <= 1  # this trial is running too
        return budget.plan(calibration, cost, asked, left, ctx.first_result_by - now if first else None,
                           ctx.trial_timeout, ranked and not rerun, alone, self._second(proposal, trials, now))

    def _second(self, proposal: Proposal | None, trials: list[TrialRecord], now: float) -> budget.Second | None:
        """The second result's mark for a start point's run after its first result's: only right
        after it (no other trial has ranked since: a second result came), and where the study holds
        this run and the whole one after it (--trials)."""
        ctx = self.ctx
        if proposal is None or not proposal.after_first_result or ctx.first_result_by is None or \
                sum(t.ranks for t in trials) != 1 or sum(t.finished for t in trials) + 2 > ctx.n_trials:
            return None
        return budget.Second(budget.second_mark(ctx.first_result_by, now) - now, proposal.least_epochs)

    def _time_up(self, trial_start: float) -> str | None:
        """Why a trial must stop now: the search's deadline or its own cap."""
        now, ctx = time.perf_counter(), self.ctx
        if ctx.deadline is not None and time.monotonic() >= ctx.deadline:
            return "the search's deadline (--timeout)"
        if ctx.trial_timeout is not None and now - trial_start >= ctx.trial_timeout:
            return f"its time cap (--trial-timeout {ctx.trial_timeout:g} s)"
        return None

    def _figures(self, probs: Any) -> dict[str, Any]:
        """A complete trial's validation figures from its best epoch's predictions."""
        y, name = self.ctx.data.y_val, self.ctx.space.objective.name
        return {"value": OBJECTIVE_SCORES[name](probs, y), "val_accuracy": accuracy(probs, y),
                "val_loss": log_loss(probs, y), "val_class_accuracy": class_accuracy(probs, y),
                "val_predicted": predicted_counts(probs)}

    def _save_result(self, record: TrialRecord, result: Any) -> set[int]:
        """Save a complete trial's files, its model only if it ranks in the top K; the trials
        whose models stay once it is recorded."""
        store, study = self.ctx.store, self.ctx.study
        others = [t for t in store.trials.all(study) if t.number != record.number]
        keep = models_to_keep(others + [record], self.ctx.keep_models, self.ctx.space.objective)
        if record.number in keep:
            store.artifacts.save_model(study, record.number, result.model)
        store.artifacts.save_trial_files(study, record, result.val_views)
        return keep

    def finish(self, record: TrialRecord) -> None:
        """After the trial was recorded: tell the observer, count failures."""
        self.ctx.observer.trial_finished(record)
        failed = record.state is TrialState.FAILED
        self.consecutive_failures = self.consecutive_failures + 1 if failed else 0
        self._check_memory()
        if self.consecutive_failures >= self.ctx.max_failures:
            raise SearchStopped(f"{plural(self.consecutive_failures, 'trial')} failed in a row (last: {record.reason}); "
                                f"stopping. Check the space or raise --max-failures")

    def _check_memory(self) -> None:
        from tuner.training.memory import resident_bytes

        if self.ctx.retire_growth is None:
            return
        rss = resident_bytes()
        if self.first_rss is None:
            self.first_rss = rss
        grown = rss / self.first_rss - 1
        if grown > self.ctx.retire_growth / 2 and not self.growth_told:  # halfway to retiring: a standby gets ready
            self.growth_told = True
            self.ctx.observer.memory_grew(grown)
        self.retiring = grown > self.ctx.retire_growth


def _last(history: dict[str, list[float]], key: str) -> float | None:
    return (history.get(key) or [None])[-1]


def fail_own_trials(store: SearchStore, study: str, pids: set[int]) -> None:
    """Best effort: a database that cannot be written now (a full disk) is told by the next run,
    which fails a trial whose process is gone."""
    try:
        store.trials.fail_running_of(study, pids, "interrupted: the search stopped before it ended")
    except Exception:
        pass


class _Schedule:
    """One trial's plan, made once its model is built (`train_trial`'s planner), and its start
    told to the observer once."""

    def __init__(self, runner: TrialRunner, proposal: Proposal, asked: int):
        self.runner, self.proposal, self.asked = runner, proposal, asked
        self.made: budget.Plan | None = None
        self.announced = False

    @property
    def epochs(self) -> int:
        return self.asked if self.made is None else self.made.epochs

    def epochs_for(self, cost: Any) -> tuple[int, int | None]:
        """The epochs to train and the training steps an epoch (None: all)."""
        self.made = self.runner.plan(cost, self.asked, self.proposal)
        least = self.proposal.least_epochs
        if 0 < self.made.epochs < least:
            self.made = replace(self.made, epochs=0, seconds=None, steps=None,
                                why=f"not started: a start point run again needs more than the "
                                    f"{plural(least - 1, 'epoch')} of its first run; {self.made.epochs} fit")
        self.announce()
        if not self.made.epochs:
            raise TrialSetAside(self.made.why or "not started")
        return self.made.epochs, self.made.steps

    def shortened(self) -> str | None:
        """Why it trains fewer epochs than asked, or a subset of the images, if it does."""
        made = self.made
        return made.why if made is not None and (made.epochs < self.asked or made.steps is not None) else None

    def announce(self) -> None:
        if not self.announced:
            self.announced = True
            self.runner.ctx.observer.trial_started(self.proposal.number, self.proposal.params, self.epochs, self.made)
