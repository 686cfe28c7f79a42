"""A trial's time, known before it trains, and what fits before the search's deadline.

`plan` decides a trial's epochs from its counted cost and this machine's calibration
(`tuner.training.cost`): as asked when they fit; fewer when only fewer fit before the deadline
(the schedule is then the shorter one: a cosine decays over it); none when not one epoch fits,
or, once the study has a ranked trial, when less than `MIN_SHARE` of them fit (the sampler's
proposal is set aside, another is asked; a start point run again takes what fits); and, while no trial of the study has finished,
as many as fit before `FIRST_RESULT_SECONDS` after the command started (its checks and start-up
count), so a deadline's search shows a first figure within about a minute and a half. When a
trial of one epoch is itself longer than that (CIFAR-10's ResNet on a CPU: minutes an epoch) and
the deadline leaves room for a search after it, the first trial trains one epoch on a random
subset of the training images, as many as fit before the mark (at least `MIN_SUBSET_SHARE` of
them), and is validated on the whole validation split: the cheapest fidelity first. A start
point cut for the first result runs again; where the deadline holds its whole schedule after a
second run as long after the first result as the first was after the start, and that run trains
at least a third of the schedule (and at most half), it trains that run first: a better figure at
about twice the first's time, and the whole schedule still by the deadline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from tuner.training.cost import Calibration
from tuner.wording import duration, plural, short_duration

# With a deadline: the study's first trials are planned to end this long after the command
# started; below 90 s by the margin an estimate misses by (0:14 estimated against 0:20 measured).
FIRST_RESULT_SECONDS = 75.0
FIRST_RESULT = "for a first result soon after the start"  # the reason's words for that cut
SECOND_RESULT = "for a second result as soon after the first"  # and for the start point's second run
# Once the study has a ranked trial, the least share of its epochs a proposal starts on: one or
# two epochs of a model meant for fifteen rank nothing and tell the sampler only that it was cut
# (a 7-minute Fashion-MNIST search spent 3:13 of its last 3:38 on four such trials, 31-61%
# validation accuracy against the best trial's 90.67%; BENCHMARKS.md).
MIN_SHARE = 1 / 3
# The least share of an epoch's training images a first result's subset trains on: a figure from
# fewer says little of the proposal (CIFAR-10's ResNet start point on 8 of its 78 batches of a
# one-cycle schedule: 13.65% validation accuracy, on the 2-core CPU; BENCHMARKS.md).
MIN_SUBSET_SHARE = 0.25


@dataclass(frozen=True)
class Second:
    """A start point's run after its run cut for the first result: `left` seconds to the second
    result's mark (`second_mark`), and `least` epochs it must train (more than the first run)."""

    left: float
    least: int


def second_mark(first_by: float, now: float) -> float:
    """When a second result is due, the first having come `now`: as long after it as it came after
    the command's start (`first_by` is the first result's mark, `FIRST_RESULT_SECONDS` after it)."""
    return now + max(now - (first_by - FIRST_RESULT_SECONDS), 0.0)


@dataclass(frozen=True)
class Plan:
    epochs: int  # to train; 0: not started
    asked: int  # the epochs the proposal asked for
    epoch_seconds: float | None = None  # estimated, training and validating; None: not estimated
    seconds: float | None = None  # the whole trial's, estimated
    why: str | None = None  # why fewer than asked
    left: float | None = None  # seconds to the deadline when it was made
    fixed_seconds: float = 0.0  # a trial's estimated time outside its epochs (start, compile)
    steps: int | None = None  # training steps an epoch, when fewer than all the images' (a subset)

    def describe(self) -> str:
        """'about 0:21 an epoch, 3:10 for 9 epochs' and why fewer, for the live view."""
        if self.epoch_seconds is None:
            return ""
        text = f"about {short_duration(self.epoch_seconds)} an epoch"
        if self.steps is not None and self.seconds is not None:
            text += f", {duration(self.seconds)} for a part of one"
        elif self.epochs and self.seconds is not None:
            text += f", {duration(self.seconds)} for {plural(self.epochs, 'epoch')}"
        return text + (f"; {self.why}" if self.why else "")


def plan(calibration: Calibration | None, cost: Any, asked: int, seconds_left: float | None,
         first_left: float | None = None, cap: float | None = None, ranked: bool = False,
         alone: bool = True, second: Second | None = None) -> Plan:
    """The epochs a trial of `cost` trains (see the module's docstring); `seconds_left` to the
    deadline, `first_left` to the first result's mark while the study has none (else None), `cap`
    each trial's own limit (--trial-timeout: at least one epoch, which the cap then stops),
    `ranked` whether `MIN_SHARE` applies (the study has a ranked trial and this is a sampler's draw,
    not a start point run again), `alone` whether no other trial is running (a
    first result on a subset is one trial's: a second worker's first trial trains whole epochs),
    `second` the second result's mark for a start point's run after its first result's."""
    if calibration is None:
        return Plan(asked, asked)
    epoch = calibration.epoch_seconds(cost)
    if alone and first_left is not None and seconds_left is not None and \
            (subset := _first_on_subset(calibration, cost, asked, first_left, seconds_left)) is not None:
        return subset
    if second is not None and seconds_left is not None and cap is None and \
            (rung := _second_result(calibration, cost, asked, second, seconds_left)) is not None:
        return rung
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


