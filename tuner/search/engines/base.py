"""`BaseEngine`: what to try next. An engine maps a space to its own parameters and, when
asked, reserves the next trial in the study and proposes its complete parameters; `tell`
gives it the recorded result. The runner writes every trial's outcome (`tuner.search.runner`);
an engine writes only its own bookkeeping: the trial it reserves, a surplus or queued duplicate
it discards, and (`counts`) the trials of workers it finds dead. Engines differ in nothing else:
model, data, training and records are shared."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from typing import ClassVar, ContextManager

from tuner.search.context import Proposal, SearchContext
from tuner.space.schema import Space
from tuner.store import SearchStore, TrialRecord, TrialState


class BaseEngine(ABC):
    name: ClassVar[str]

    def __init__(self, ctx: SearchContext, sampler: str, pruner: str, seed: int | None):
        self.ctx = ctx
        self.sampler = sampler
        self.pruner = pruner
        self.seed = seed
        self.exhausted = False  # set when the engine has nothing left to propose

    @classmethod
    def queue_start_points(cls, store: SearchStore, study_name: str, space: Space) -> None:
        """Before any trial of a new study: make the space's start points its first trials.
        Runs once per process that opens the study (the parent first, with --jobs), so an
        engine must do nothing when the study already has trials. Default: nothing to queue."""

    def prepare(self, n_trials: int) -> None:
        """Once, before the first `ask`."""

    def counts(self) -> tuple[int, int]:
        """(finished, running) trials of the study, all processes together."""
        trials = self.ctx.store.trials.all(self.ctx.study)
        return sum(t.finished for t in trials), sum(t.state is TrialState.RUNNING for t in trials)

    @abstractmethod
    def ask(self, n_trials: int) -> Proposal | None:
        """The next trial to run, reserved in the study; None when there is none to run now
        (the loop looks at the counts again; `exhausted` says the engine has no more at all)."""

    def running(self, proposal: Proposal) -> ContextManager[None]:
        """Held while the proposal trains (the Optuna engine's heartbeat)."""
        return contextlib.nullcontext()

    def tell(self, proposal: Proposal, record: TrialRecord) -> None:
        """The proposal's result, as recorded; the engine updates its own bookkeeping."""

    def set_aside(self, proposal: Proposal) -> None:
        """The proposal was not trained (the runner took it out of the study); the engine forgets
        it. Default: nothing (Optuna's samplers read the study, where it is no longer a result)."""
