"""The report's figures, drawn with matplotlib from trial records (and, for the image grids,
from arrays the caller loads): each function returns a Figure, or None when there is nothing
to draw. No figure reads the test split: the test figures come from the recorded evaluation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tuner.space.objective import Objective
from tuner.store import Evaluation, TrialRecord, TrialState


def _short(name: str, length: int = 24) -> str:
    """A class name as a tick label: long ones cut, so the axes keep their room."""
    return name if len(name) <= length else name[:length - 1] + "…"


def _figure(width: float = 8.0, height: float = 4.0, layout: str | None = "constrained") -> Any:
    """A figure; grids of many panels pass layout=None and space their panels themselves: the
    constrained layout measured every tick label of 14 slice panels (1.5 s of a 10 s report)."""
    from matplotlib.figure import Figure  # the object API: no pyplot state, no display needed

    return Figure(figsize=(width, height), dpi=100, layout=layout)


def _whole_numbers(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def history(trials: list[TrialRecord], objective: Objective) -> Any:
    """Each trial's value in trial order, the best so far, pruned and failed trials marked."""
    ranked = [t for t in trials if t.value is not None and t.state is not TrialState.FAILED]
    if not ranked:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    for state, marker, label in ((TrialState.COMPLETE, "o", "complete"), (TrialState.PRUNED, "x", "pruned")):
        if shown := [t for t in ranked if t.state is state]:  # a legend entry only for what is drawn
            ax.scatter([t.number for t in shown], [t.value for t in shown], marker=marker, label=label, s=24)
    best, line = None, []
    for t in sorted((t for t in ranked if t.ranks), key=lambda t: t.number):
        best = t.value if best is None or objective.rank_key(t.value) < objective.rank_key(best) else best
        line.append((t.number, best))
    if line:
        ax.step(*zip(*line), where="post", color="black", linewidth=1, label="best so far")
    failed = [t.number for t in trials if t.state is TrialState.FAILED]
    if failed:
        low = min(t.value for t in ranked)
        ax.scatter(failed, [low] * len(failed), marker="v", color="red", label="failed", s=24)
    ax.set(xlabel="trial", ylabel=objective.metric, title="optimization history")
    _whole_numbers(ax)
    ax.legend(loc="best", fontsize="small")
    return fig


def intermediate(trials: list[TrialRecord], objective: Objective) -> Any:
    """The objective per epoch of every trial; where a pruned trial stopped, an x."""
    curves = [(t, t.history.get(objective.metric) or []) for t in trials]
    curves = [(t, c) for t, c in curves if c]
    if not curves:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    for t, values in curves:
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, values, linewidth=0.8, alpha=0.6, color="tab:red" if t.state is TrialState.PRUNED else "tab:blue",
                marker="." if len(values) == 1 else None)  # a one-epoch trial is a point
        if t.state is TrialState.PRUNED:
            ax.scatter([len(values)], [values[-1]], marker="x", color="tab:red", s=20)
    ax.set(xlabel="epoch", ylabel=objective.metric, title="per-epoch values (red: pruned or cut short, x where it stopped)")
    _whole_numbers(ax)
    return fig


def importances(values: dict[str, float]) -> Any:
    if not values:
        return None
    fig = _figure(8.0, 0.5 + 0.35 * len(values))
    ax = fig.add_subplot()
    names = list(values)[::-1]
    ax.barh(names, [values[n] for n in names])
    ax.set(xlabel="importance (Optuna's PED-ANOVA evaluator)", title="hyperparameter importances")
    return fig


def slices(trials: list[TrialRecord], params: dict[str, Any], objective: Objective) -> Any:
    """The objective against each searched parameter, one panel each."""
    done = [t for t in trials if t.ranks]
    names = [n for n in params if any(n in t.params for t in done)]
    if not done or not names:
        return None
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    fig = _figure(4.0 * columns, 3.0 * rows, layout=None)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.6 / (3.0 * rows), top=1 - 0.4 / (3.0 * rows), wspace=0.3,
                        hspace=0.55)
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, columns, i + 1)
        shown = [t for t in done if name in t.params and _active(params[name], t.params)]  # momentum: sgd's trials only
        xs, ys = [t.params[name] for t in shown], [t.value for t in shown]
        labels = sorted({str(x) for x in xs}) if any(isinstance(x, (str, bool)) for x in xs) else None
        ax.scatter([labels.index(str(x)) for x in xs] if labels else xs, ys, s=16, c=[t.number for t in shown],
                   cmap="viridis")
        if labels:
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize="small")
        elif params[name].get("log"):
            from matplotlib.ticker import LogFormatterSciNotation, NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(LogFormatterSciNotation())
            ax.xaxis.set_minor_formatter(NullFormatter())  # 2x10^1 3x10^1 ... ran into each other
        elif params[name].get("type") == "int":
            _whole_numbers(ax)
        ax.set(title=name, ylabel=objective.metric if i % columns == 0 else None)
    return fig


