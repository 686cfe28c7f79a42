"""Leaderboard rows and where a trial's time went, from trial records alone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.ui.board import describe_params, median_times, trial_times
from tuner.store import TrialRecord


def record(number: int, seconds: float, epochs: int, first: float, epoch: float, predict: float,
           state: str = "complete") -> TrialRecord:
    history = {"val_loss": [1.0] * epochs}
    timings = {"first_epoch_seconds": first, "epoch_seconds": epoch, "predict_seconds": predict}
    return TrialRecord(number, state, 0.5, {}, history=history, seconds=seconds, timings=timings)


def test_trial_time_splits_into_training_compile_validation_and_other():
    t = trial_times(record(0, seconds=20.0, epochs=10, first=5.0, epoch=1.0, predict=2.0))
    assert (t.training, t.compile, t.validation, t.other) == (10.0, 4.0, 2.0, 4.0)
    assert t.outside == 10.0  # the fixed cost: all but steady training
    assert trial_times(record(1, 5.0, 2, 1.0, 1.0, 0.1, state="pruned")) is None  # partial trials say little


def test_median_times_over_complete_trials():
    trials = [record(0, 20.0, 10, 5.0, 1.0, 2.0), record(1, 8.0, 4, 3.0, 1.0, 1.0), record(2, 12.0, 6, 2.0, 1.0, 1.0),
              record(3, 99.0, 1, 1.0, 1.0, 1.0, state="failed")]
    m = median_times(trials)
    assert m.trials == 3 and m.wall == 12.0 and m.training == 6.0 and m.compile == 2.0 and m.validation == 1.0
    assert median_times([]) is None and m.compile_told
    one = median_times([record(0, 3.0, 1, 2.0, 2.0, 0.1)])  # one epoch: compile read 0.0 s, as if none
    assert not one.compile_told and one.training == 2.0


def test_the_times_line_does_not_claim_a_compile_time_it_cannot_tell():
    from tuner.ui.tables import _times_line

    class Board:
        times = median_times([record(0, 3.0, 1, 2.0, 2.0, 0.1)])

    line = _times_line(Board())
    assert "compile 0.0 s" not in line and "its compile included (trials of one epoch cannot tell them apart)" in line


def test_describe_params_is_compact():
    text = describe_params({"model": "resnet", "depth": 3, "width": 64, "optimizer": "sgd", "momentum": 0.9,
                            "learning_rate": 0.4, "cutout": 8, "tta_flip": True, "weight_decay": 1e-4})
    assert text == "resnet d3 w64 sgd lr 0.4 mom 0.9 cutout 8 tta"  # weight decay only shows for adamw


@pytest.mark.parametrize("value, shown", [(0.0003, "lr 3.0e-04"), (0.05, "lr 0.05")])
def test_small_values_in_scientific_notation(value, shown):
    assert describe_params({"learning_rate": value}) == shown


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _plain_view(tmp_path, monkeypatch):
    import io

    from rich.console import Console

    from tuner.store import SearchStore
    from tuner.ui import live
    from tuner.ui.live import SearchView
    from tuner.ui.terminal import Terminal

    clock = _Clock()
    monkeypatch.setattr(live.time, "monotonic", clock)
    out = io.StringIO()
    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", {})
    view = SearchView(Terminal(Console(file=out, highlight=False)), store, "s", n_trials=3)
    view.search_started({"keras": "3", "backend": "tensorflow", "device": "cpu", "precision": "float32"})
    return view, out, clock


METRICS = {"loss": 0.5, "val_accuracy": 0.8, "val_loss": 0.6}


def test_without_a_terminal_epochs_are_logged_at_most_one_line_per_interval_per_trial(tmp_path, monkeypatch):
    from tuner.ui.live import PLAIN_EPOCH_SECONDS

    view, out, clock = _plain_view(tmp_path, monkeypatch)
    view.trial_started(0, {"depth": 1}, 50)
    for epoch in range(30):  # epochs of 1 s: a line every PLAIN_EPOCH_SECONDS
        clock.now += 1.0
        view.epoch_ended(0, epoch, METRICS)
    lines = [line for line in out.getvalue().splitlines() if " epoch " in line]
    assert len(lines) == int(30 // PLAIN_EPOCH_SECONDS) == 3
    assert lines[0] == f"trial 0 epoch {int(PLAIN_EPOCH_SECONDS)}/50  loss 0.5000  val acc 80.00%  val loss 0.6000"
    view.trial_started(1, {"depth": 2}, 4)
    clock.now += 60.0  # a slow epoch: said at once
    view.epoch_ended(1, 0, METRICS)
    assert out.getvalue().splitlines()[-1].startswith("trial 1 epoch 1/4  loss 0.5000")
    assert "\x1b[" not in out.getvalue()


def test_force_color_in_a_pipe_gives_colour_at_most_never_the_live_view(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    view, out, clock = _plain_view(tmp_path, monkeypatch)
    assert view.t.console.is_terminal and not view.t.interactive and view.live is None
    view.trial_started(0, {"depth": 1}, 2)
    clock.now += 20.0
    view.epoch_ended(0, 0, METRICS)
    assert "trial 0 epoch 1/2" in out.getvalue() and "\x1b[?25l" not in out.getvalue()  # no cursor codes


@pytest.mark.parametrize("chunks, expected", [
    (["title   \n", "│ a │\n"], "title\n│ a │\n"),
    (["tit", "le  ", " \nnext\n"], "title\nnext\n"),  # a line split across writes
    (["  indented stays\n"], "  indented stays\n"),
    (["no newline yet   "], "no newline yet   "),  # written as it is once flushed: nothing waits forever
    (["tabs\t \n"], "tabs\t\n"),
])
def test_piped_output_drops_the_spaces_rich_pads_lines_with(chunks, expected):
    import io

    from tuner.ui.terminal import TrimmedLines

    out = io.StringIO()
    stream = TrimmedLines(out)
    for chunk in chunks:
        stream.write(chunk)
    stream.flush()
    assert out.getvalue() == expected and not stream.isatty()


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(alphabet=" ab│\n", max_size=60), st.lists(st.integers(0, 60), max_size=6))
def test_any_text_in_any_pieces_reads_as_its_lines_without_trailing_spaces(text, cuts):
    import io

    from tuner.ui.terminal import TrimmedLines

    out = io.StringIO()
    stream = TrimmedLines(out)
    bounds = sorted({0, len(text), *[min(c, len(text)) for c in cuts]})
    for start, end in zip(bounds, bounds[1:]):
        stream.write(text[start:end])
    stream.flush()
    *lines, last = text.split("\n")
    assert out.getvalue() == "".join(line.rstrip(" ") + "\n" for line in lines) + last


def test_a_piped_leaderboard_has_no_trailing_spaces(tmp_path, capsys):
    from tests.conftest import run_main
    from tuner.store import SearchStore

    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", {})
    store.trials.add("s", TrialRecord(-1, "complete", 0.9, {"depth": 2}, history={"val_loss": [0.3]}, val_loss=0.3))
    code, out, err = run_main(["leaderboard", "--results-dir", str(tmp_path)], capsys)
    assert code == 0 and "90.00%" in out
    assert [line for line in out.splitlines() if line.endswith(" ")] == []


@pytest.mark.parametrize("states, top, note", [
    (["complete"] * 12, 10, "the best 10 of 12 ranked trials; --top 12 shows them all, --csv every trial"),
    (["complete"] * 12, 12, None),
    (["complete"] * 3 + ["failed"] * 9, 3, None),  # failed trials do not rank: nothing left out
    (["complete"] * 2 + ["pruned"] * 5, 1, "the best 1 of 2 ranked trials"),  # a pruner's trial has no best epoch
])
def test_the_leaderboard_says_when_top_leaves_ranked_trials_out(states, top, note, tmp_path, capsys):
    import json

    from tests.conftest import run_main
    from tuner.store import SearchStore

    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", {})
    for i, state in enumerate(states):
        value = None if state == "failed" else 0.5 + i / 100
        store.trials.add("s", TrialRecord(-1, state, value, {"depth": 2}, history={"val_loss": [0.3]}, val_loss=0.3))
    code, out, err = run_main(["leaderboard", "--results-dir", str(tmp_path), "--top", str(top)], capsys)
    assert code == 0, err
    assert (note in out.splitlines()[-1]) if note else ("ranked trials" not in out), out
    code, out, _ = run_main(["leaderboard", "--results-dir", str(tmp_path), "--top", str(top), "--json"], capsys)
    board = json.loads(out)
    assert board["ranked"] == sum(s == "complete" for s in states) and len(board["leaderboard"]) == min(top, board["ranked"])


@pytest.mark.slow  # a process of its own
@pytest.mark.parametrize("args", [["--csv"], ["--json"], []], ids=["csv", "json", "table"])
def test_a_reader_that_stops_reading_ends_the_leaderboard_with_exit_0_and_nothing_said(args, tmp_path):
    """`tune leaderboard --csv | head -1`: exit 1 or 0 by timing (click's exit on a closed pipe), so
    a script with pipefail failed now and then. The pipe here is closed before anything is written."""
    import os
    import subprocess
    import sys

    from tuner.store import SearchStore

    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", {})
    for i in range(50):
        store.trials.add("s", TrialRecord(-1, "complete", 0.5 + i / 100, {"depth": 2}, history={"val_loss": [0.3]},
                                          val_loss=0.3))
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    proc = subprocess.run([sys.executable, "-m", "tuner", "leaderboard", "--results-dir", str(tmp_path), *args],
                          stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(write)
    assert (proc.returncode, proc.stderr) == (0, "")


@pytest.mark.slow  # a search in a process of its own
def test_a_search_whose_reader_stops_reading_goes_on_and_records_every_trial(tmp_path):
    """`tune search ... | head -1`: rich ended the command with exit 1 at its next line, a trial
    left running in the study."""
    import os
    import subprocess
    import sys

    from tests.conftest import TINY_SPACE
    from tuner.store import SearchStore

    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run([sys.executable, "-m", "tuner", "search", "--space", str(TINY_SPACE), "--study", "p",
                           "--trials", "3", "--epochs", "1", "--jobs", "1", "--in-process", "--no-ensemble", "--seed", "0",
                           "--results-dir", str(tmp_path)], stdout=write, stderr=subprocess.PIPE, text=True, timeout=300)
    os.close(write)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [t.state.value for t in SearchStore(None, tmp_path).trials.all("p")] == ["complete"] * 3


def test_leaderboard_csv_has_every_trial_with_its_figures_and_parameters(tmp_path, capsys):
    import csv
    import io

    from tests.conftest import run_main
    from tuner.space.params import complete_params
    from tuner.store import SearchStore

    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", {})
    complete = complete_params({"optimizer": "sgd", "learning_rate": 0.0123})
    store.trials.add("s", TrialRecord(-1, "complete", 0.9, complete, history={"val_loss": [0.3, 0.2]}, val_loss=0.2,
                                      best_epoch=1, seconds=2.5))
    store.trials.add("s", TrialRecord(-1, "failed", None, {"depth": 1}, reason='NaN, "quoted"\nsecond line'))
    code, out, err = run_main(["leaderboard", "--results-dir", str(tmp_path), "--csv"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["trial"] for r in rows] == ["0", "1"] and [r["state"] for r in rows] == ["complete", "failed"]
    assert float(rows[0]["value"]) == 0.9 and float(rows[0]["learning_rate"]) == 0.0123 and rows[0]["optimizer"] == "sgd"
    assert rows[0]["epochs"] == "2" and rows[0]["best_epoch"] == "1" and rows[1]["value"] == ""
    assert rows[1]["reason"] == 'NaN, "quoted"\nsecond line' and rows[1]["optimizer"] == ""  # quoted, blank where absent
    code, out, err = run_main(["leaderboard", "--results-dir", str(tmp_path), "--csv", "--json"], capsys)
    assert code == 2 and "choose one" in err


def test_leaderboard_csv_leaves_blank_a_conditional_parameter_that_does_not_apply(tmp_path, capsys):
    import csv
    import io

    from tests.conftest import run_main
    from tuner.space.files import load_space
    from tuner.store import SearchStore

    space = load_space("digits")  # momentum only with sgd, weight_decay only with adamw
    store = SearchStore(None, tmp_path, create=True)
    store.open_study("s", {"space": space.to_dict()})
    for optimizer in ("adam", "sgd"):
        store.trials.add("s", TrialRecord(-1, "complete", 0.9, space.complete({"optimizer": optimizer, "momentum": 0.85}),
                                          history={"val_loss": [0.3]}, val_loss=0.3))
    code, out, err = run_main(["leaderboard", "--results-dir", str(tmp_path), "--csv"], capsys)
    adam, sgd = list(csv.DictReader(io.StringIO(out)))
    assert (adam["optimizer"], adam["momentum"], adam["weight_decay"]) == ("adam", "", "")
    assert (sgd["optimizer"], sgd["momentum"], sgd["weight_decay"]) == ("sgd", "0.85", "")


@pytest.mark.parametrize("left, fixed, epoch, said", [
    (100.0, 3.0, 2.0, "about 48 epochs"),  # a trial's start is not an epoch's time
    (2.0, 3.0, 0.2, "about 0 epochs"),  # a budget all but spent: no 10 epochs from its last 2 s
    (30.0, 0.0, 10.0, "about 3 epochs"),
])
def test_the_budget_line_counts_a_trials_start_before_its_epochs(tmp_path, monkeypatch, left, fixed, epoch, said):
    from tuner.search.budget import Plan

    view, out, clock = _plain_view(tmp_path, monkeypatch)
    view.trial_started(0, {"depth": 1}, 5, Plan(5, 5, epoch, None, None, left, fixed))
    budget = [line for line in out.getvalue().splitlines() if line.startswith("budget: ")]
    assert len(budget) == 1 and budget[0].endswith(f"the worker has time for {said}"), out.getvalue()


def test_a_result_line_names_as_best_only_a_trial_whose_line_came(tmp_path, monkeypatch):
    """Two workers: trial 1 (better) is in the store before trial 0's line is printed; trial 0's
    line names trial 0 as the best, and trial 1's line, which follows, names trial 1."""
    view, out, clock = _plain_view(tmp_path, monkeypatch)
    records = [TrialRecord(-1, "complete", value, {}, val_loss=1.0, history={"val_loss": [1.0]}, seconds=2.0)
               for value in (0.5, 0.9)]
    numbers = [view.store.trials.add("s", r) for r in records]
    for number, r in zip(numbers, records):
        view.trial_finished(TrialRecord(number, "complete", r.value, {}, val_loss=1.0, history=r.history, seconds=2.0))
    lines = [line for line in out.getvalue().splitlines() if line.startswith("trial ")]
    assert [line.split("; best: ")[1].split(" (")[0].split("  ")[0] for line in lines] == \
        [f"trial {numbers[0]} 50.00%", f"trial {numbers[1]} 90.00%"], lines


@pytest.mark.parametrize("states, counted", [
    (("complete", "complete"), ["1/3 finished (1 complete", "2/3 finished (2 complete"]),
    (("complete", "pruned"), ["1/3 finished (1 complete, 0 pruned", "2/3 finished (1 complete, 1 pruned"]),
    # a failed trial is counted at once: a worker that died says no line for it
    (("complete", "failed"), ["1/3 finished (1 complete, 0 pruned, 1 failed", "1/3 finished (1 complete, 0 pruned, 1 failed"]),
])
def test_a_plain_logs_count_does_not_run_ahead_of_the_lines_it_counts(tmp_path, monkeypatch, states, counted):
    """Two workers: the second trial is recorded before the first one's line is printed; the
    first line counts the first trial only, and the second line both (it read 2/3 on both)."""
    view, out, clock = _plain_view(tmp_path, monkeypatch)
    numbers = [view.store.trials.begin("s", {}) for _ in states]
    for number in numbers:
        view.trial_started(number, {"depth": 1}, 2)
    records = [TrialRecord(n, state, 0.5 if state != "failed" else None, {}, val_loss=1.0, best_epoch=0,
                           history={"val_loss": [1.0]}, seconds=2.0, reason="x" if state == "failed" else None)
               for n, state in zip(numbers, states)]
    for record in records:
        view.store.trials.finish("s", record)
    for record in records:
        view.trial_finished(record)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("trial ") and "[" in line]
    assert [line.split("[")[1][:len(c)] for c, line in zip(counted, lines)] == counted, lines


