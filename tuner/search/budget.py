"""A trial's time, known before it trains, and what fits before the search's deadline.

`plan` decides a trial's epochs from its counted cost and this machine's calibration
(`tuner.training.cost`): as asked when they fit; fewer when only fewer fit before the deadline
(the schedule is then the shorter one: a cosine decays over it); none when not one epoch fits,
or, once the study has a ranked trial, when less than `MIN_SHARE` of them fit (the proposal is
set aside, another is asked); and, while no trial of the study has finished,
as many as fit before `FIRST_RESULT_SECONDS` after the command started (its checks and start-up
count), so a deadline's search shows a first figure within about a minute and a half.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tuner.training.cost import Calibration
from tuner.wording import duration, plural, short_duration

# With a deadline: the study's first trials are planned to end this long after the command
# started; below 90 s by the margin an estimate misses by (0:14 estimated against 0:20 measured).
FIRST_RESULT_SECONDS = 75.0
FIRST_RESULT = "for a first result soon after the start"  # the reason's words for that cut
# Once the study has a ranked trial, the least share of its epochs a proposal starts on: one or
# two epochs of a model meant for fifteen rank nothing and tell the sampler only that it was cut
# (a 7-minute Fashion-MNIST search spent 3:13 of its last 3:38 on four such trials, 31-61%
# validation accuracy against the best trial's 90.67%; BENCHMARKS.md).
MIN_SHARE = 1 / 3


@dataclass(frozen=True)
class Plan:
    epochs: int  # to train; 0: not started
    asked: int  # the epochs the proposal asked for
    epoch_seconds: float | None = None  # estimated, training and validating; None: not estimated
    seconds: float | None = None  # the whole trial's, estimated
    why: str | None = None  # why fewer than asked
    left: float | None = None  # seconds to the deadline when it was made
    fixed_seconds: float = 0.0  # a trial's estimated time outside its epochs (start, compile)

    def describe(self) -> str:
        """'about 0:21 an epoch, 3:10 for 9 epochs' and why fewer, for the live view."""
        if self.epoch_seconds is None:
            return ""
        text = f"about {short_duration(self.epoch_seconds)} an epoch"
        if self.epochs and self.seconds is not None:
            text += f", {duration(self.seconds)} for {plural(self.epochs, 'epoch')}"
        return text + (f"; {self.why}" if self.why else "")


def plan(calibration: Calibration | None, cost: Any, asked: int, seconds_left: float | None,
         first_left: float | None = None, cap: float | None = None, ranked: bool = False) -> Plan:
    """The epochs a trial of `cost` trains (see the module's docstring); `seconds_left` to the
    deadline, `first_left` to the first result's mark while the study has none (else None), `cap`
    each trial's own limit (--trial-timeout: at least one epoch, which the cap then stops),
    `ranked` whether the study has a ranked trial."""
    if calibration is None:
        return Plan(asked, asked)
    epoch = calibration.epoch_seconds(cost)
    epochs, why = asked, None
    if seconds_left is not None:
        fit = _epochs_in(seconds_left - calibration.fixed_seconds, epoch, asked)
        if fit < 1:
            return Plan(0, asked, epoch, None, f"not started: {duration(seconds_left)} left before the deadline",
                        seconds_left, calibration.fixed_seconds)
        if ranked and fit < epochs and fit < MIN_SHARE * asked:
            return Plan(0, asked, epoch, None, f"not started: only {fit} of {asked} epochs fit in the "
                        f"{duration(seconds_left)} left", seconds_left, calibration.fixed_seconds)
        if fit < epochs:
            epochs, why = fit, f"{fit} of {asked} epochs fit in the {duration(seconds_left)} left"
    if cap is not None and max(1, fit := _epochs_in(cap - calibration.fixed_seconds, epoch, asked)) < epochs:
        epochs, why = max(1, fit), (f"{fit} of {asked} epochs fit in --trial-timeout {cap:g} s" if fit else
                                    f"1 of {asked} epochs, cut by --trial-timeout {cap:g} s (not one fits in it)")
    if seconds_left is not None:
        quick = asked if first_left is None else max(1, _epochs_in(first_left - calibration.fixed_seconds, epoch, asked))
        if quick < epochs:
            epochs, why = quick, f"{quick} of {asked} epochs, {FIRST_RESULT}"
    return Plan(epochs, asked, epoch, calibration.trial_seconds(cost, epochs), why, seconds_left,
                calibration.fixed_seconds)


def _epochs_in(seconds: float, epoch: float, asked: int) -> int:
    """Whole epochs of `epoch` seconds in `seconds`; all asked when an epoch costs nothing."""
    if epoch <= 0 or max(seconds, 0.0) / epoch >= asked:  # also an infinite quotient: all asked fit
        return asked
    return math.floor(max(seconds, 0.0) / epoch)
