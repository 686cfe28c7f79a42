"""Checks 2-5, the training playbook on the space's reference configuration (its first start
point, the rest at their defaults): the loss at initialization, an input-independent baseline,
overfitting one batch, and the space's largest configurations. Keras is imported only when a
check runs (`tuner.training.probes`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tuner.check.findings import COST_CHECK, Finding, Status, first_line
from tuner.data import SearchData
from tuner.space.params import PARAMETERS
from tuner.space.schema import CategoricalParam, FloatParam, IntParam, Space
from tuner.wording import plural

INIT_WARN, INIT_FAIL = 0.15, 0.5  # off by this share of the expected loss at initialization
BASELINE_CHECK = "input-independent baseline"
BASELINE_PASS, BASELINE_WARN = 0.9, 0.98  # validation loss over an input-independent model's: under the first passes
BASELINE_STEPS = 100
BASELINE_SECONDS = 30.0  # of steps on the images: a CPU takes minutes for 100 of a ResNet
BASELINE_BATCH = 64  # images a step of the baseline, at most
BASELINE_MIN_STEPS = 20  # fewer in the time: not judged
MOVED, FITTED = 0.9, 0.5  # the baseline's training loss at its end over its start: it moved; it fitted the images
SWEEP_SECONDS = 60.0  # the range test's steps, fewer and farther apart past this
SWEEP_STEPS = 100  # the range test's learning rates, one step each
SWEEP_SKIP = 5  # the sweep's first steps, left out of "where it falls fastest" (fastai leaves out 10 of 100)
SWEEP_FALL = 0.02  # a loss that fell less than this fraction below its start fell at no rate (noise)
SWEEP_WIDEN = 100.0  # the sweep reaches the space's lowest rate / this and its highest * this
COSTLY = ("depth", "width", "head_units", "batch_size")  # the larger, the more memory and time


def _middle(spec: Any, default: Any) -> Any:
    """The parameter's default if the space admits it, else the middle of its range."""
    if spec.admits(default):
        return default
    if isinstance(spec, CategoricalParam):
        return spec.choices[0]
    low, high = spec.low, spec.high
    mid = math.sqrt(low * high) if spec.log else (low + high) / 2
    if isinstance(spec, IntParam):
        return low + round((mid - low) / spec.step) * spec.step
    if isinstance(spec, FloatParam) and spec.step:
        return low + round((mid - low) / spec.step) * spec.step
    return mid


def reference_params(space: Space) -> dict[str, Any]:
    """The configuration the checks train: the first start point, the rest at their defaults."""
    chosen = {name: _middle(spec, PARAMETERS[name].default) for name, spec in space.searched().items()}
    return space.complete({**chosen, **(space.start[0] if space.start else {})})


SLOW_EPOCH_SECONDS = 600.0  # an estimated epoch past this warns: a search here holds few trials


def trial_cost(params: dict[str, Any], data: SearchData) -> Finding:
    """What one epoch of the reference configuration costs here, from its counted multiply-adds
    and written values (its augmentation's too) and the development machine's figures for a CPU
    core (`tuner.training.cost`); a search picks its worker count by the multiply-adds
    (`tuner.search.pool.jobs.default_jobs`)."""
    from tuner import config
    from tuner.training.backend import accelerator
    from tuner.training.cost import model_cost, prior
    from tuner.training.fit import augmentation
    from tuner.training.model import build_model
    from tuner.wording import short_duration

    model = build_model(params, data.input_shape, data.n_classes)
    batch = min(params["batch_size"], len(data.x_train))
    cost = model_cost(model, len(data.x_train) // batch, batch, len(data.x_val),
                      augmentation(params).written(data.input_shape))
    device, threads = accelerator(), config.training_threads()
    figures = {"macs": cost.macs, "weights": float(cost.weights), "accelerator": float(device != "cpu")}
    what = f"{cost.macs / 1e6:.2f}M multiply-adds an image, {cost.weights:,} weights"
    calibration = prior(device, threads)
    if calibration is None:
        return Finding(COST_CHECK, Status.PASS, f"the reference configuration: {what}; on {device}", figures)
    epoch = calibration.epoch_seconds(cost)
    figures |= {"epoch_seconds": epoch, "fixed_seconds": calibration.fixed_seconds,  # what a first trial needs
                "validation_seconds": calibration.validation_seconds(cost.val_images, cost.forward_work)}
    evidence = (f"the reference configuration: {what}; about {short_duration(epoch)} an epoch of {len(data.x_train):,} "
                f"images with {plural(threads, 'CPU thread')} (estimated; the search measures its own)")
    if epoch > SLOW_EPOCH_SECONDS:
        return Finding(COST_CHECK, Status.WARN, f"{evidence}: a search here holds few trials; consider "
                       f"training.max_train_samples, a smaller space, or a GPU", figures)
    return Finding(COST_CHECK, Status.PASS, evidence, figures)


