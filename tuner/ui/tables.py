"""The tables `tune` prints: the leaderboard, recent failures, a test-set evaluation, a trial's
parameters, the studies of a storage, the built-in spaces."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from tuner.wording import plural
from tuner.store import Evaluation, StudyInfo
from tuner.ui.board import Board, Row


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def _times_line(board: Board) -> str | None:
    t = board.times
    if t is None:
        return None
    return (f"per trial, medians of {t.trials} complete: {t.wall:.1f} s in all; training {t.training:.1f} s, "
            f"compile {t.compile:.1f} s, validation {t.validation:.1f} s, other {t.other:.1f} s (build, save, sampler)")


def board_table(board: Board) -> Table:
    c = board.counts
    title = (f"{board.study}: {c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed"
             + (f", {c['running']} running" if c["running"] else ""))
    table = Table(title=title, title_justify="left", expand=False, caption=_times_line(board),
                  caption_justify="left")
    for name, justify in (("#", "right"), ("trial", "right"), ("val acc", "right"), ("val loss", "right"),
                          ("epochs", "right"), ("time", "right"), ("parameters", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "parameters")
    for r in board.rows:
        table.add_row(str(r.rank), str(r.trial), pct(r.val_accuracy),
                      "-" if r.val_loss is None else f"{r.val_loss:.4f}", str(r.epochs), duration(r.seconds), r.summary)
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


def evaluation_tables(record: Evaluation) -> list[Table]:
    """The recorded test evaluation: best trial and ensemble side by side, then the members."""
    sel, test = record.selection, record.test
    table = Table(title=f"held-out test set: {plural(record.n_test, 'image')}", title_justify="left")
    for name in ("model", "val acc", "val loss", "test acc", "test loss"):
        table.add_column(name, justify="left" if name == "model" else "right")
    table.add_row(f"best trial ({sel.best_trial})", pct(sel.best_val_accuracy), f"{sel.best_val_loss:.4f}",
                  pct(test["best"]["accuracy"]), f"{test['best']['loss']:.4f}")
    table.add_row(f"ensemble ({plural(len(sel.members), 'member')})", pct(sel.val_accuracy), f"{sel.val_loss:.4f}",
                  pct(test["ensemble"]["accuracy"]), f"{test['ensemble']['loss']:.4f}")
    caption = f"ensemble gain over the best trial on test: {100 * record.gain:+.2f} points"
    if "refit" in test:  # validation trained these models: no validation figure
        refit = record.refit or {}
        table.add_row(f"ensemble refit on train+val ({len(refit['models'])} refit)", "-", "-",
                      pct(test["refit"]["accuracy"]), f"{test['refit']['loss']:.4f}")
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
        table.add_row(p.file, *[cell for c, q in p.top for cell in (c, f"{100 * q:.2f}%")])
    return table


def params_table(row: Row) -> Table:
    """One trial's complete parameters (`tune best`)."""
    table = Table(title=f"best trial {row.trial}: val acc {pct(row.val_accuracy)}", title_justify="left")
    table.add_column("parameter")
    table.add_column("value")
    for key, value in row.params.items():
        table.add_row(key, str(value))
    return table


def studies_table(studies: list[StudyInfo], where: str) -> Table:
    """`tune studies`: each study's dataset, engine, trial counts and best accuracy."""
    table = Table(title=f"studies in {where}", title_justify="left")
    counts = ("complete", "pruned", "failed")
    for name in ("study", "dataset", "engine", *counts, "best val acc", "created"):
        table.add_column(name, justify="right" if name in (*counts, "best val acc") else "left")
    for s in studies:
        engine = f"{s.meta.get('engine', '?')}/{s.meta.get('sampler', '?')}"
        table.add_row(s.name, s.meta.get("dataset", "?"), engine, *(str(s.counts[c]) for c in counts),
                      pct(s.best_value), s.meta.get("created", "")[:16])
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

