"""A trial's plan from its counted cost: as asked without a deadline, fewer epochs when only fewer
fit, none when not one fits, a short first trial for a first figure; and the calibration refitted
from measured trials recovers the machine's own figures."""

from __future__ import annotations

import math
import re
import time

import pytest
from hypothesis import given, settings, strategies as st

from tuner.search.budget import FIRST_RESULT_SECONDS, Second, plan, second_mark
from tuner.training.cost import ELEMENT_MACS, Calibration, Cost, Measured, calibrate, prior

CAL = Calibration(step_seconds=0.01, work_seconds=1e-9, fixed_seconds=5.0)
# 100 steps of batch 100 at 1e6 multiply-adds: 100 * (0.01 + 0.1) = 11 s; 1,000 validated images 1/3 s
COST = Cost(macs=1e6, weights=1000, steps=100, batch_size=100, val_images=1000)
EPOCH = 11.0 + 1e-9 / 3 * 1000 * 1e6


@pytest.mark.parametrize("left, first, epochs, why", [
    (None, None, 20, None),  # no deadline: as asked
    (1000.0, None, 20, None),  # 5 + 20 * 11.33 = 231.7 s fit
    (100.0, None, 8, "8 of 20 epochs fit in the 1:40 left"),  # (100 - 5) / 11.33 = 8.4
    (16.4, None, 1, "1 of 20 epochs fit in the 0:16 left"),
    (16.0, None, 0, "not started: 0:16 left before the deadline"),  # 5 + 11.33 > 16
    (1000.0, 60.0, 4, "4 of 20 epochs, for a first result soon after the start"),  # (60 - 5) / 11.33 = 4.9
    (1000.0, 30.0, 2, "2 of 20 epochs, for a first result soon after the start"),  # the checks took 45 of 75 s
    (1000.0, -10.0, 1, "1 of 20 epochs, for a first result soon after the start"),  # past the mark: one epoch
    (30.0, 60.0, 2, "2 of 20 epochs fit in the 0:30 left"),  # the deadline is nearer than the mark
])
def test_a_plan_takes_the_epochs_that_fit(left, first, epochs, why):
    """A study without a ranked trial (`ranked` False): any epoch that fits is worth a start."""
    made = plan(CAL, COST, 20, left, first)
    assert (made.epochs, made.why) == (epochs, why)
    assert made.epoch_seconds == pytest.approx(EPOCH)
    if epochs:
        assert made.seconds == pytest.approx(5.0 + epochs * EPOCH)


@pytest.mark.parametrize("left, asked, epochs, why", [
    (1000.0, 20, 20, None),
    (100.0, 20, 8, "8 of 20 epochs fit in the 1:40 left"),  # (100 - 5) / 11.33 = 8.4: a third or more
    (80.0, 20, 0, "not started: only 6 of 20 epochs fit in the 1:20 left"),  # 6.6: under a third
    (16.4, 20, 0, "not started: only 1 of 20 epochs fit in the 0:16 left"),
    (16.4, 2, 1, "1 of 2 epochs fit in the 0:16 left"),  # half a short schedule is worth it
    (16.0, 20, 0, "not started: 0:16 left before the deadline"),
])
def test_once_a_trial_ranks_a_proposal_needs_a_third_of_its_epochs(left, asked, epochs, why):
    made = plan(CAL, COST, asked, left, None, ranked=True)
    assert (made.epochs, made.why) == (epochs, why)


@pytest.mark.parametrize("left, first, cap, epochs, why", [
    (None, None, 100.0, 8, "8 of 20 epochs fit in --trial-timeout 100 s"),  # no deadline: the cap alone
    (None, None, 3.0, 1, "1 of 20 epochs, cut by --trial-timeout 3 s (not one fits in it)"),  # one epoch, cut by the cap
    (50.0, None, 100.0, 3, "3 of 20 epochs fit in the 0:50 left"),  # the deadline nearer than the cap
    (1000.0, 30.0, 100.0, 2, "2 of 20 epochs, for a first result soon after the start"),
    (None, None, 1000.0, 20, None),
])
def test_a_trial_timeout_plans_the_epochs_that_fit_in_it(left, first, cap, epochs, why):
    made = plan(CAL, COST, 20, left, first, cap)
    assert (made.epochs, made.why) == (epochs, why)