@pytest.mark.parametrize("params, searched, shown", [
    ({"model": "mlp", "depth": 2, "learning_rate": 0.05}, ["depth", "learning_rate"], "mlp d2 lr 0.05"),  # --set model=mlp
    ({"model": "cnn", "depth": 2, "width": 16}, ["width"], "cnn w16"),
    ({"depth": 2, "width": 16}, ["width"], "w16"),  # no family among the parameters: none made up
    ({"model": "lenet", "optimizer": "adam"}, [], "lenet"),
])
def test_a_trial_summary_names_its_model_family_searched_or_fixed(params, searched, shown):
    assert describe_params(params, searched) == shown


def test_the_final_board_is_the_study_as_the_search_left_it(tmp_path, monkeypatch):
    """A trial another worker was running when the last result line came has ended by the end:
    the board printed after the search counts it as it is (it read "1 running")."""
    view, out, clock = _plain_view(tmp_path, monkeypatch)
    number = view.store.trials.begin("s", {})  # another worker's, running
    view.trial_finished(TrialRecord(view.store.trials.add("s", TrialRecord(-1, "complete", 0.5, {}, val_loss=1.0)),
                                    "complete", 0.5, {}, val_loss=1.0))
    assert view.board.counts["running"] == 1
    assert view.store.trials.fail("s", number, "interrupted (Ctrl-C)")
    view.__exit__(None, None, None)
    assert view.board.counts["running"] == 0 and view.board.counts["failed"] == 1


