"""The tables `tune` prints: the leaderboard, recent failures, a test-set evaluation, a trial's
parameters, the studies of a storage, the built-in spaces."""

from __future__ import annotations

from typing import Any, Callable

from rich.table import Table
from rich.text import Text

from tuner.space.objective import Objective, objective_of
from tuner.wording import duration, plural, printable
from tuner.store import Evaluation, StudyInfo, TrialState
from tuner.ui.board import Board, Row


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def figure(objective: Objective, value: float | None) -> str:
    """A trial's value as its objective reads: a percentage, or a loss."""
    if value is None:
        return "-"
    return f"{value:.4f}" if not objective.maximize else pct(value)


def scored(objective: Objective, value: float | None) -> str:
    """'val acc 98.61%', 'val bal acc 91.20%', 'val loss 0.0412'."""
    return f"{objective.label} {figure(objective, value)}"


def _times_line(board: Board) -> str | None:
    t = board.times
    if t is None:
        return None
    compiled = (f"compile {t.compile:.1f} s" if t.compile_told else
                "its compile included (trials of one epoch cannot tell them apart)")
    return (f"per trial, medians of {t.trials} complete: {t.wall:.1f} s in all; training {t.training:.1f} s, "
            f"{compiled}, validation {t.validation:.1f} s, other {t.other:.1f} s (build, save, sampler)")


def board_table(board: Board) -> Table:
    c = board.counts
    title = (f"{board.study}: {c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed"
             + (f", {c['running']} running" if c["running"] else "")
             + (f" ({board.running_ended} of them in a process that has ended; the next search marks them failed)"
                if board.running_ended else ""))
    if board.objective.name != "accuracy":
        title += f"; ranked by {board.objective.label}"
    table = Table(title=title, title_justify="left", expand=False, caption=_times_line(board),
                  caption_justify="left")
    columns = ["#", "trial", "val acc", *["val bal acc"] * board.show_balanced, "val loss", "epochs", "time", "parameters"]
    for name in columns:
        table.add_column(name, justify="left" if name == "parameters" else "right", no_wrap=name != "parameters")
    for r in board.rows:
        balanced = [pct(r.val_balanced_accuracy)] * board.show_balanced
        warning = f"never predicts {', '.join(r.never_predicted)}; " if r.never_predicted else ""
        if r.state in (TrialState.PRUNED, TrialState.COMPLETE) and r.reason:
            warning = f"{r.reason}; {warning}"
        table.add_row(str(r.rank), str(r.trial), pct(r.val_accuracy), *balanced,
                      "-" if r.val_loss is None else f"{r.val_loss:.4f}", str(r.epochs), duration(r.seconds),
                      warning + r.summary)
    return table

def failures_table(board: Board) -> Table | None:
    if not board.failures:
        return None
    table = Table(title="recent failed trials", title_justify="left")
    table.add_column("trial", justify="right")
    table.add_column("reason")
    for r in board.failures:
        table.add_row(str(r.trial), r.reason or "unknown")
    return table


def evaluation_tables(record: Evaluation, balanced: bool = False) -> list[Table]:
    """The recorded test evaluation: best trial and ensemble side by side, then the members;
    with `balanced`, balanced accuracy beside accuracy (where the record has it)."""
    sel, test = record.selection, record.test
    balanced = balanced and "balanced_accuracy" in test["ensemble"]
    table = Table(title=f"held-out test set: {plural(record.n_test, 'image')}", title_justify="left")
    for name in ("model", "val acc", *["val bal acc"] * balanced, "val loss", "test acc", *["test bal acc"] * balanced,
                 "test loss"):
        table.add_column(name, justify="left" if name == "model" else "right")

    def row(label: str, val: tuple[float | None, float | None, float | None], scores: dict[str, Any]) -> None:
        acc, bal, loss = val
        table.add_row(label, pct(acc), *[pct(bal)] * balanced, "-" if loss is None else f"{loss:.4f}",
                      pct(scores["accuracy"]), *[pct(scores.get("balanced_accuracy"))] * balanced, f"{scores['loss']:.4f}")

    row(f"best trial ({sel.best_trial})", (sel.best_val_accuracy, sel.best_val_balanced_accuracy, sel.best_val_loss),
        test["best"])
    row(f"ensemble ({plural(len(sel.members), 'member')})", (sel.val_accuracy, sel.val_balanced_accuracy, sel.val_loss),
        test["ensemble"])
    caption = f"ensemble gain over the best trial on test: {100 * record.gain:+.2f} points"
    if "refit" in test:  # validation trained these models: no validation figure
        refit = record.refit or {}
        row(f"ensemble refit on train+val ({len(refit['models'])} refit)", (None, None, None), test["refit"])
        caption += (f"\nrefit gain over the ensemble on test: {100 * (record.refit_gain or 0.0):+.2f} points "
                    f"({refit['n_images']} images, {sum(refit['seconds'].values()):.0f} s of training)")
        caption += "".join(f"\nrefit of trial {n} not used: {why}" for n, why in refit["failed"].items())
    reads = f"; reads of the study's test split so far: {record.test_reads}" if record.test_reads else ""
    table.caption = (f"{caption}\nmembers chosen by greedy selection on validation {sel.metric}; "
                     f"evaluated {record.when}{reads}")
    table.caption_justify = "left"
    members = Table(title="ensemble weights", title_justify="left")
    members.add_column("trial", justify="right")
    members.add_column("weight", justify="right")
    members.add_column("temperature", justify="right")  # its logits / T: calibrated on validation data
    members.add_column("mirrored too", justify="right")
    for n, w in sorted(sel.members.items(), key=lambda kv: -kv[1]):
        flipped = {True: "yes", False: "no"}.get(sel.flips.get(n), "as trained")
        members.add_row(str(n), f"{w:.3f}", f"{sel.temperatures.get(n, 1.0):.2f}", flipped)
    return [table, members]