def test_short_epochs_read_in_tenths_and_a_passed_deadline_reads_zero():
    from tuner.wording import duration

    quick = Cost(macs=1e3, weights=1, steps=10, batch_size=10, val_images=0)  # 0.1 s an epoch at CAL
    assert plan(CAL, quick, 3, None).describe() == "about 0.1 s an epoch, 0:05 for 3 epochs"
    assert plan(CAL, COST, 20, -3.0).why == "not started: 0:00 left before the deadline"
    assert duration(-5.0) == "0:00" and duration(3725.0) == "1:02:05"


def test_a_huge_budget_plans_every_epoch_asked():
    """An epoch's time into a budget near the float's end is infinite epochs, not an overflow."""
    quick = Cost(macs=0.0, weights=1, steps=1, batch_size=1, val_images=0)
    assert plan(Calibration(1e-300, 0.0, 0.0), quick, 20, 1e308).epochs == 20


def test_without_a_calibration_the_trial_runs_as_asked_and_says_no_estimate():
    made = plan(None, COST, 12, 5.0, 60.0)
    assert (made.epochs, made.epoch_seconds, made.describe()) == (12, None, "")


def test_the_description_reads_as_the_live_view_shows_it():
    assert plan(CAL, COST, 20, 100.0).describe() == (
        "about 0:11 an epoch, 1:36 for 8 epochs; 8 of 20 epochs fit in the 1:40 left")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(asked=st.integers(1, 200), left=st.one_of(st.none(), st.floats(0.0, 1e6)),
       first=st.one_of(st.none(), st.floats(-1e3, 1e3)),
       macs=st.floats(1.0, 1e10), steps=st.integers(1, 10_000), batch=st.integers(1, 1024),
       step=st.floats(0.0, 1.0), rate=st.floats(1e-13, 1e-6), fixed=st.floats(0.0, 100.0), ranked=st.booleans())
def test_a_planned_trial_never_asks_more_than_asked_and_ends_before_the_deadline(asked, left, first, macs, steps,
                                                                                   batch, step, rate, fixed, ranked):
    cal, cost = Calibration(step, rate, fixed), Cost(macs, 1, steps, batch, 100)
    first = None if ranked else first  # the first result's mark holds only while nothing ranks
    made = plan(cal, cost, asked, left, first, ranked=ranked)
    assert 0 <= made.epochs <= asked
    if left is None:
        assert made.epochs == asked and made.why is None
        return
    fits = math.floor(max(left - fixed, 0.0) / cal.epoch_seconds(cost))
    too_few = ranked and fits < min(asked, asked / 3)  # a third of the schedule, once a trial ranks
    if made.epochs:
        assert made.seconds <= left * (1 + 1e-9) and not too_few
    else:
        assert (cal.trial_seconds(cost, 1) > left * (1 - 1e-9) or too_few) and made.why.startswith("not started")
    if made.epochs and first is None:
        assert made.epochs == min(asked, fits)  # every epoch that fits, no more
    if made.epochs > 1 and first is not None:  # more than the one epoch always kept: they fit before the mark
        assert cal.trial_seconds(cost, made.epochs) <= max(first, 0.0) * (1 + 1e-9) + 1e-9
    if made.epochs < asked:
        assert made.why


def _measured(cal: Calibration, macs: float, batch: int, steps: int = 50, epochs: int = 4) -> Measured:
    """What a trial of this cost (no values written) reports on a machine that is `cal` exactly."""
    epoch = steps * (cal.step_seconds + cal.work_seconds * batch * macs)
    timings = {"macs": macs, "elements": 0.0, "batch_size": batch, "steps": steps, "epoch_seconds": epoch,
               "train_seconds": epochs * epoch, "predict_seconds": 2.0,
               "total_seconds": cal.fixed_seconds + epochs * epoch + 2.0}
    return Measured.of(timings, epochs)