def corners(space: Space, reference: dict[str, Any]) -> list[tuple[dict[str, Any], list[str]]]:
    """The largest configurations the space can propose, one per model family: every costly
    parameter at its largest value; with the names of those that are searched."""
    searched = space.searched()
    families = searched["model"].bounds() if "model" in searched else [reference["model"]]
    found = []
    for family in families:
        chosen = {**reference, "model": family}
        largest = {name: max(searched[name].bounds()) for name in COSTLY
                   if name in searched and space.is_active(name, chosen)}  # a parameter of this family
        found.append(({**chosen, **largest}, sorted(largest)))
    return found


def initialization(params: dict[str, Any], data: SearchData, seed: int) -> Finding:
    from tuner.training.probes import expected_initial_loss, initial_loss

    loss, expected = initial_loss(params, data, seed), expected_initial_loss(params, data.y_train, data.n_classes)
    if not math.isfinite(loss):
        return Finding("loss at initialization", Status.FAIL, f"the loss is {loss} before any step (expected "
                                                               f"{expected:.3f}): the model's output is not finite")
    off = abs(loss - expected) / expected
    what = "ln(classes)" if not params["prior_bias"] else "the class priors' cross-entropy"
    evidence = f"mean loss {loss:.3f} before any step; expected {expected:.3f} ({what}), off by {100 * off:.0f}%"
    status = Status.FAIL if off > INIT_FAIL else Status.WARN if off > INIT_WARN else Status.PASS
    if status is not Status.PASS:
        return Finding("loss at initialization", status,
                       evidence + ": the classifier starts far from its expected loss (its initialization or logit_scale)")
    priors = expected_initial_loss({**params, "prior_bias": True}, data.y_train, data.n_classes)
    if not params["prior_bias"] and (expected - priors) / expected > INIT_WARN:
        return Finding("loss at initialization", Status.WARN,
                       f"{evidence}; the classes are imbalanced: with prior_bias the model would start at {priors:.3f}")
    return Finding("loss at initialization", status, evidence)


def small_batch(params: dict[str, Any], batch: int) -> dict[str, Any]:
    """At most `batch` images a step, the learning rate scaled with it (the linear scaling rule),
    so that enough steps to compare fit in the time on a CPU."""
    if params["batch_size"] <= batch:
        return params
    return {**params, "batch_size": batch, "learning_rate": params["learning_rate"] * batch / params["batch_size"]}


def baseline(params: dict[str, Any], data: SearchData, seed: int, steps: int = BASELINE_STEPS) -> Finding:
    from tuner.training.probes import baseline_losses

    # At its peak from the first step: a schedule's warm-up over one epoch would spend the
    # baseline's steps at a fraction of the rate (a CPU takes 30 of a ResNet-9 in its time).
    params = {**small_batch(params, BASELINE_BATCH), "lr_schedule": "constant", "warmup_epochs": 0}
    run = baseline_losses(params, data, steps, seed, seconds=BASELINE_SECONDS)
    batch = min(params["batch_size"], len(data.x_train))  # a folder of 9 training images has batches of 9
    return judge_baseline(run.real, run.input_independent, run.taken, steps, batch, run.train_share)