def evaluations_table(records: list[Evaluation], test_reads: int) -> Table:
    """Every evaluation of a study, oldest first, and how often its test split was read."""
    table = Table(title=f"evaluations on the test split: {plural(len(records), 'evaluation')}, "
                        f"the split read {plural(test_reads, 'time')}", title_justify="left")
    for name in ("when", "after trials", "members", "model.keras test acc", "read"):
        table.add_column(name, justify="left" if name in ("when", "members") else "right")
    for r in records:
        members = ", ".join(str(n) for n in sorted(r.selection.members))
        table.add_row(r.when, str(r.n_finished), members, pct(r.test[r.final]["accuracy"]),
                      "-" if r.test_reads is None else str(r.test_reads))
    return table


def predictions_table(predictions: list[Any]) -> Table:
    """`tune predict`: each file with its most probable classes."""
    table = Table(title=f"{plural(len(predictions), 'image')}", title_justify="left")
    table.add_column("file", overflow="fold")
    ranks = max(len(p.top) for p in predictions)
    for rank in range(ranks):
        table.add_column("class" if ranks == 1 else f"#{rank + 1}")
        table.add_column("probability", justify="right")
    for p in predictions:
        # Text, not markup: a file or class named "[/]" is a name, not a style (rich refused it)
        table.add_row(Text(printable(p.file)), *[cell for c, q in p.top for cell in (Text(printable(c)), f"{100 * q:.2f}%")])
    return table


MAX_CLASS_ROWS = 30  # a data table lists this many classes, then says how many more


def data_line(split: dict[str, Any]) -> str:
    """'data: SOURCE (3 classes, input 8x8x1): 88 train, 39 validation, 43 test images'."""
    classes = len(split.get("class_names") or [])
    shape = "x".join(map(str, split.get("input_shape") or [])) or "?"
    return (f"data: {split.get('source', '?')} ({plural(classes, 'class', 'classes')}, input {shape}): "
            f"{split.get('n_train', 0):,} train, {split.get('n_val', 0):,} validation, {split.get('n_test', 0):,} test images")


def data_table(split: dict[str, Any]) -> Table | None:
    """Images per class and split."""
    from tuner.data.summary import class_rows

    rows = class_rows(split)
    if not rows:
        return None
    table = Table()
    for name in ("class", "train", "validation", "test"):
        table.add_column(name, justify="left" if name == "class" else "right")
    for name, *counts in rows[:MAX_CLASS_ROWS]:
        table.add_row(name, *("-" if c is None else f"{c:,}" for c in counts))
    if len(rows) > MAX_CLASS_ROWS:
        table.caption, table.caption_justify = f"and {plural(len(rows) - MAX_CLASS_ROWS, 'more class', 'more classes')}", "left"
    return table


MAX_CONFUSION_CLASSES = 20  # wider than a terminal past this: the JSON and metrics.json hold it