def test_the_history_figure_names_only_what_it_draws():
    """A study without pruned trials showed a "pruned" marker in the legend."""
    from tuner.space.objective import OBJECTIVES
    from tuner.ui.report import figures

    trials = [TrialRecord(n, "complete", v, {}) for n, v in enumerate([0.5, 0.7, 0.6])]
    ax = figures.history(trials, OBJECTIVES["accuracy"]).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["complete", "best so far"]


@pytest.mark.parametrize("reason, epochs, caption", [
    (None, 15, None),
    ("shortened: 1 of 6 epochs on a subset of 10,240 training images (20 of 78 batches), for a first result soon "
     "after the start", 1, "trained 1 epoch; shortened: 1 of 6 epochs on a subset of 10,240 training images (20 of "
     "78 batches), for a first result soon after the start"),
    ("stopped at the search's deadline (--timeout) after epoch 3 of 9", 3,
     "trained 3 epochs; stopped at the search's deadline (--timeout) after epoch 3 of 9"),
])
def test_the_best_trial_says_when_it_trained_otherwise_than_its_parameters_ask(reason, epochs, caption):
    """A best trial trained on a subset of one epoch was said only in the leaderboard's reason
    column: `tune best` showed its parameters as if it had trained them whole."""
    from tuner.space.objective import OBJECTIVES
    from tuner.store import TrialState
    from tuner.ui.board import Row
    from tuner.ui.tables import params_table

    row = Row(1, 0, TrialState.PRUNED, 0.29, 0.29, 0.29, 1.94, epochs, 94.0, {"width": 32}, reason=reason)
    assert params_table(row, OBJECTIVES["accuracy"], lambda name, params: True).caption == caption