def judge_baseline(real: float, independent: float, taken: int, asked: int, batch: int,
                   train_share: float = 0.8) -> Finding:
    """The baseline's verdict from its lowest validation loss in `taken` of `asked` steps on the
    images (the lowest: a small folder overfits within the steps, and its loss climbs after its
    best) against `independent`, the loss of a model that ignores its input. Only a loss that diverged fails: images that
    told the model nothing warn, with what the run shows of why. Shuffled labels look the same in
    100 steps as a real folder that this model needs longer for (CIFAR-10's 200 cats and 200
    dogs, seen), and refusing a real folder's search is the worse mistake. `train_share`, the
    training loss at its end over its start: one that did not fall below `MOVED` is a model that
    cannot learn as configured (or such labels); one below `FITTED` fitted its training images."""
    evidence = (f"lowest validation loss in {plural(taken, 'step')} of {batch} images: {real:.3f} on the "
                f"images, {independent:.3f} for a model that ignores them (the class shares)")
    if taken < BASELINE_MIN_STEPS:
        return Finding(BASELINE_CHECK, Status.WARN, f"{evidence}: only {taken} fit in {BASELINE_SECONDS:.0f} s, too "
                                                   f"few to judge")
    if not (math.isfinite(real) and math.isfinite(independent)):
        return Finding(BASELINE_CHECK, Status.FAIL, f"{evidence}: training diverged (the learning rate, or the "
                                                   f"initialization)")
    ratio = real / independent if independent > 0 else math.inf
    evidence += f" (ratio {ratio:.2f})"
    if ratio < BASELINE_WARN:
        return Finding(BASELINE_CHECK, Status.PASS if ratio < BASELINE_PASS else Status.WARN, evidence)
    return Finding(BASELINE_CHECK, Status.WARN, f"{evidence}: {_told_nothing(taken, asked, train_share)}")


def _told_nothing(taken: int, asked: int, train_share: float) -> str:
    """Why the images did no better than ignoring them, as far as the baseline's run shows."""
    if taken < asked:
        return f"only {taken} of {asked} steps fit in {BASELINE_SECONDS:.0f} s, too few to tell whether the images help"
    if train_share >= MOVED:
        return (f"the training loss did not fall either ({train_share:.0%} of its start): the model cannot learn as "
                f"configured (a zero initializer, saturated activations, a learning rate too small; 'overfit one "
                f"batch' tells), or the labels are unrelated to the images")
    if train_share < FITTED:
        return (f"its training loss fell to {train_share:.0%} of its start, so it fitted the training images but "
                f"learned nothing that carries to validation images: too few images for this model in "
                f"{plural(taken, 'step')}, or labels unrelated to the images")
    return (f"the images told the model nothing about the labels in {plural(taken, 'step')}: shuffled labels or a "
            f"wrong decode, or a task this model needs more steps for (trials train longer)")


NEARLY_FITTED = 0.9  # training accuracy on the batch at which a loss above FIT_LOSS is slow, not failed
FIT_LOSS = 0.1  # `overfit_batch`'s target loss


def one_batch(params: dict[str, Any], data: SearchData, seed: int) -> Finding:
    from tuner.training.probes import overfit_batch

    fit = overfit_batch(params, data, seed, target_loss=FIT_LOSS)
    if not math.isfinite(fit.loss):
        return Finding("overfit one batch", Status.FAIL, f"the loss of {fit.images} training images was {fit.loss} after "
                                                          f"{plural(fit.steps, 'step')}: training diverged (the learning rate?)")
    evidence = (f"{fit.images} training images, augmentation and regularization off: {100 * fit.accuracy:.0f}% "
                f"training accuracy after {plural(fit.steps, 'step')} (loss {fit.loss:.3f})")
    if not fit.fitted and fit.accuracy >= NEARLY_FITTED:  # it learns them; the loss has not reached the target yet
        return Finding("overfit one batch", Status.WARN, evidence + f": it fits them slowly (the loss is still above "
                                                                     f"{FIT_LOSS}): a learning rate or a model on the small side?")
    if not fit.fitted:
        return Finding("overfit one batch", Status.FAIL, evidence + ": the model cannot fit a handful of images "
                                                                     "(learning rate, labels, input scaling?)")
    return Finding("overfit one batch", Status.PASS, evidence)