def test_the_rate_is_the_one_measured_on_trials_nearest_in_cost():
    start = prior("cpu", 1)
    small, large = Calibration(start.step_seconds, 2e-10, 3.0), Calibration(start.step_seconds, 5e-11, 9.0)
    points = ([_measured(small, macs, 64) for macs in (1e5, 2e5, 4e5)]
              + [_measured(large, macs, 128) for macs in (5e7, 1e8, 2e8)])
    near_small = calibrate(start, points, work=64 * 3e5)
    near_large = calibrate(start, points, work=128 * 1e8)
    assert near_small.work_seconds == pytest.approx(2e-10) and near_large.work_seconds == pytest.approx(5e-11)
    assert near_small.fixed_seconds == pytest.approx(6.0) and near_small.measured == 6  # the median of all
    assert near_small.epoch_overhead == pytest.approx(0.5)  # 2 s of validation over 4 epochs, no images counted


LEGACY = {"macs": 1e6, "batch_size": 64, "steps": 10, "epoch_seconds": 1.0, "total_seconds": 9.0, "train_seconds": 5.0}


@pytest.mark.parametrize("timings, epochs", [
    ({}, 5),  # a trial of an older version: no cost recorded
    (LEGACY, 5),  # multiply-adds without written values: its rate would hold their time
    ({"macs": 1e6, "batch_size": 64, "steps": 10, "epoch_seconds": 1.0, "total_seconds": 9.0, "train_seconds": 5.0}, 0),
    ({"macs": 1e6, "batch_size": 64, "steps": 0, "epoch_seconds": 1.0, "total_seconds": 9.0, "train_seconds": 5.0}, 3),
])
def test_trials_that_cannot_say_their_rate_are_not_measurements(timings, epochs):
    # No epoch, or no steps, is no rate.
    assert Measured.of(timings, epochs) is None


def test_a_one_epoch_trial_calibrates_with_its_compile_until_a_longer_one_ran():
    """A deadline's first trial is often one epoch (a photo model's first minute): its epoch,
    compile included, is the estimate's upper bound until a trial of more epochs says better."""
    start = prior("cpu", 2)
    slow = Calibration(start.step_seconds, 4 * start.work_seconds, 3.0)  # depthwise convolutions: 4x the prior
    one = _measured(slow, 2e8, 32, epochs=1)
    assert one.with_compile and calibrate(start, [one]).work_seconds == pytest.approx(slow.work_seconds)
    longer = _measured(Calibration(start.step_seconds, 3 * start.work_seconds, 3.0), 2e8, 32, epochs=3)
    assert calibrate(start, [one, longer]).work_seconds == pytest.approx(3 * start.work_seconds)


def test_an_epoch_trains_the_whole_work_and_validates_without_augmentation():
    """Written by hand: training counts the augmentation's values, validation (a third of the
    arithmetic, forward only) does not."""
    cal = Calibration(step_seconds=0.01, work_seconds=1e-10, fixed_seconds=0.0, epoch_overhead=0.5)
    cost = Cost(macs=2e7, weights=1, steps=50, batch_size=32, val_images=1000, elements=2e6, augment_elements=1e5)
    train = 50 * (0.01 + 1e-10 * 32 * (2e7 + ELEMENT_MACS * (2e6 + 1e5)))
    validate = 0.5 + 1e-10 * 1000 * (2e7 + ELEMENT_MACS * 2e6) / 3
    assert cal.epoch_seconds(cost) == pytest.approx(train + validate)


def test_a_trial_recorded_with_its_written_values_calibrates_their_work():
    """A trial that wrote many values a multiply-add (a separable network, augmentation) is
    measured at its whole work: a proposal of the same macs and elements gets its true epoch;
    an older record beside it (multiply-adds alone) is no measurement and does not skew it."""
    start = prior("cpu", 1)
    machine = Calibration(start.step_seconds, 1e-10, 3.0, epoch_overhead=0.2)
    cost = Cost(macs=2e7, weights=1, steps=50, batch_size=32, val_images=500, elements=2e6, augment_elements=1e5)
    epoch = machine.epoch_seconds(cost)
    validation = machine.validation_seconds(cost.val_images, cost.forward_work)
    timings = {**cost.to_dict(), "epoch_seconds": epoch - validation, "train_seconds": 4 * (epoch - validation),
               "predict_seconds": 4 * validation, "total_seconds": machine.fixed_seconds + 4 * epoch}
    measured = Measured.of(timings, 4)
    assert measured.work == pytest.approx(cost.work) and measured.forward_work == pytest.approx(cost.forward_work)
    legacy = Measured.of({**LEGACY, "epoch_seconds": 100.0}, 4)
    fitted = calibrate(start, [m for m in (measured, legacy) if m is not None], work=32 * cost.work)
    assert legacy is None and fitted.epoch_seconds(cost) == pytest.approx(epoch)


