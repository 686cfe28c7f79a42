"""Leaderboard rows from the store alone, for the live view, `tune leaderboard` and `--json`."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tuner.data import imbalance
from tuner.space.objective import DEFAULT, OBJECTIVES, Objective, objective_of
from tuner.space.params import used
from tuner.store import SearchStore, TrialRecord, TrialState
from tuner.store.trials import best_of, counts_of

SHOW_BALANCED = 1.5  # a largest-to-smallest class ratio over this shows balanced accuracy beside accuracy

# Short labels for the parameters worth a glance, in display order.
_LABELS = {"model": "", "depth": "d", "width": "w", "head_units": "head", "activation": "", "kernel_initializer": "init",
           "pooling": "pool", "optimizer": "", "learning_rate": "lr", "lr_schedule": "", "batch_size": "bs",
           "dropout": "drop", "l1": "l1", "l2": "l2", "max_norm": "maxnorm", "weight_decay": "wd",
           "momentum": "mom", "batch_norm": "bn", "label_smoothing": "ls", "augment": "aug", "flip": "flip",
           "rotation": "rot", "zoom": "zoom", "cutout": "cutout", "tta_flip": "tta", "warmup_epochs": "warm",
           "class_weight": "cw", "prior_bias": "prior"}


def describe_params(params: dict[str, Any], searched: list[str] | None = None) -> str:
    """'cnn d2 w32 adam lr 1.2e-03 ...': the searched parameters, compactly; the model family
    always (a family fixed with --set model=mlp reads "mlp", not as a CNN's depth and width)."""
    parts = []
    for name, label in _LABELS.items():
        if name not in params or (searched is not None and name not in searched and name != "model"):
            continue
        if not used(name, params):  # momentum under adam: not what the trial trained with
            continue
        value = params[name]
        if isinstance(value, bool):
            text = label if value else f"no-{label}"
        elif isinstance(value, float):
            text = f"{label} {value:.1e}" if value and (abs(value) < 1e-2) else f"{label} {value:.2g}"
        else:
            text = f"{label}{value}" if label in ("d", "w") else f"{label} {value}".strip()
        parts.append(text)
    return " ".join(parts)


@dataclass(frozen=True)
class Row:
    rank: int | None
    trial: int
    state: TrialState
    value: float | None  # the objective's figure (what the rank is by)
    val_accuracy: float | None
    val_balanced_accuracy: float | None
    val_loss: float | None
    epochs: int
    seconds: float | None
    params: dict[str, Any] = field(repr=False)
    summary: str = ""
    reason: str | None = None
    never_predicted: list[str] = field(default_factory=list)  # classes it predicts for no validation image
    val_class_accuracy: list[float | None] | None = None  # per class, in the model's output order


@dataclass(frozen=True)
class Board:
    study: str
    meta: dict[str, Any]
    counts: dict[str, int]  # by TrialState value
    rows: list[Row]  # best completed trials, best first
    failures: list[Row]  # most recent failed trials, with reasons
    mean_seconds: float | None  # mean duration of finished trials, for ETAs
    times: "TrialTimes | None" = None  # medians over complete trials
    objective: Objective = OBJECTIVES[DEFAULT]
    show_balanced: bool = False  # balanced accuracy beside accuracy: the objective, or imbalanced classes
    running_ended: int = 0  # running trials whose process on this machine has ended
    ranked: int = 0  # trials that rank (`rows` holds the best of them)

    def to_json(self) -> dict[str, Any]:
        meta = {k: v for k, v in self.meta.items() if k not in ("space",)}
        from tuner.data.summary import data_warnings

        return {"study": self.study, "meta": meta, "counts": self.counts, "running_ended": self.running_ended,
                "objective": self.objective.name, "ranked": self.ranked,
                "data_warnings": data_warnings(self.meta.get("split") or {}, self.meta.get("space") or {}),
                "leaderboard": [asdict(r) for r in self.rows], "failures": [asdict(r) for r in self.failures],
                "median_trial_times": asdict(self.times) if self.times else None}


@dataclass(frozen=True)
class TrialTimes:
    """Where a complete trial's wall time went, in seconds. Training is its epochs at the
    steady epoch time; compile is the first epoch's excess over it; validation is the
    predictions; other is the rest (building, saving, the sampler, releasing memory)."""

    wall: float
    training: float
    compile: float
    validation: float
    other: float
    trials: int = 1  # how many trials a median was taken over
    # False where no trial had a second epoch: one epoch has no steady time to tell its compile
    # from its training, so training holds both and compile reads 0.
    compile_told: bool = True

    @property
    def outside(self) -> float:
        """Everything but steady training: the fixed cost of a trial."""
        return self.wall - self.training


def trial_times(t: TrialRecord) -> TrialTimes | None:
    if t.state is not TrialState.COMPLETE or not t.timings or not t.seconds:
        return None
    training = t.epochs * t.timings["epoch_seconds"]
    compile_ = max(t.timings["first_epoch_seconds"] - t.timings["epoch_seconds"], 0.0)
    validation = t.timings.get("predict_seconds", 0.0)
    return TrialTimes(t.seconds, training, compile_, validation, max(t.seconds - training - compile_ - validation, 0.0),
                      compile_told=t.epochs >= 2)


def median_times(trials: list[TrialRecord]) -> TrialTimes | None:
    times = [x for x in map(trial_times, trials) if x is not None]
    if not times:
        return None
    medians = {f.name: statistics.median(getattr(x, f.name) for x in times) for f in fields(TrialTimes)
               if f.name not in ("trials", "compile_told")}
    return TrialTimes(**medians, trials=len(times), compile_told=any(x.compile_told for x in times))


def _row(rank: int | None, t: TrialRecord, searched: list[str] | None, class_names: list[str]) -> Row:
    never = [class_names[c] if c < len(class_names) else str(c) for c in t.never_predicted()]
    return Row(rank, t.number, t.state, t.value, t.val_accuracy, t.val_balanced_accuracy, t.val_loss, t.epochs,
               t.seconds, t.params, describe_params(t.params, searched), t.reason, never, t.val_class_accuracy)


FIGURES = ("trial", "state", "value", "val_accuracy", "val_balanced_accuracy", "val_loss", "epochs", "best_epoch",
           "max_epochs", "seconds", "seed", "reason")


def trial_rows(store: SearchStore, study: str) -> tuple[list[str], list[list[Any]]]:
    """Every trial of a study, oldest first: its figures, then one column per parameter (the
    vocabulary's order; blank where a trial has none: an inactive conditional, a failed start)."""
    from tuner.space.params import PARAMETERS

    trials, active = store.trials.all(study), activity(store.studies.meta(study).get("space"))
    names = [n for n in PARAMETERS if any(n in t.params for t in trials)]
    names += sorted({n for t in trials for n in t.params} - set(names))

    def figures(t: TrialRecord) -> list[Any]:
        return [t.number, t.state.value, t.value, t.val_accuracy, t.val_balanced_accuracy, t.val_loss, t.epochs,
                t.best_epoch, t.max_epochs, t.seconds, t.seed, t.reason]

    return [*FIGURES, *names], [figures(t) + [t.params.get(n) if active(n, t.params) else None for n in names]
                                for t in trials]


def activity(space: dict[str, Any] | None) -> Any:
    """Whether a parameter applies to a trial: one the training reads under its other values
    (momentum under sgd only), and a conditional one only when its `when` holds. An inactive one's
    default is not shown, as if it were a value the trial used."""
    from tuner.space.schema import parse_space

    try:
        parsed = parse_space(space, "the study's space")
    except Exception:  # a study recorded without its space: the vocabulary alone
        return used
    return lambda name, params: used(name, params) and (name not in parsed.params or parsed.is_active(name, params))


def shows_balanced(meta: dict[str, Any]) -> bool:
    """Whether balanced accuracy is shown beside accuracy: the study's objective, or its classes
    are imbalanced."""
    counts = (meta.get("split") or {}).get("class_counts", {}).get("train", [])
    return objective_of(meta.get("space")).name == "balanced_accuracy" or imbalance(counts) > SHOW_BALANCED


_LINE_COMES = (TrialState.COMPLETE, TrialState.PRUNED)  # a trial that ends so is said by its worker


def build_board(store: SearchStore, study: str, top: int = 10, failures: int = 5,
                unsaid: frozenset[int] = frozenset()) -> Board:
    """The study's board; `unsaid`: trials left out of its counts once complete or pruned (a plain
    log's trials whose result line has not come yet, so that a count does not run ahead of the
    lines it counts; a failed one is counted at once: a worker that died never says its line)."""
    meta = store.studies.meta(study)
    trials = store.trials.all(study)
    searched = [k for k, v in meta.get("space", {}).get("params", {}).items() if isinstance(v, dict)] or None
    split, objective = meta.get("split") or {}, objective_of(meta.get("space"))
    names = split.get("class_names") or []
    counts = counts_of([t for t in trials if not (t.number in unsaid and t.state in _LINE_COMES)])
    best = best_of(trials, top, objective)
    failed = sorted((t for t in trials if t.state is TrialState.FAILED), key=lambda t: -t.number)[:failures]
    durations = [t.seconds for t in trials if t.finished and t.seconds]
    balanced = shows_balanced(meta)
    return Board(study, meta, counts, [_row(i + 1, t, searched, names) for i, t in enumerate(best)],
                 [_row(None, t, searched, names) for t in failed], sum(durations) / len(durations) if durations else None,
                 median_times(trials), objective, balanced, sum(t.process_ended for t in trials),
                 sum(t.ranks for t in trials))