def class_tables(record: Evaluation | None, row: Row, split: dict[str, Any]) -> list[Table]:
    """`tune best`: per class, its images and accuracy on validation (the best trial) and test
    (the best trial and the exported model), then the exported model's test confusion matrix."""
    names = split.get("class_names") or (record.class_names if record else None) or []
    counts = split.get("class_counts", {})
    if not names:
        return []
    test = record.test if record is not None else {}
    final = test.get(record.final, {}) if record is not None else {}
    table = Table(title="per class: images and accuracy", title_justify="left")
    for name in ("class", "val images", f"val acc (trial {row.trial})", "test images", "test acc (best trial)",
                 "test acc (model.keras)"):
        table.add_column(name, justify="left" if name == "class" else "right")
    val_acc = row.val_class_accuracy or []
    for c, name in enumerate(names):
        table.add_row(name, _count(counts.get("val"), c), pct(val_acc[c] if c < len(val_acc) else None),
                      _count(counts.get("test"), c), pct(test.get("best", {}).get("per_class_accuracy", {}).get(name)),
                      pct(final.get("per_class_accuracy", {}).get(name)))
    tables = [table]
    if "confusion" in final and len(names) <= MAX_CONFUSION_CLASSES:
        tables.append(_confusion_table(final["confusion"], names))
    return tables


def _count(counts: list[int] | None, c: int) -> str:
    return str(counts[c]) if counts and c < len(counts) else "-"


def _confusion_table(confusion: list[list[int]], names: list[str]) -> Table:
    table = Table(title="test confusion matrix of model.keras (rows: true class, columns: predicted)",
                  title_justify="left")
    table.add_column("true \\ predicted")
    for name in names:
        table.add_column(name, justify="right")
    for name, counts in zip(names, confusion):
        table.add_row(name, *map(str, counts))
    return table


def params_table(row: Row, objective: Objective, applies: Callable[[str, dict], bool]) -> Table:
    """One trial's parameters that apply to it (`applies(name, params)`: momentum under sgd only, a
    conditional one only when its `when` holds; `unused_note` names the others), and what its training was when not
    what the parameters ask (a deadline's fewer epochs, a first result's subset of an epoch)."""
    unused = _unused(row, applies)
    table = Table(title=f"best trial {row.trial}: {scored(objective, row.value)}", title_justify="left",
                  caption=f"trained {plural(row.epochs, 'epoch')}; {row.reason}" if row.reason else None,
                  caption_justify="left")
    table.add_column("parameter")
    table.add_column("value")
    for key, value in row.params.items():
        if key not in unused:
            # Six significant digits: a sampled float read 0.30000000000000004 (--json and the
            # export's config.yaml keep it exact).
            table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    return table


def unused_note(row: Row, applies: Callable[[str, dict], bool]) -> str | None:
    """The line under `params_table` that names the parameters it left out, if any."""
    unused = _unused(row, applies)
    if not unused:
        return None
    return f"not used by best trial {row.trial}, so not shown: {', '.join(unused)}"


def _unused(row: Row, applies: Callable[[str, dict], bool]) -> list[str]:
    return [key for key in row.params if not applies(key, row.params)]


def studies_table(studies: list[StudyInfo], where: str) -> Table:
    """`tune studies`: each study's dataset, engine, trial counts and best value (its objective's)."""
    table = Table(title=f"studies in {where}", title_justify="left")
    counts = ("complete", "pruned", "failed")
    for name in ("study", "dataset", "engine", *counts, "best", "created"):
        table.add_column(name, justify="right" if name in (*counts, "best") else "left")
    for s in studies:
        engine = f"{s.meta.get('engine', '?')}/{s.meta.get('sampler', '?')}"
        best = scored(objective_of(s.meta.get("space")), s.best_value) if s.best_value is not None else "-"
        table.add_row(s.name, s.meta.get("dataset", "?"), engine, *(str(s.counts[c]) for c in counts),
                      best, s.meta.get("created", "")[:16])
    return table


def spaces_table(spaces: dict[str, Any]) -> Table:
    """`tune spaces`: the built-in spaces, by name, with input shape, searched count, epochs."""
    table = Table(title="built-in spaces (tune spaces NAME shows one)", title_justify="left")
    for column in ("name", "input", "searched", "epochs"):  # a built-in space is named after its dataset
        table.add_column(column, no_wrap=True)  # an 80-column CI log squeezes the description only
    table.add_column("description", ratio=1)
    for name, s in sorted(spaces.items()):
        table.add_row(name, "x".join(map(str, s.input_shape)), str(len(s.searched())), str(s.training.max_epochs),
                      s.description)
    return table