def test_no_measurement_leaves_the_prior_and_an_accelerator_has_none():
    assert calibrate(prior("cpu", 2), []) == prior("cpu", 2)
    assert prior("gpu", 8) is None and calibrate(None, []) is None
    assert prior("cpu", 2).work_seconds == pytest.approx(prior("cpu", 1).work_seconds / 1.45)


SLOW = Cost(macs=1e7, weights=1, steps=100, batch_size=100, val_images=0)  # 1.01 s a step, 101 s an epoch at CAL


FIRST = "for a first result soon after the start"


@pytest.mark.parametrize("left, first, epochs, steps, why", [
    # (75 - 5) / 1.01 = 69 steps before the mark
    (10_000.0, 75.0, 1, 69, f"1 of 20 epochs on a subset of 6,900 training images (69 of 100 batches), {FIRST}"),
    (10_000.0, 10.0, 1, 25, f"1 of 20 epochs on a subset of 2,500 training images (25 of 100 batches), {FIRST}"),
    (10_000.0, -10.0, 1, 25, None),  # past the mark: a quarter of the epoch too
    # After the subset's 74.7 s, 7 of 20 epochs (5 + 7 * 101 s) must fit, a third: 787 s do, 780 s do not,
    # and the first trial is then one whole epoch.
    (787.0, 75.0, 1, 69, None),
    (780.0, 75.0, 1, None, f"1 of 20 epochs, {FIRST}"),
    (50.0, 75.0, 0, None, "not started: 0:50 left before the deadline"),  # no epoch, and no room after a subset
    (200.0, None, 1, None, "1 of 20 epochs fit in the 3:20 left"),  # a trial ranks (no mark): whole epochs
])
def test_when_not_one_epoch_fits_before_the_first_mark_a_subset_of_the_images_does(left, first, epochs, steps, why):
    made = plan(CAL, SLOW, 20, left, first)
    assert (made.epochs, made.steps) == (epochs, steps)
    if why is not None:
        assert made.why == why
    if steps:
        assert made.seconds == pytest.approx(5.0 + 1.01 * steps)
        assert made.seconds <= left and made.epoch_seconds == pytest.approx(101.0)


def test_a_subset_is_the_first_result_of_one_trial_alone():
    """With two workers both first trials were planned on subsets; the second now trains whole epochs."""
    assert plan(CAL, SLOW, 20, 10_000.0, 75.0).steps == 69
    beside = plan(CAL, SLOW, 20, 10_000.0, 75.0, alone=False)
    assert (beside.epochs, beside.steps, beside.why) == (1, None, f"1 of 20 epochs, {FIRST}")


def test_an_epoch_that_fits_before_the_mark_is_not_cut_into_a_subset():
    made = plan(CAL, COST, 20, 10_000.0, 20.0)  # (20 - 5) / 11.33: one whole epoch
    assert (made.epochs, made.steps) == (1, None)


def test_a_subset_plan_reads_as_a_part_of_an_epoch():
    assert plan(CAL, SLOW, 20, 10_000.0, 75.0).describe() == (
        "about 1:41 an epoch, 1:15 for a part of one; 1 of 20 epochs on a subset of 6,900 training images "
        "(69 of 100 batches), for a first result soon after the start")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(asked=st.integers(1, 200), left=st.floats(0.0, 1e6), first=st.floats(-1e3, 1e3),
       macs=st.floats(1.0, 1e10), steps=st.integers(1, 10_000), batch=st.integers(1, 1024), val=st.integers(0, 10_000),
       step=st.floats(0.0, 1.0), rate=st.floats(1e-13, 1e-6), fixed=st.floats(0.0, 100.0))