@settings(derandomize=True, database=None, deadline=None, max_examples=50)
@given(value=st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False) | st.integers(-10**9, 10**9)
       | st.text(max_size=8) | st.booleans())
def test_a_parameter_is_shown_at_six_significant_digits_at_most(value):
    """`tune best` showed a sampled dropout as 0.30000000000000004."""
    from tuner.space.objective import OBJECTIVES
    from tuner.store import TrialState
    from tuner.ui.board import Row
    from tuner.ui.tables import params_table

    row = Row(1, 0, TrialState.COMPLETE, 0.9, 0.9, 0.9, 0.3, 2, 1.0, {"dropout": 0.30000000000000004, "p": value})
    shown = params_table(row, OBJECTIVES["accuracy"], lambda name, params: True).columns[1]._cells
    assert shown[0] == "0.3"
    if isinstance(value, float):  # its value to six digits, in at most six of them
        assert float(shown[1]) == pytest.approx(value, rel=1e-5, abs=0.0)
        assert len(shown[1].split("e")[0].replace("-", "").replace(".", "").lstrip("0")) <= 6
    else:
        assert shown[1] == str(value)


@pytest.mark.parametrize("spaced", [True, False], ids=["their when", "a space without them"])
@pytest.mark.parametrize("optimizer, shown, unused", [
    ("adam", [], ["momentum", "weight_decay"]),
    ("sgd", ["momentum"], ["weight_decay"]),
    ("adamw", ["weight_decay"], ["momentum"]),
])
def test_the_best_trial_shows_only_the_parameters_that_apply_to_it(optimizer, shown, unused, spaced):
    """`tune best` listed momentum 0.9 and weight_decay 0.0001 for an Adam trial, as if it had used
    them, and did still where the space names neither (no `when` to go by)."""
    from tuner.space.files import load_space
    from tuner.space.objective import OBJECTIVES
    from tuner.store import TrialState
    from tuner.ui.board import Row, activity
    from tuner.ui.tables import params_table, unused_note

    space = load_space("digits")  # momentum only with sgd, weight_decay only with adamw
    params = space.complete({"optimizer": optimizer})
    row = Row(1, 0, TrialState.COMPLETE, 0.9, 0.9, 0.9, 0.3, 2, 1.0, params)
    applies = activity(space.to_dict() if spaced else {"name": "plain", "dataset": "digits", "params": {"depth": 2}})
    table = params_table(row, OBJECTIVES["accuracy"], applies)
    names = table.columns[0]._cells
    assert [n for n in ("momentum", "weight_decay") if n in names] == shown
    assert table.caption is None and unused_note(row, applies) == (f"not used by best trial 0, so not shown: "
                                                                   f"{', '.join(unused)}")
    assert len(names) + len(unused) == len(params)  # everything else shown



@settings(derandomize=True, database=None, deadline=None, max_examples=60)
@given(names=st.lists(st.text(alphabet="ab7[]/=# ", min_size=1, max_size=10).map(str.strip).filter(bool)
                      | st.sampled_from(["[b]seven", "[/]", "[bold red]x[/bold red]", "[link=x]y"]),
                      min_size=1, max_size=5, unique=True))
def test_class_names_print_as_written_in_every_table(names):
    """A class folder "[b]seven" read as rich markup: shown as "seven", the same as the class
    "seven", in the data table (and every table and line a Terminal prints)."""
    import contextlib
    import io

    from tuner.ui.terminal import Terminal

    split = {"class_names": names, "class_counts": {"train": [5] * len(names)}, "source": "[b]src", "input_shape": [8, 8, 1]}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        terminal = Terminal()
        terminal.print_data({"split": split})
        terminal.info("[b]a line")
    assert "data: [b]src" in out.getvalue() and "[b]a line" in out.getvalue()
    cells = [line.split("│")[1].strip() for line in out.getvalue().splitlines() if line.startswith("│")]
    assert cells == names
