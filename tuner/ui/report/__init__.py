"""`build_report`: a study as one self-contained HTML page that opens offline (every figure a
PNG inline, a content policy that allows no request) and each figure as a PNG beside it.

It reads the study's records: trials, their per-epoch histories and timings, the recorded test
evaluation. The image grids also read the train and validation splits (the study's, checked by
fingerprint); nothing here reads the test split.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import multiprocessing
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from tuner import __version__
from tuner.paths import atomic, new_folder
from tuner.space.objective import objective_of
from tuner.space.params import complete_params
from tuner.store import SearchStore, TrialRecord, TrialState
from tuner.store.trials import best_of
from tuner.training.choices import Augmentation
from tuner.ui.board import trial_times
from tuner.ui.report import figures
from tuner.ui.tables import pct
from tuner.wording import plural

REPORT = "report.html"
CURVES_OF_TOP = 3  # learning curves of the best trials (and of every ensemble member)
GRID = 16  # images per grid


@dataclass
class Table:
    header: list[str]
    rows: list[list[Any]]


@dataclass
class Figure:
    title: str
    file: str
    data: str  # base64 PNG
    width: int
    height: int


@dataclass
class Section:
    anchor: str
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    empty: str = "Nothing to draw yet: no trial has finished with figures."  # the note when it has nothing


class _Pictures:
    """Keeps each figure for the page; `render` draws them all as PNGs into the output folder."""

    def __init__(self, out: Path):
        self.out = out
        self.kept: list[tuple[Figure, Any]] = []

    def __call__(self, name: str, title: str, fig: Any) -> list[Figure]:
        if fig is None:
            return []
        width, height = (int(v) for v in fig.get_size_inches() * fig.dpi)
        record = Figure(title, f"{name}.png", "", width, height)
        self.kept.append((record, fig))
        return [record]

    def render(self) -> None:
        """Every kept figure as a PNG file and inline: every other one in a forked process where
        there are two cores (drawing was 4-5 s of a 200-trial report's 9 s)."""
        _DRAWN[:] = [fig for _, fig in self.kept]
        theirs = range(0, len(_DRAWN), 2)
        pngs: dict[int, bytes] = {}
        if len(_DRAWN) > 1 and (os.cpu_count() or 1) > 1 and "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(1, initializer=_plain_signals) as pool:  # a fork: the figures, not pickled
                drawing = pool.map_async(_png_at, theirs)
                pngs |= {i: _png_at(i) for i in range(1, len(_DRAWN), 2)}
                pngs |= dict(zip(theirs, drawing.get()))
        pngs |= {i: _png_at(i) for i in range(len(_DRAWN)) if i not in pngs}
        for i, (record, _) in enumerate(self.kept):
            atomic(self.out / record.file, lambda tmp: tmp.write_bytes(pngs[i]))
            record.data = base64.b64encode(pngs[i]).decode()
        _DRAWN.clear()


_DRAWN: list[Any] = []  # the figures `_Pictures.render` is drawing, for its forked process to find


def _plain_signals() -> None:
    """In the forked drawer: the pool ends it with SIGTERM, which must not run the command's own
    handler (its one-line "interrupted" message); a Ctrl-C is the parent's to handle. A parent
    ended by a signal leaves at once: the drawer then ends too, and its stderr is closed, so the
    pipe it would write its figures into (gone with the parent) is no traceback under the
    command's one line. Its own errors reach the parent through the pool's result."""
    import signal

    from tuner.interrupts import exit_with_parent

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = open(os.devnull, "w")  # Python's own writer too, wherever it pointed
    exit_with_parent(os.getppid())


def _png_at(index: int) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # a glyph the font lacks, a layout too tight: drawn anyway
        warnings.simplefilter("ignore", UserWarning)
        _DRAWN[index].savefig(buffer, format="png", pil_kwargs={"compress_level": 1})  # level 6 took a fifth of it
    return buffer.getvalue()


class Report(NamedTuple):
    page: Path
    figures: int  # PNG files written beside it (not others already in the folder)
    note: str | None  # why the image grids are missing, if they are


def build_report(store: SearchStore, study: str, out: Path, images: Callable[[], Any] | None = None) -> Report:
    """Write report.html and its PNGs into `out`; `images`, if given, returns the study's
    (train, validation) data for the image grids."""
    with new_folder(out) as folder:  # an interrupted report leaves no folder it made
        pictures = _Pictures(folder)
        page, note = _page(store, study, pictures, images)
        atomic(folder / REPORT, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return Report(folder / REPORT, len(pictures.kept), note)


def _page(store: SearchStore, study: str, picture: _Pictures,
          images: Callable[[], Any] | None) -> tuple[str, str | None]:
    """Every section's figures drawn into the output folder; the page's HTML, and why the image
    grids are missing, if they are."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    meta, trials = store.studies.meta(study), store.trials.all(study)
    sections = [_summary(store, study, meta, trials), *_search(store, study, meta, trials, picture)]
    sections += _ensemble(store, study, trials, picture)
    note = None
    if images is not None:
        sections_images, note = _images(store, study, trials, images, picture)
        sections += sections_images
    picture.render()
    env = Environment(loader=PackageLoader("tuner.ui.report", "."), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("page.html.j2").render(
        study=study, sections=sections, version=__version__, images_note=note,
        made=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")), note


def _summary(store: SearchStore, study: str, meta: dict[str, Any], trials: list[TrialRecord]) -> Section:
    split, counts = meta.get("split") or {}, {s.value: sum(t.state is s for t in trials) for s in TrialState}
    started = [t.started for t in trials if t.started]
    ends = [t.started.timestamp() + (t.seconds or 0) for t in trials if t.started]
    seconds = max(ends) - min(s.timestamp() for s in started) if started else None
    wall = "-" if seconds is None else f"{seconds / 60:.1f} minutes" if seconds >= 120 else f"{seconds:.0f} s"
    facts = [["data source", split.get("source", "?")],
             ["images", f"{split.get('n_train', 0):,} train, {split.get('n_val', 0):,} validation, "
                        f"{split.get('n_test', 0):,} test"],
             ["input", "x".join(map(str, split.get("input_shape") or [])) or "?"],
             ["engine / sampler / pruner", f"{meta.get('engine')} / {meta.get('sampler')} / {meta.get('pruner')}"],
             ["objective", objective_of(meta.get("space")).name],
             ["trials", ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "none"],
             ["wall time (first trial's start to last trial's end)", wall],
             ["reads of the test split", str(store.evaluations.test_reads(study))
              + ("; its images hashed once more by the checks before the first trial (for copies of "
                 "training images; nothing scored)" if store.studies.checks(study) else "")]]
    tables = [Table([], facts)]
    names, per_split = split.get("class_names") or [], split.get("class_counts") or {}
    if names and per_split:
        tables.append(Table(["class", "train", "validation", "test"],
                            [[n, *(per_split.get(p, ["-"] * len(names))[i] for p in ("train", "val", "test"))]
                             for i, n in enumerate(names)]))
    checks = store.studies.checks(study)
    if checks:
        tables.append(Table(["check before the first trial", "result", "evidence"],
                            [[c.get("check"), c.get("status"), c.get("evidence")] for c in checks]))
    return Section("study", "The study", tables=tables)


def _search(store: SearchStore, study: str, meta: dict[str, Any], trials: list[TrialRecord],
            picture: _Pictures) -> list[Section]:
    objective = objective_of(meta.get("space"))
    searched = {k: v for k, v in (meta.get("space") or {}).get("params", {}).items() if isinstance(v, dict)}
    search = Section("search", "The search")
    search.figures += picture("history", "each trial's value, the best so far; pruned and failed trials marked",
                              figures.history(trials, objective))
    search.figures += picture("intermediate", "the objective per epoch, with where pruned trials stopped",
                              figures.intermediate(trials, objective))
    importance = Section("importances", "Hyperparameters")
    importance.figures += picture("importances", "hyperparameter importances (Optuna's PED-ANOVA, as optuna-dashboard)",
                                  figures.importances(store.trials.importances(study)))
    if not importance.figures:  # said, not left out: PED-ANOVA needs ranked trials that differ
        ranked = sum(t.ranks for t in trials)
        importance.text.append(f"No hyperparameter importances yet: Optuna's PED-ANOVA needs more ranked trials "
                               f"({plural(ranked, 'trial')} {'ranks' if ranked == 1 else 'rank'} here), with more "
                               f"than one value of some parameter among them.")
    importance.figures += picture("slices", "the objective against each searched parameter (colour: trial number)",
                                  figures.slices(trials, searched, objective))
    rows = [(t.number, vars(times)) for t in trials if (times := trial_times(t)) is not None]
    cost = Section("time", "Where the time went", empty="Nothing to draw yet: no trial has completed (a pruned or "
                   "shortened trial's epochs were cut, so its parts say little of a trial's time).")
    cost.figures += picture("times", "per complete trial: training, compile, validation, other", figures.times(rows))
    return [search, importance, cost]


def _ensemble(store: SearchStore, study: str, trials: list[TrialRecord], picture: _Pictures) -> list[Section]:
    from tuner.ensemble.export import trials_named

    record = store.evaluations.latest(study)
    if record is not None:
        trials_named(store, study, record)  # a record naming trials the study lacks is damaged: one line
    top = best_of(trials, CURVES_OF_TOP, store.trials.objective(study))  # the trials read once, not again
    members = [t for t in trials if record is not None and t.number in record.selection.members]
    curves = Section("curves", "Learning curves")
    curves.figures += picture("curves_top", f"the {plural(len(top), 'best trial')}: loss and accuracy per epoch "
                                            "(dotted: the best epoch, whose weights are kept)", figures.curves(top, "best trials"))
    curves.figures += picture("curves_members", "every ensemble member", figures.curves(members, "ensemble members"))
    if record is None:
        return [curves, Section("ensemble", "The ensemble", text=["No evaluation is recorded yet (`tune ensemble`)."])]
    sel, test = record.selection, record.test
    section = Section("ensemble", "The ensemble and its recorded test evaluation",
                      text=[f"Evaluated {record.when} on {record.n_test:,} test images, after {record.n_finished} finished "
                            f"trials; members chosen by greedy selection on validation {sel.metric}."])
    section.tables.append(Table(["trial", "weight", "temperature"],
                                [[n, f"{w:.3f}", f"{sel.temperatures.get(n, 1.0):.2f}"]
                                 for n, w in sorted(sel.members.items(), key=lambda kv: -kv[1])]))
    section.tables.append(Table(["model", "test accuracy", "test balanced accuracy", "test loss"],
                                [[k, pct(v["accuracy"]), pct(v.get("balanced_accuracy")), f"{v['loss']:.4f}"]
                                 for k, v in test.items()]))
    names = record.class_names or list(test[record.final].get("per_class_accuracy", {}))
    section.tables.append(Table(["class", "test images", *(f"{k} accuracy" for k in test)],
                                [[n, test[record.final].get("per_class_count", {}).get(n, "-"),
                                  *(pct(v.get("per_class_accuracy", {}).get(n)) for v in test.values())] for n in names]))
    section.figures += picture("confusion", "test confusion matrix of model.keras, as recorded", figures.confusion(record))
    return [curves, section]


def _images(store: SearchStore, study: str, trials: list[TrialRecord], load: Callable[[], Any],
            picture: _Pictures) -> tuple[list[Section], str | None]:
    """Training images as the best trial's model sees them (after its augmentation), and its most
    confidently wrong validation images."""
    best = best_of(trials, 1, store.trials.objective(study))
    if not best:
        return [], None
    try:
        data = load()
    except Exception as e:  # the data moved: the rest of the report stands
        return [], f"no image grids: the study's data could not be read ({str(e).splitlines()[0][:200]})"
    t = best[0]
    section = Section("images", f"Images, through trial {t.number}")
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(len(data.x_train), min(GRID, len(data.x_train)), replace=False))
    augmented = Augmentation.of(complete_params(t.params)).applied(data.x_train[rows], t.seed or 0)
    section.figures += picture("augmented", "training images after the best trial's augmentation (what its model is fed)",
                               figures.image_grid(augmented, [data.class_names[y] for y in data.y_train[rows]],
                                                  "training images, augmented"))
    views = store.artifacts.val_views(study, t.number)
    if views is not None and views.shape[1] == len(data.y_val):
        probs = views.mean(axis=0) if t.params.get("tta_flip") else views[0]
        wrong = np.flatnonzero(probs.argmax(1) != data.y_val)
        worst = wrong[np.argsort(-probs[wrong].max(1))][:GRID]
        captions = [f"{data.class_names[data.y_val[i]]} -> {data.class_names[probs[i].argmax()]} "
                    f"{100 * probs[i].max():.0f}%" for i in worst]
        section.figures += picture("confidently_wrong", "the best trial's most confidently wrong validation images "
                                                        "(label -> prediction, probability)",
                                   figures.image_grid(data.x_val[worst], captions, "most confidently wrong (validation)"))
    return [section], None