def test_a_subset_is_planned_only_when_no_epoch_fits_and_ends_before_the_deadline(asked, left, first, macs, steps,
                                                                                     batch, val, step, rate, fixed):
    cal, cost = Calibration(step, rate, fixed, 0.1), Cost(macs, 1, steps, batch, val)
    made = plan(cal, cost, asked, left, first)
    if made.steps is None:
        return
    epoch = cal.epoch_seconds(cost)
    assert cal.trial_seconds(cost, 1) > max(min(first, left), FIRST_RESULT_SECONDS) and made.epochs == 1
    assert max(math.ceil(steps / 4), 1) <= made.steps < steps
    assert made.seconds <= left * (1 + 1e-9) and "subset" in made.why
    assert math.floor((left - made.seconds - fixed) / epoch) >= asked / 3  # a search has room after it


SECOND = "for a second result as soon after the first"


@pytest.mark.parametrize("left, second, cap, epochs, why", [
    # (100 - 5) / 11.33 = 8 epochs by the mark, a third of 20 or more; 5 + 20 * 11.33 = 231.7 s fit after them
    (1000.0, Second(100.0, 5), None, 8, f"8 of 20 epochs, {SECOND}"),
    (1000.0, Second(100.0, 9), None, 20, None),  # not more than the first run's 8: the whole schedule
    (1000.0, Second(60.0, 2), None, 20, None),  # 4 of 20 by the mark: under a third
    (300.0, Second(100.0, 5), None, 20, None),  # after the 95.7-s run the whole schedule would not fit
    (327.4, Second(100.0, 5), None, 8, f"8 of 20 epochs, {SECOND}"),  # 95.7 + 231.7 s: it just fits
    (10_000.0, Second(1000.0, 2), None, 10, f"10 of 20 epochs, {SECOND}"),  # all fits by the mark: half, a rung below
    (10_000.0, Second(1000.0, 13), None, 20, None),  # a first run of 12: a second of 13-19 would be the whole again
    (1000.0, Second(100.0, 5), 500.0, 20, None),  # a --trial-timeout plans by its own rule
    (150.0, Second(100.0, 5), None, 12, "12 of 20 epochs fit in the 2:30 left"),  # the deadline's rule
])
def test_a_start_points_run_after_its_first_result_ends_by_the_second_mark_when_its_schedule_fits_after(
        left, second, cap, epochs, why):
    made = plan(CAL, COST, 20, left, None, cap=cap, ranked=True, second=second)
    assert (made.epochs, made.why) == (epochs, why)


def test_the_second_mark_is_as_long_after_the_first_result_as_that_was_after_the_start():
    started = 1000.0
    assert second_mark(started + FIRST_RESULT_SECONDS, started + 69.0) == pytest.approx(started + 138.0)
    assert second_mark(started + FIRST_RESULT_SECONDS, started - 5.0) == pytest.approx(started - 5.0)  # never before now


@settings(max_examples=300, deadline=None, derandomize=True)
@given(asked=st.integers(1, 200), left=st.floats(0.0, 1e6), mark=st.floats(-1e3, 1e5), least=st.integers(1, 200),
       macs=st.floats(1.0, 1e10), steps=st.integers(1, 10_000), batch=st.integers(1, 1024), val=st.integers(0, 10_000),
       step=st.floats(0.0, 1.0), rate=st.floats(1e-13, 1e-6), fixed=st.floats(0.0, 100.0))
def test_a_second_result_run_ends_by_its_mark_trains_more_than_the_first_and_leaves_the_whole_schedule(
        asked, left, mark, least, macs, steps, batch, val, step, rate, fixed):
    cal, cost = Calibration(step, rate, fixed, 0.1), Cost(macs, 1, steps, batch, val)
    made, plain = plan(cal, cost, asked, left, None, ranked=True, second=Second(mark, least)), \
        plan(cal, cost, asked, left, None, ranked=True)
    if made == plain:
        return
    assert made.why == f"{made.epochs} of {asked} epochs, {SECOND}"
    assert max(least, asked / 3) <= made.epochs <= asked // 2
    assert made.seconds == pytest.approx(cal.trial_seconds(cost, made.epochs))
    assert made.seconds <= mark * (1 + 1e-9)
    assert left - made.seconds >= cal.trial_seconds(cost, asked) * (1 - 1e-9)


