"""The study's note in optuna-dashboard: every test evaluation in Markdown, the latest whole
(each model's accuracy, balanced accuracy and loss, per class with image counts, the confusion
matrix, the members), so the dashboard shows what the 1,024-character cut of the study's
attribute hides. Written with optuna-dashboard's own `save_note` each time an evaluation is
recorded."""

from __future__ import annotations

from typing import Any

from tuner.store.records import Evaluation

_MODELS = {"best": "best trial", "ensemble": "ensemble of search models", "refit": "ensemble refit on train + validation"}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def evaluation_markdown(record: Evaluation) -> list[str]:
    """One evaluation, whole."""
    sel, test = record.selection, record.test
    lines = [f"### Test evaluation of {record.when}", "",
             f"{record.n_test} test images, after {record.n_finished} finished trials; reads of the test split "
             f"so far: {record.test_reads or '-'}. model.keras is the {_MODELS[record.final]}.", ""]
    lines += _table(["model", "test accuracy", "test balanced accuracy", "test loss"],
                    [[_MODELS[k], _pct(v["accuracy"]), _pct(v.get("balanced_accuracy")), f"{v['loss']:.4f}"]
                     for k, v in test.items()])
    members = ", ".join(f"trial {n} ({w:.3f})" for n, w in sorted(sel.members.items(), key=lambda kv: -kv[1]))
    lines += ["", f"Members (weights), chosen by greedy selection on validation {sel.metric}: {members}. "
                  f"Best trial: {sel.best_trial} (validation accuracy {_pct(sel.best_val_accuracy)}).", ""]
    final = test[record.final]
    names = record.class_names or list(final.get("per_class_accuracy", {}))
    counts = final.get("per_class_count", {})
    lines += _table(["class", "test images", *(f"{_MODELS[k]} accuracy" for k in test)],
                    [[n, counts.get(n, "-"), *(_pct(v.get("per_class_accuracy", {}).get(n)) for v in test.values())]
                     for n in names])
    if "confusion" in final:
        lines += ["", "Confusion matrix of model.keras on the test split (rows: true class, columns: predicted):", ""]
        lines += _table(["true \\ predicted", *names], [[n, *row] for n, row in zip(names, final["confusion"])])
    return lines


def study_note(records: list[Evaluation]) -> str:
    """The latest evaluation whole, then one line for each earlier one."""
    if not records:
        return ""
    lines = ["## tune: evaluations on the held-out test split", "", *evaluation_markdown(records[-1])]
    if len(records) > 1:
        lines += ["", "### Earlier evaluations", ""]
        lines += [f"- {r.when}: after {r.n_finished} trials, members {sorted(r.selection.members)}, model.keras "
                  f"test accuracy {_pct(r.test[r.final]['accuracy'])}" for r in records[:-1]]
    return "\n".join(lines) + "\n"
