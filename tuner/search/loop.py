"""`run_trials`: the one search loop. Ask the engine for a trial, let the runner run and record
it, tell the engine, until the study holds N finished trials or time is up."""

from __future__ import annotations

import time

from tuner import interrupts
from tuner.search.engines.base import BaseEngine
from tuner.search.runner import TrialRunner

WAIT_SECONDS = 2.0  # between looks at other workers' running trials
SET_ASIDE_IN_A_ROW = 3  # proposals with no epoch fitting before the deadline, after which this worker ends


def run_trials(engine: BaseEngine, runner: TrialRunner, n_trials: int, deadline: float | None) -> None:
    """Run trials until the study holds `n_trials` finished ones (complete or pruned, across
    every worker), or the `deadline` (`time.monotonic()`) passed, or the runner retires its
    process, or `SET_ASIDE_IN_A_ROW` proposals in a row had no epoch fitting before the deadline.
    A worker starts a trial only while fewer than N are finished or running, and waits while the
    running ones could still make N. Raises SearchStopped on a fatal condition."""
    engine.prepare(n_trials)
    set_aside = 0
    while set_aside < SET_ASIDE_IN_A_ROW and (deadline is None or time.monotonic() < deadline) and not runner.retiring and not engine.exhausted:
        interrupts.check()  # asked to stop (a first Ctrl-C, at the epoch's end): no new trial
        finished, running = engine.counts()
        if finished >= n_trials:
            return
        if finished + running >= n_trials:  # others' trials may still make N: wait for them
            time.sleep(WAIT_SECONDS)
            interrupts.check()
            continue
        proposal = engine.ask(n_trials)
        if proposal is None:
            continue
        with engine.running(proposal):
            record = runner.run(proposal)
        if record is None:
            engine.set_aside(proposal)
            set_aside += 1
            continue
        set_aside = 0
        engine.tell(proposal, record)
        runner.finish(record)