@pytest.mark.parametrize("engine, pruner, timeout, expected", [
    ("optuna", None, 420.0, "hyperband"),  # a budget: successive halving over epochs
    ("optuna", None, None, None),  # no budget: the engine's default (median)
    ("optuna", "median", 420.0, "median"),  # the user's choice stands
    ("optuna", "none", 420.0, "none"),
    ("keras-tuner", None, 420.0, None),  # KerasTuner has no pruner; its Hyperband is a sampler
])
def test_a_budget_gets_successive_halving_unless_a_pruner_is_named(engine, pruner, timeout, expected):
    from tuner.search.engines import budget_pruner

    assert budget_pruner(engine, pruner, timeout) == expected



@pytest.mark.parametrize("epoch_seconds, first_plan", [
    (20.0, r"3 of 5 epochs"),  # 3 fit before the mark
    (200.0, r"1 of 5 epochs on a subset of [\d,]+ training images \((\d+) of (\d+) batches\)"),  # none fits
])
def test_a_start_point_cut_for_the_first_result_runs_again_in_full(tiny_space, digits_data, results, monkeypatch,
                                                                   epoch_seconds, first_plan):
    """With a deadline the first trial (the space's start point) is planned to end soon after the
    command's start, on fewer epochs or, when not one fits, on a subset of one epoch's images;
    Optuna's queue then runs the same point on its whole schedule."""
    import re

    from tuner.search.observer import QuietObserver
    from tuner.search.request import SearchRequest
    from tuner.search.run import run_search
    from tuner.store import SearchStore
    from tuner.training import cost as costs

    from tuner.space.schema import parse_space

    data = tiny_space.with_overrides(epochs=5).to_dict()
    data["start"] = [{"width": 6}]
    space = parse_space(data, "start.yaml")
    steps = len(digits_data[0].x_train) // space.complete({})["batch_size"]
    # Assumed before the first trial (then measured): 20 s an epoch, so 3 fit before the first result's
    # mark (75 s after the start, which the study's set-up takes seconds of); or 200 s, a part of one.
    # (The prior keeps its per-step time after the first trial: 1,200 s hold the 200-s epochs again.)
    monkeypatch.setattr(costs, "prior", lambda device, threads: costs.Calibration(epoch_seconds / steps, 0.0, 0.0))
    from tuner.keras_backend import load_keras

    load_keras()  # before the clock starts: a cold first import of TensorFlow alone took 20 s
    store = SearchStore(None, results, create=True)
    # The mark 79 s away now: 3 epochs fit however the set-up takes between 0 and 19 s.
    request = SearchRequest(space, "s", 2, cache_dir=results / "cache", seed=0, timeout=1200.0, jobs=1, isolate=False,
                            started=time.monotonic() + 4.0)
    run_search(store, request, QuietObserver())
    first, again = sorted(store.trials.all("s"), key=lambda t: t.number)
    shortened = re.fullmatch(f"shortened: {first_plan}, for a first result soon after the start", first.reason)
    assert shortened and first.state.value == "pruned" and first.ranks
    if shortened.groups():  # the subset: as many batches as fit in the 75-79 s to the mark, at least a quarter
        batches, whole = map(int, shortened.groups())
        assert whole == steps and math.ceil(steps / 4) <= batches <= 0.4 * steps and first.timings["steps"] == batches
    assert first.max_epochs == (1 if shortened.groups() else 3) and len(first.history["loss"]) == first.max_epochs
    assert [store.trials.start_point("s", t.number) for t in (first, again)] == [0, 0]
    import optuna

    # Run again on more than its first run trained: after a subset's one epoch, one whole epoch will do.
    rerun = optuna.load_study(study_name="s", storage=store.db.storage).trials[again.number]
    assert rerun.user_attrs["least_epochs"] == (1 if shortened.groups() else 4)
    assert again.params == first.params and again.max_epochs == 5 and again.state.value == "complete"