def _second_result(calibration: Calibration, cost: Any, asked: int, second: Second,
                   seconds_left: float) -> Plan | None:
    """A start point's run to end by the second result's mark, on at most half the schedule (the
    whole one follows: successive halving's rung below it), or None where it is not worth one:
    under `MIN_SHARE` of the schedule or not more than the first run fits by the mark, or the
    whole schedule would no longer fit before the deadline after it."""
    fixed, epoch = calibration.fixed_seconds, calibration.epoch_seconds(cost)
    epochs = min(_epochs_in(second.left - fixed, epoch, asked), asked // 2)
    seconds = calibration.trial_seconds(cost, epochs)
    if epochs < max(second.least, MIN_SHARE * asked) or \
            seconds_left - seconds < calibration.trial_seconds(cost, asked):
        return None
    return Plan(epochs, asked, epoch, seconds, f"{epochs} of {asked} epochs, {SECOND_RESULT}", seconds_left, fixed)


def _long_epoch(fixed_seconds: float, epoch_seconds: float) -> bool:
    """Whether a trial of one epoch is itself longer than the first result's window."""
    return fixed_seconds + epoch_seconds > FIRST_RESULT_SECONDS


def _room_after(fixed_seconds: float, epoch_seconds: float, asked: int, seconds_left: float) -> bool:
    """Whether `seconds_left` hold a third of a schedule (`MIN_SHARE`), what a proposal needs to
    start once a trial ranks: a first result on a subset must leave a search after it, else the
    first trial is better spent on whole epochs."""
    return _epochs_in(seconds_left - fixed_seconds, epoch_seconds, asked) >= MIN_SHARE * asked


def least_first_trial(fixed_seconds: float, epoch_seconds: float, validation_seconds: float, asked: int,
                      seconds_left: float) -> float:
    """The shortest first trial a plan starts with `seconds_left`: one epoch, or the least subset
    of a long one (and the whole validation) where the search has room after it."""
    subset = fixed_seconds + validation_seconds + MIN_SUBSET_SHARE * (epoch_seconds - validation_seconds)
    if _long_epoch(fixed_seconds, epoch_seconds) and _room_after(fixed_seconds, epoch_seconds, asked,
                                                                  seconds_left - subset):
        return subset
    return fixed_seconds + epoch_seconds


def _first_on_subset(calibration: Calibration, cost: Any, asked: int, first_left: float,
                     seconds_left: float) -> Plan | None:
    """A first trial on a subset of one epoch's images, or None where whole epochs are the plan: a
    trial of one epoch fits before the mark, or is no longer than the mark's window, or the
    subset would leave no room for a search after it."""
    fixed, epoch = calibration.fixed_seconds, calibration.epoch_seconds(cost)
    if not _long_epoch(fixed, epoch) or _epochs_in(min(first_left, seconds_left) - fixed, epoch, asked) >= 1:
        return None
    steps = _subset(calibration, cost, first_left, seconds_left)
    if steps is None:
        return None
    made = _on_subset(calibration, cost, asked, steps, seconds_left)
    return made if _room_after(fixed, epoch, asked, seconds_left - (made.seconds or 0.0)) else None


def _subset(calibration: Calibration, cost: Any, first_left: float, seconds_left: float) -> int | None:
    """The training steps of one epoch that fit before the first result's mark (at least
    `MIN_SUBSET_SHARE` of the epoch's) and before the deadline; None when that is the whole epoch,
    or when not that share fits before the deadline."""
    least = max(math.ceil(MIN_SUBSET_SHARE * cost.steps), 1)
    steps = min(max(_steps_in(calibration, cost, first_left), least), _steps_in(calibration, cost, seconds_left))
    return steps if least <= steps < cost.steps else None


def _steps_in(calibration: Calibration, cost: Any, seconds: float) -> int:
    """Training steps that fit in `seconds` beside a trial's fixed time and one validation."""
    train = seconds - calibration.fixed_seconds - calibration.validation_seconds(cost.val_images, cost.forward_work)
    step = calibration.train_step_seconds(cost)
    if step <= 0 or max(train, 0.0) / step >= cost.steps:
        return cost.steps
    return math.floor(max(train, 0.0) / step)


def _on_subset(calibration: Calibration, cost: Any, asked: int, steps: int, seconds_left: float) -> Plan:
    """One epoch of `steps` training steps (a random subset of the images each epoch would see)."""
    why = (f"1 of {asked} epochs on a subset of {steps * cost.batch_size:,} training images ({steps} of "
           f"{cost.steps} batches), {FIRST_RESULT}")
    subset = replace(cost, steps=steps)
    return Plan(1, asked, calibration.epoch_seconds(cost), calibration.trial_seconds(subset, 1), why, seconds_left,
                calibration.fixed_seconds, steps)


def on_subset(reason: str | None) -> bool:
    """Whether a trial's recorded reason says it trained on a subset of an epoch (`_on_subset`)."""
    return " on a subset of " in (reason or "")


def _epochs_in(seconds: float, epoch: float, asked: int) -> int:
    """Whole epochs of `epoch` seconds in `seconds`; all asked when an epoch costs nothing."""
    if epoch <= 0 or max(seconds, 0.0) / epoch >= asked:  # also an infinite quotient: all asked fit
        return asked
    return math.floor(max(seconds, 0.0) / epoch)