def _active(spec: dict[str, Any], params: dict[str, Any]) -> bool:
    """Whether a searched parameter applied to a trial (its `when`, if any, holds)."""
    when = spec.get("when") or {}
    return all(params.get(k) in (v if isinstance(v, list) else [v]) for k, v in when.items())


def curves(trials: list[TrialRecord], title: str) -> Any:
    """Loss and accuracy, train and validation, per epoch: one row per trial, as the course's
    notebooks plot after every fit."""
    shown = [t for t in trials if t.history.get("loss")]
    if not shown:
        return None
    fig = _figure(10.0, 2.6 * len(shown))
    for row, t in enumerate(shown):
        for col, (train, val, label) in enumerate((("loss", "val_loss", "loss"), ("accuracy", "val_accuracy", "accuracy"))):
            ax = fig.add_subplot(len(shown), 2, 2 * row + col + 1)
            epochs = np.arange(1, len(t.history[train]) + 1)
            point = "o" if len(epochs) == 1 else None  # a one-epoch trial is a point
            ax.plot(epochs, t.history[train], label="train", marker=point)
            ax.plot(epochs[:len(t.history.get(val, []))], t.history.get(val, []), label="validation", marker=point)
            if t.best_epoch is not None:
                ax.axvline(t.best_epoch + 1, color="grey", linestyle=":", linewidth=1)
            ax.set(title=f"trial {t.number}: {label}", xlabel="epoch")
            _whole_numbers(ax)
            ax.legend(fontsize="x-small")
    fig.suptitle(title)
    return fig


def times(rows: list[tuple[int, dict[str, float]]]) -> Any:
    """Where each complete trial's time went: stacked seconds per part."""
    if not rows:
        return None
    fig = _figure(8.0, 4.0)
    ax = fig.add_subplot()
    bottom = np.zeros(len(rows))
    numbers = [r[0] for r in rows]  # at their numbers, not a label each: 200 trials read (and draw) as fast as 5
    told = all(r[1].get("compile_told", True) for r in rows)
    for part in ("training", "compile", "validation", "other"):
        values = np.array([r[1][part] for r in rows])
        label = part if told or part != "training" else "training (its compile too, in trials of one epoch)"
        ax.bar(numbers, values, bottom=bottom, label=label, width=0.8)
        bottom += values
    ax.set(xlabel="trial", ylabel="seconds", title="where each complete trial's time went")
    _whole_numbers(ax)
    ax.legend(fontsize="small")
    return fig


def confusion(record: Evaluation) -> Any:
    final = record.test[record.final]
    if "confusion" not in final:
        return None
    matrix = np.array(final["confusion"])
    names = [_short(n) for n in record.class_names or [str(i) for i in range(len(matrix))]]
    size = 2.5 + 0.45 * len(names)
    fig = _figure(size + 1.5, size)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize="small")
    ax.set_yticks(range(len(names)), names, fontsize="small")
    if len(names) <= 20:
        for (i, j), n in np.ndenumerate(matrix):
            ax.text(j, i, str(n), ha="center", va="center", fontsize="x-small",
                    color="white" if n > matrix.max() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true", title="test confusion matrix of model.keras (recorded)")
    return fig


def image_grid(images: np.ndarray, captions: list[str], title: str, columns: int = 8) -> Any:
    """Images (0-255) with a caption each."""
    if len(images) == 0:
        return None
    rows = math.ceil(len(images) / columns)
    fig = _figure(1.4 * columns, 1.6 * rows + 0.4)
    for i, (image, caption) in enumerate(zip(images, captions)):
        ax = fig.add_subplot(rows, columns, i + 1)
        grey = image.shape[-1] == 1
        ax.imshow(image[..., 0] if grey else image.astype(np.uint8), cmap="gray" if grey else None, vmin=0, vmax=255)
        ax.set_title(_short(caption, 32), fontsize=6)
        ax.axis("off")
    fig.suptitle(title)
    return fig