@pytest.mark.parametrize("trials, widths, runs", [
    (3, [6], [(1, 1, "pruned"), (3, 3, "pruned"), (6, 6, "complete")]),
    (2, [6], [(1, 1, "pruned"), (6, 6, "complete")]),  # --trials 2 holds no run between: the whole schedule second
    # The second start point's result came between: the first one's rerun is its whole schedule.
    (3, [6, 8], [(1, 1, "pruned"), (6, 6, "complete"), (6, 6, "complete")]),
])
def test_a_start_point_runs_to_a_second_mark_before_its_whole_schedule(tiny_space, digits_data, results, monkeypatch,
                                                                       trials, widths, runs):
    """Where the deadline and --trials hold the whole schedule after it, the start point's run after
    its first result ends as long after that result as the result came after the start, on at most
    half the schedule: three runs of one point, on 1, 3 and 6 of 6 epochs, the last two queued by
    Optuna's tell."""
    import optuna

    from tuner.search.observer import QuietObserver
    from tuner.search.request import SearchRequest
    from tuner.search.run import run_search
    from tuner.store import SearchStore
    from tuner.training import cost as costs
    from tuner.space.schema import parse_space

    data = tiny_space.with_overrides(epochs=6).to_dict()
    # No run ends early on its own: no early stopping, and rates that learn.
    data["start"] = [{"width": w, "optimizer": "adam", "learning_rate": 0.005} for w in widths]
    data["training"]["patience"] = 6
    space = parse_space(data, "start.yaml")
    steps = len(digits_data[0].x_train) // space.complete({})["batch_size"]
    monkeypatch.setattr(costs, "prior", lambda device, threads: costs.Calibration(50.0 / steps, 0.0, 0.0))
    store = SearchStore(None, results, create=True)
    # The command "started" 200 s ago: its first mark is past (one epoch), the second 200-230 s away (4 epochs
    # of 50 s fit, half the schedule is 3), and the 2,000-s deadline holds the whole 300-s schedule after them.
    request = SearchRequest(space, "s", trials, cache_dir=results / "cache", seed=0, timeout=2000.0, jobs=1,
                            isolate=False, started=time.monotonic() - 200.0)
    run_search(store, request, QuietObserver())
    made = sorted(store.trials.all("s"), key=lambda t: t.number)
    assert [(t.max_epochs, len(t.history["loss"]), t.state.value) for t in made] == runs
    assert made[0].reason == "shortened: 1 of 6 epochs, for a first result soon after the start"
    if len(runs) == 3 and len(widths) == 1:
        assert made[1].reason == "shortened: 3 of 6 epochs, for a second result as soon after the first"
        attrs = [t.user_attrs for t in optuna.load_study(study_name="s", storage=store.db.storage).trials]
        assert [(a.get("least_epochs"), a.get("after_first_result")) for a in attrs] == [(None, None), (2, True), (4, False)]
    points = [store.trials.start_point("s", t.number) for t in made]
    assert points == ([0, 1, 0] if len(widths) == 2 else [0] * len(runs))
    assert all(t.params == made[0].params for t, p in zip(made, points) if p == 0)