def largest(space: Space, reference: dict[str, Any], data: SearchData, seed: int, memory_limit: int) -> list[Finding]:
    from tuner.training.probes import step_cost

    found = []
    for params, costly in corners(space, reference):
        shape = ", ".join(f"{name} {params[name]}" for name in ("model", *COSTLY))
        name = f"largest {params['model']}"
        try:
            cost = step_cost(params, data, seed, memory_limit)
        except Exception as e:  # a shape that cannot build, out of memory: the corner's own fault
            found.append(Finding(name, Status.FAIL, f"{shape}: does not build or run ({first_line(e, 160)}); narrow "
                                                    f"{', '.join(costly) or 'the space'}"))
            continue
        evidence = f"{shape}: {cost.parameters:,} parameters, one step needs about {_mib(cost.estimated_bytes)}"
        if cost.step_seconds is None:
            found.append(Finding(name, Status.FAIL, f"{evidence}, over the memory limit of {_mib(memory_limit)}; "
                                                    f"narrow {', '.join(costly) or 'the space'}"))
            continue
        found.append(Finding(name, Status.PASS, f"{evidence}; its first step ran in {cost.step_seconds:.1f} s "
                                                 f"(compile included), peak memory +{_mib(cost.peak_rise_bytes or 0)}"))
    return found


def _mib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def learning_rates(space: Space, params: dict[str, Any], data: SearchData, seed: int) -> Finding:
    """The range test (Smith 2017): the loss over a geometric sweep of learning rates; a range is
    suggested from where it falls fastest to below where it is lowest, and a space whose rates
    all lie outside it is warned about."""
    from tuner.training.probes import learning_rate_sweep

    spec = space.searched().get("learning_rate")
    low, high = (spec.low, spec.high) if spec is not None else (params["learning_rate"],) * 2
    start, end = max(min(low / SWEEP_WIDEN, 1e-5), 1e-9), min(max(high * SWEEP_WIDEN, 1.0), 10.0)  # wide of the usual range
    rates, losses = learning_rate_sweep(params, data, seed, start, end, SWEEP_STEPS, SWEEP_SECONDS)
    finite = np.isfinite(losses)
    rates, losses = rates[finite], losses[finite]
    if not len(losses):
        return Finding("learning-rate range", Status.WARN, f"the loss was not finite at {start:.1e}, the lowest rate tried")
    swept = f"{len(rates)} steps from {rates[0]:.1e} to {rates[-1]:.1e}"
    found = suggested_range(rates, losses)
    if found is None:
        return Finding("learning-rate range", Status.WARN, f"the loss fell at no rate tried ({swept}): no range "
                                                           f"to suggest (a slow model may need more steps than fit)")
    steepest, lowest, bottom, top = found
    evidence = (f"the loss fell fastest at {steepest:.1e} and was lowest at {lowest:.1e} ({swept}); "
                f"suggested {bottom:.1e} to {top:.1e}; the space's learning rates: {low:.1e} to {high:.1e}")
    if high < bottom or low > top:
        return Finding("learning-rate range", Status.WARN, evidence + ": outside the suggested range")
    return Finding("learning-rate range", Status.PASS, evidence)


def suggested_range(rates: np.ndarray, losses: np.ndarray) -> tuple[float, float, float, float] | None:
    """From a sweep's finite losses: the rates where the smoothed loss fell fastest and where it
    was lowest, and the range suggested (a tenth of the first, at most a thirtieth of the top,
    to a third of the second); None when it fell at no rate: its lowest lies in the average's
    start-up (the first `SWEEP_SKIP` steps) or not `SWEEP_FALL` below where it began, or the
    range would be empty."""
    smooth = smoothed(losses)
    lowest = int(np.argmin(smooth))
    if lowest <= SWEEP_SKIP or smooth[0] - smooth[lowest] < SWEEP_FALL * abs(smooth[0]):
        return None
    steepest = SWEEP_SKIP + int(np.argmin(np.diff(smooth[SWEEP_SKIP:lowest + 1])))
    top = rates[lowest] / 3
    bottom = max(min(rates[steepest] / 10, top / 30), rates[0])
    if bottom >= top:
        return None
    return float(rates[steepest]), float(rates[lowest]), float(bottom), float(top)


def smoothed(losses: np.ndarray, beta: float = 0.9) -> np.ndarray:
    """An exponential moving average with its start-up bias corrected (as fastai's lr_find)."""
    out, average = np.empty(len(losses)), 0.0
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        out[i] = average / (1 - beta ** (i + 1))
    return out