def test_a_start_point_run_again_trains_the_epochs_that_fit_under_a_third_of_its_schedule(tiny_space, digits_data,
                                                                                          results, monkeypatch):
    """A 150-s search's start point ran 1 epoch for the first result; its run again was set aside
    ("only 2 of 15 epochs fit in the 1:23 left": the third-of-a-schedule floor for sampler draws),
    and the search's best was the 1-epoch model. A start point again needs only more epochs than
    its first run."""
    from tuner.search.observer import QuietObserver
    from tuner.search.request import SearchRequest
    from tuner.search.run import run_search
    from tuner.store import SearchStore
    from tuner.training import cost as costs
    from tuner.space.schema import parse_space

    data = tiny_space.with_overrides(epochs=15).to_dict()
    data["start"] = [{"width": 6, "optimizer": "adam", "learning_rate": 0.005}]
    data["training"]["patience"] = 15
    space = parse_space(data, "start.yaml")
    steps = len(digits_data[0].x_train) // space.complete({})["batch_size"]
    monkeypatch.setattr(costs, "prior", lambda device, threads: costs.Calibration(50.0 / steps, 0.0, 0.0))
    store = SearchStore(None, results, create=True)
    # The first mark is past (one epoch); 190 s hold 3 of the 50-s epochs, under a third of 15.
    request = SearchRequest(space, "s", 2, cache_dir=results / "cache", seed=0, timeout=190.0, jobs=1, isolate=False,
                            started=time.monotonic() - 200.0)
    run_search(store, request, QuietObserver())
    first, again = sorted(store.trials.all("s"), key=lambda t: t.number)
    assert first.reason == "shortened: 1 of 15 epochs, for a first result soon after the start"
    assert again.params == first.params and again.state.value == "pruned"
    assert re.fullmatch(r"shortened: 3 of 15 epochs fit in the 3:0\d left", again.reason) and again.epochs == 3


def test_a_search_of_one_trial_has_no_first_result_mark(tiny_space, digits_data, results, monkeypatch):
    """Its one trial is its result: with --trials 1 and a deadline it trained 1 of 3 epochs on a
    subset "for a first result soon after the start" and the command ended with most of its budget left."""
    from tuner.search.observer import QuietObserver
    from tuner.search.request import SearchRequest
    from tuner.search.run import run_search
    from tuner.store import SearchStore
    from tuner.training import cost as costs

    space = tiny_space.with_overrides(epochs=3)
    steps = len(digits_data[0].x_train) // space.complete({})["batch_size"]
    # 200 s an epoch assumed: the mark 75 s away would cut a first trial to a subset.
    monkeypatch.setattr(costs, "prior", lambda device, threads: costs.Calibration(200.0 / steps, 0.0, 0.0))
    store = SearchStore(None, results, create=True)
    request = SearchRequest(space, "one", 1, cache_dir=results / "cache", seed=0, timeout=10_000.0, jobs=1,
                            isolate=False)
    run_search(store, request, QuietObserver())
    (only,) = store.trials.all("one")
    assert only.state.value == "complete" and only.reason is None and only.timings["steps"] == steps
    assert len(only.history["loss"]) == 3


@settings(max_examples=200, deadline=None, derandomize=True)
@given(asked=st.integers(1, 200), cap=st.floats(0.0, 1e5), macs=st.floats(1.0, 1e10), steps=st.integers(1, 10_000),
       step=st.floats(1e-6, 1.0), fixed=st.floats(0.0, 100.0))
def test_a_capped_trial_trains_at_least_one_epoch_and_no_more_than_fit_in_its_cap(asked, cap, macs, steps, step, fixed):
    cal, cost = Calibration(step, 1e-10, fixed), Cost(macs, 1, steps, 32, 100)
    made = plan(cal, cost, asked, None, None, cap)
    fits = math.floor(max(cap - fixed, 0.0) / cal.epoch_seconds(cost))
    assert made.epochs == max(1, min(asked, fits))
    assert (made.why is None) == (made.epochs == asked)


@pytest.mark.parametrize("intercept, tiny_work", [(0.006, 3e5), (0.012, 1e4), (0.004, 2e5)])
def test_tiny_trials_do_not_make_a_large_proposal_look_hundreds_of_times_longer(intercept, tiny_work):
    """Trials of tiny models measure mostly a step's fixed time; as the rate of their tiny work it
    put a large CNN's epoch at many times its time (158x here, without the cap). Past ten times the work measured, the rate is the
    prior's, slowed as this machine ran those trials: within 3x of the truth here, and long."""
    start = prior("cpu", 1)
    machine = Calibration(intercept, start.work_seconds, 3.0)  # the prior's rate, a slower fixed step
    points = [_measured(machine, tiny_work * f, 64) for f in (1.0, 1.5, 2.0)]
    large = Cost(macs=5e8, weights=1, steps=100, batch_size=128, val_images=0)
    fitted = calibrate(start, points, work=large.batch_size * large.work)
    truth = machine.epoch_seconds(large)
    assert truth <= fitted.epoch_seconds(large) <= 3 * truth
