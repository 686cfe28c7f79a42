"""README promises through the real `tune` entry point: the timeout, repeatable proposals,
KerasTuner's Hyperband brackets, $TUNE_STORAGE, --reevaluate, a NaN failure in the leaderboard,
and a trial whose worker stopped its heartbeats on another machine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ENDLESS_SPACE, TINY_SPACE, run_cli, run_main, search_once, snapshot
from tuner.store import SearchStore

pytestmark = pytest.mark.slow


def _search(results: Path, capsys, *extra: str, study: str = "p", trials: int = 3) -> tuple[int, str, str]:
    return run_main(["search", "--space", str(TINY_SPACE), "--study", study, "--trials", str(trials), "--epochs", "1",
                     "--results-dir", str(results), "--no-ensemble", "--jobs", "1", "--in-process", *extra], capsys)


def _recorded_requests(monkeypatch) -> list:
    """The requests the command makes (the first, and its copies with the checks or jobs added)."""
    from tuner.search.request import SearchRequest

    made, made_as = [], SearchRequest.__post_init__

    def recorded(self) -> None:  # on the class itself: the requests still pickle for the workers
        made_as(self)
        made.append(self)

    monkeypatch.setattr(SearchRequest, "__post_init__", recorded)
    return made


@pytest.mark.parametrize("where, timeout", [(("--jobs", "1", "--in-process"), "10"), (("--jobs", "2"), "30")])
def test_timeout_starts_no_trial_after_it(tmp_path, capsys, monkeypatch, where, timeout):
    """In this process, or in workers that took seconds to import Keras after the command started (45 s:
    room for a slow machine's imports and a first trial):
    the deadline is the command's start plus --timeout for every one of them."""
    import datetime
    import time

    import keras  # noqa: F401  imported first: the deadline counts the command's start-up too

    made = _recorded_requests(monkeypatch)
    code, out, err = run_main(["search", "--space", str(TINY_SPACE), "--study", "p", "--trials", "200", "--epochs", "1",
                               "--results-dir", str(tmp_path), "--no-ensemble", *where, "--timeout", timeout,
                               "--seed", "0"], capsys)
    assert code == 0, err
    assert len({r.deadline for r in made}) == 1  # copies keep the command's deadline
    deadline = datetime.datetime.fromtimestamp(made[0].deadline + time.time() - time.monotonic())
    trials = SearchStore(None, tmp_path).trials.all("p")
    assert 1 <= len(trials) < 200 and all(t.finished for t in trials)  # the ones running at the deadline end too
    assert all(t.started < deadline for t in trials), [(t.started, deadline) for t in trials]  # none started after it


@pytest.mark.parametrize("jobs", ["--jobs=2"])  # in one process: tests/search/test_runner.py (fast)
def test_at_the_deadline_running_trials_stop_after_a_step_and_still_count(tmp_path, capsys, jobs):
    """Trials that would train 1,000 epochs: each is planned to the epochs estimated to fit before
    --timeout, and one still running at it stops after the step it is at (or at the epoch's end)
    with its best epoch's weights; either way it is recorded as pruned with its figures, and the
    ensemble uses it."""
    # No pruner: a trial it stops has no best epoch to rank by (the deadline is what is tested here).
    code, out, err = run_main(["search", "--space", str(ENDLESS_SPACE), "--study", "d", "--trials", "4", "--timeout", "40",
                               "--results-dir", str(tmp_path), "--seed", "0", "--pruner", "none", jobs], capsys)
    assert code == 0, err
    store = SearchStore(None, tmp_path)
    trials = store.trials.all("d")
    assert trials and all(t.state.value == "pruned" for t in trials)
    for t in trials:
        shortened = rf"shortened: {t.max_epochs} of 1000 epochs (fit in the \d+:\d\d left|, for a first result soon after the start)"
        assert t.max_epochs < 1000 and (re.fullmatch(_stopped_at("the search's deadline (--timeout)", t.epochs, t.max_epochs),
                                                     t.reason) or re.fullmatch(shortened, t.reason)), t.reason
        assert t.best_epoch is not None and t.value == pytest.approx(t.history["val_accuracy"][t.best_epoch])
        assert t.ranks and store.artifacts.model_path("d", t.number) is not None
    record = store.evaluations.latest("d")
    assert record is not None and set(record.selection.members) <= {t.number for t in trials}
    assert "budget: " in out and "an epoch" in out


@pytest.mark.parametrize("resumed", [False, True])
def test_a_deadline_before_any_trial_says_so_keeps_no_empty_study_and_reads_no_test_image(resumed, tmp_path, capsys,
                                                                                         monkeypatch):
    """With --no-check (the checks would say it first) a new study was created, ran nothing and
    the command exited 0 with no reason given."""
    import time
    import types

    common = ["search", "--space", str(TINY_SPACE), "--study", "z", "--results-dir", str(tmp_path), "--in-process",
              "--no-check", "--seed", "0", "--epochs", "1"]
    if resumed:
        assert run_main([*common, "--trials", "1", "--no-ensemble"], capsys)[0] == 0
    before = SearchStore(None, tmp_path).trials.all("z") if resumed else []
    # The request's clock set 5 s back: its 1 s deadline has passed before the first trial.
    monkeypatch.setattr("tuner.search.request.time", types.SimpleNamespace(monotonic=lambda: time.monotonic() - 5))
    code, out, err = run_main([*common, "--trials", "3", "--timeout", "1"], capsys)
    assert code == 1 and err.strip().splitlines()[-1] == (
        "error: --timeout 1 s ended before any trial ran (workers start in seconds, and a trial whose first epoch "
        "would not fit in the time left is not started); give it more time; nothing was searched"
        + (" (study 'z' is as it was)" if resumed else ""))
    store = SearchStore(None, tmp_path)
    assert store.studies.names() == (["z"] if resumed else [])
    assert (tmp_path / "z").exists() == resumed  # a new study's folder (logs, labels) goes with it
    if resumed:
        assert store.trials.all("z") == before and store.evaluations.latest("z") is None


def test_a_deadline_on_a_study_with_all_its_trials_is_no_stop(tmp_path, capsys, monkeypatch):
    """A study that already holds the trials asked for has nothing to run: a passed deadline is
    not "ended before any trial ran"."""
    import time
    import types

    common = ["search", "--space", str(TINY_SPACE), "--study", "z", "--results-dir", str(tmp_path), "--in-process",
              "--no-check", "--seed", "0", "--epochs", "1", "--trials", "1", "--no-ensemble"]
    assert run_main(common, capsys)[0] == 0
    monkeypatch.setattr("tuner.search.request.time", types.SimpleNamespace(monotonic=lambda: time.monotonic() - 5))
    code, out, err = run_main([*common, "--timeout", "1"], capsys)
    assert code == 0 and "ended before any trial ran" not in err, err


def _stopped_at(why: str, epochs: int, of: int = 1000) -> str:
    """The reason of a trial stopped in its last epoch (after a step) or at that epoch's end."""
    return rf"stopped at {re.escape(why)} (in epoch {epochs} of {of}, after \d+ of \d+ batches|after epoch {epochs} of {of})"


def test_a_trial_timeout_caps_each_trial(tmp_path, capsys):
    code, out, err = run_main(["search", "--space", str(ENDLESS_SPACE), "--study", "c", "--trials", "2",
                               "--trial-timeout", "3", "--results-dir", str(tmp_path), "--seed", "0", "--in-process",
                               "--no-ensemble"], capsys)
    assert code == 0, err
    trials = SearchStore(None, tmp_path).trials.all("c")
    assert len(trials) == 2
    for t in trials:  # planned to the epochs estimated to fit in 3 s (at least one); the cap stops the rest
        assert t.state.value == "pruned" and t.max_epochs < 1000
        shortened = (f"shortened: {t.max_epochs} of 1000 epochs fit in --trial-timeout 3 s",
                     "shortened: 1 of 1000 epochs, cut by --trial-timeout 3 s (not one fits in it)")
        assert t.reason in shortened or (re.fullmatch(_stopped_at("its time cap (--trial-timeout 3 s)", t.epochs,
                                                                  t.max_epochs), t.reason) and t.seconds >= 3), t.reason
    assert {t.number for t in SearchStore(None, tmp_path).trials.top("c", 2)} == {0, 1}  # both rank


def test_one_job_and_a_seed_repeat_the_proposals(tmp_path, capsys):
    runs = []
    for name in ("a", "b"):
        code, _, err = _search(tmp_path / name, capsys, "--seed", "7")
        assert code == 0, err
        runs.append([t.params for t in SearchStore(None, tmp_path / name).trials.all("p")])
    assert runs[0] == runs[1] and len({json.dumps(p, sort_keys=True) for p in runs[0]}) == 3
    code, _, err = _search(tmp_path / "c", capsys, "--seed", "8")
    assert [t.params for t in SearchStore(None, tmp_path / "c").trials.all("p")] != runs[0]


def test_kerastuner_hyperband_trains_each_bracket_for_its_epochs(tmp_path, capsys):
    code, _, err = run_main(["search", "--space", str(TINY_SPACE), "--study", "h", "--trials", "5", "--engine",
                             "keras-tuner", "--sampler", "hyperband", "--epochs", "3", "--results-dir", str(tmp_path),
                             "--no-ensemble", "--seed", "0", "--in-process"], capsys)
    assert code == 0, err
    trials = SearchStore(None, tmp_path).trials.all("h")
    budgets = [t.max_epochs for t in trials]
    # Hyperband (max 3 epochs, factor 3) starts with a bracket of 1-epoch trials; each trial
    # trains at most its bracket's budget (early stopping may end it sooner).
    assert budgets[0] == 1 and set(budgets) <= {1, 3} and all(t.epochs <= t.max_epochs for t in trials)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> Path:
    return search_once(tmp_path_factory.mktemp("promises") / "results", "e", "--in-process")


def test_tune_storage_names_the_database(evaluated, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TUNE_STORAGE", f"sqlite:///{evaluated / 'tune.db'}")
    monkeypatch.chdir(tmp_path)  # the default results folder here holds nothing
    code, out, err = run_main(["leaderboard", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["study"] == "e" and len(json.loads(out)["leaderboard"]) == 2
    assert not (tmp_path / "results").exists()


def test_reevaluate_records_a_second_evaluation_and_keeps_the_first(evaluated, capsys):
    store = SearchStore(None, evaluated)
    first = store.evaluations.all("e")
    assert len(first) == 1 and first[0].test_reads == 1  # the search's own ensemble step
    code, out, err = run_main(["ensemble", "--study", "e", "--results-dir", str(evaluated), "--reevaluate"], capsys)
    assert code == 0, err
    after = store.evaluations.all("e")
    assert len(after) == 2 and after[0] == first[0] and "held-out test set" in out
    assert "(read 1 time before in this study)" in out and after[1].test_reads == 2  # said before it reads again
    code, out, err = run_main(["ensemble", "--study", "e", "--results-dir", str(evaluated)], capsys)
    assert code == 0 and "the test set was not read again" in out and len(store.evaluations.all("e")) == 2
    assert store.evaluations.test_reads("e") == 2
    code, out, err = run_main(["best", "--study", "e", "--results-dir", str(evaluated), "--json"], capsys)
    shown = json.loads(out)
    assert shown["test_reads"] == 2 and [e["test_reads"] for e in shown["evaluations"]] == [1, 2]
    best = store.trials.top("e", 1)[0]  # how it trained, beside what it asked: its epochs and why fewer
    assert (shown["best_trial"]["epochs"], shown["best_trial"]["reason"]) == (best.epochs, best.reason)
    code, out, err = run_main(["best", "--study", "e", "--results-dir", str(evaluated)], capsys)
    assert code == 0 and "2 evaluations, the split read 2 times" in out


def test_a_nan_failure_is_shown_in_the_leaderboard(tmp_path, capsys):
    space = TINY_SPACE.read_text().replace("  learning_rate: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}",
                                           "  learning_rate: 10.0").replace(
        "  l2: {type: float, low: 1.0e-6, high: 1.0e-4, log: true}", "  l2: 1.0").replace(
        "  optimizer: {type: categorical, choices: [adam, sgd]}", "  optimizer: sgd").replace(
        "  batch_norm: {type: bool}", "  batch_norm: false")
    (tmp_path / "nan.yaml").write_text(space)
    code, _, err = run_main(["search", "--space", str(tmp_path / "nan.yaml"), "--study", "n", "--trials", "3",
                             "--epochs", "1", "--results-dir", str(tmp_path), "--no-ensemble", "--jobs", "1",
                             "--seed", "0", "--max-failures", "2", "--in-process"], capsys)
    assert code == 1 and "2 trials failed in a row" in err
    code, out, err = run_main(["leaderboard", "--study", "n", "--results-dir", str(tmp_path)], capsys)
    assert code == 0 and "recent failed trials" in out and "training loss became nan at epoch 1" in out


def test_a_trial_whose_heartbeats_stopped_on_another_machine_is_failed(tmp_path, capsys, monkeypatch):
    """Its worker ran elsewhere (no pid check can see it): only the heartbeats tell. A live
    worker on this machine whose heartbeats are as late (starved of CPU) keeps its trial until
    its process ends."""
    import subprocess
    import threading
    import time

    from tuner.store.workers import this_worker

    monkeypatch.setenv("TUNE_HEARTBEAT_SECONDS", "1")
    code, _, err = _search(tmp_path, capsys, "--seed", "0", trials=1)
    assert code == 0, err
    store = SearchStore(None, tmp_path, heartbeat=True)
    elsewhere = store.trials.begin("p", {"depth": 1}, {"worker": {"host": "elsewhere", "boot": "x", "pid": 1}})
    alive = subprocess.Popen(["sleep", "8"])  # a live worker on this machine (not the search's own process)
    threading.Thread(target=alive.wait, daemon=True).start()  # reaped as it ends: no zombie left to look alive
    try:
        here = store.trials.begin("p", {"depth": 1}, {"worker": {**this_worker(), "pid": alive.pid}})
        for number in (elsewhere, here):
            store.db.storage.record_heartbeat(store.trials.trial_id("p", number))
        time.sleep(3.5)  # three missed heartbeats: the grace period
        # 1 finished + 1 running make 2: the search waits for the live one until its process ends.
        code, _, err = _search(tmp_path, capsys, "--seed", "0", trials=2)
    finally:
        alive.kill()
        alive.wait()
    assert code == 0, err
    by_number = {t.number: t for t in store.trials.all("p")}
    assert by_number[elsewhere].state == "failed"
    assert by_number[elsewhere].reason == "interrupted: its worker stopped sending heartbeats"
    assert by_number[here].reason == "interrupted: its worker process ended"  # not its late heartbeats
    assert sum(t.finished for t in by_number.values()) == 2


def test_an_exported_config_trains_the_best_trial_again(evaluated, tmp_path, capsys):
    code, _, err = run_main(["best", "--study", "e", "--results-dir", str(evaluated), "--export", str(tmp_path / "x")],
                            capsys)
    assert code == 0, err
    best = SearchStore(None, evaluated).trials.top("e", 1)[0]
    code, _, err = run_main(["search", "--space", str(tmp_path / "x" / "config.yaml"), "--trials", "1",
                             "--results-dir", str(tmp_path / "again"), "--no-ensemble", "--in-process"], capsys)
    assert code == 0, err
    store = SearchStore(None, tmp_path / "again")
    (study,) = store.studies.names()
    (trial,) = store.trials.all(study)
    assert trial.params == best.params and trial.state == "complete"


def test_the_leaderboard_reads_a_study_while_another_process_searches_it(tmp_path, capsys):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ENDLESS_SPACE

    args = [sys.executable, "-m", "tuner", "search", "--space", str(ENDLESS_SPACE), "--study", "live", "--trials", "5",
            "--results-dir", str(tmp_path), "--no-ensemble", "--jobs", "1", "--seed", "0", "--in-process"]
    # preexec: a shell that started the tests in the background leaves SIGINT ignored, and children
    # inherit that; restore the default so Ctrl-C reaches the search as it would in a terminal.
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline, board = time.monotonic() + 240, None
        while time.monotonic() < deadline and not (board and board["counts"]["running"] == 1):
            time.sleep(0.5)
            if (tmp_path / "tune.db").exists():
                code, out, _ = run_main(["leaderboard", "--study", "live", "--results-dir", str(tmp_path), "--json"],
                                        capsys)
                board = json.loads(out) if code == 0 else None
        assert board and board["counts"]["running"] == 1, board  # read while the other process trains it
        assert proc.poll() is None and board["leaderboard"] == []  # nothing finished yet: an empty board
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # never left running past the test
            raise
    assert proc.returncode == 130


def test_backend_chooses_the_keras_backend(tmp_path):
    import subprocess
    import sys

    pytest.importorskip("jax")
    proc = subprocess.run([sys.executable, "-m", "tuner", "search", "--space", str(TINY_SPACE), "--study", "b",
                           "--trials", "1", "--epochs", "1", "--results-dir", str(tmp_path), "--no-ensemble",
                           "--backend", "jax", "--in-process"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "training with Keras" in proc.stdout and " on jax " in proc.stdout


@pytest.fixture(scope="module")
def exported(evaluated, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "model"
    result = run_cli(["best", "--study", "e", "--results-dir", str(evaluated), "--export", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_predict_on_the_test_images_reproduces_the_recorded_test_accuracy(evaluated, exported, tmp_path, capsys):
    import csv
    import io

    from PIL import Image

    from tuner.data import load_test_data
    from tuner.ensemble.evaluate import stored_space

    store = SearchStore(None, evaluated)
    record = next(e for e in store.evaluations.all("e") if (exported / "metrics.json").read_text().count(e.when))
    x, y = load_test_data(stored_space(store, "e"), None, tmp_path / "cache")  # the test's own look at the split
    labels = json.loads((exported / "labels.json").read_text())
    for i, (image, label) in enumerate(zip(x, y)):
        (tmp_path / "images" / labels[str(label)]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0]).save(tmp_path / "images" / labels[str(label)] / f"{i}.png")
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    code, out, err = run_main(["predict", str(exported), str(tmp_path / "images"), "--csv", "--top", "2"], capsys)
    assert code == 0, err
    assert "skipped 1 file that is not a readable image" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    first = [r for r in rows if r["rank"] == "1"]
    assert len(first) == len(y) and len(rows) == 2 * len(y)
    right = sum(Path(r["file"]).parent.name == r["class"] for r in first)
    assert right / len(y) == pytest.approx(record.test[record.final]["accuracy"], abs=1e-9)


def test_predict_says_what_it_left_out_and_takes_the_best_trial_alone(exported, tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(np.full((8, 8), 90, np.uint8)).save(folder / "a.png")
    Image.fromarray(np.full((8, 8), 10, np.uint8)).save(folder / "sub" / "b.png")
    Image.fromarray(np.full((8, 8), 10, np.uint8)).save(folder / "..c.png")  # hidden, as ls -a shows it
    (folder / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (folder / "again.png").symlink_to(folder / "a.png")
    (tmp_path / "elsewhere").mkdir()
    Image.fromarray(np.full((8, 8), 50, np.uint8)).save(tmp_path / "elsewhere" / "c.png")
    (folder / "linked").symlink_to(tmp_path / "elsewhere")  # followed
    (folder / "sub" / "up").symlink_to(folder)  # a loop: each real folder is walked once
    code, out, err = run_main(["predict", str(exported), str(folder), str(folder / "a.png"), str(folder), "--csv"], capsys)
    assert code == 0, err
    assert [row.split(",")[0] for row in out.splitlines()[1:]] == [str(folder / "a.png"), str(folder / "linked" / "c.png"),
                                                                   str(folder / "sub" / "b.png")]
    assert "skipped 1 folder entry that is not a file (a dangling link, a pipe, a folder that cannot be read; e.g. " + \
        str(folder / "gone.png") in err
    assert "3 files named more than once, predicted once" in err  # a.png, c.png and b.png; not the arguments
    assert "left out 1 hidden file (names starting with '.')" in err
    alone = run_main(["predict", str(exported / "best_trial.keras"), str(folder / "a.png"), "--json", "--top", "10"], capsys)
    ensemble = run_main(["predict", str(exported), str(folder / "a.png"), "--json", "--top", "10"], capsys)
    assert alone[0] == ensemble[0] == 0 and "not the model this export recorded" not in alone[2]
    assert json.loads(alone[1]) != json.loads(ensemble[1])  # the best trial's own probabilities
    code, out, err = run_main(["predict", str(exported / "other.keras"), str(folder / "a.png")], capsys)
    assert code == 2 and "other.keras: no such file" in err
    (tmp_path / "lone").mkdir()
    (tmp_path / "lone" / "model.keras").write_bytes(b"junk")  # not an export: no "old export" advice
    code, out, err = run_main(["predict", str(tmp_path / "lone" / "model.keras"), str(folder / "a.png")], capsys)
    assert code == 2 and "lone: no labels.json (not a folder written by `tune best --export`)" in err, err


def test_predict_json_and_csv_name_each_file_as_it_is(exported, tmp_path, capsysbinary):
    """A real tab and a written backslash-t printed alike, and a name that is not UTF-8 as the
    text \\xff (a file that does not exist)."""
    import csv
    import io
    import os

    from PIL import Image

    folder = tmp_path / "named"
    folder.mkdir()
    names = [b"back\\tslash.png", b"back\tslash.png", b"bad\xff.png", b"new\nline,\"q\".png"]
    for name in names:
        Image.fromarray(np.full((8, 8), 90, np.uint8)).save(os.path.join(os.fsencode(folder), name), format="PNG")
    wanted = sorted(os.fsencode(folder) + b"/" + name for name in names)
    outputs = {}
    for how in ("--json", "--csv"):
        code, out, err = run_main(["predict", str(exported), str(folder), how], capsysbinary)
        assert code == 0, err
        outputs[how] = out.decode("utf-8", "surrogateescape")
    assert sorted(os.fsencode(p["file"]) for p in json.loads(outputs["--json"])) == wanted
    rows = list(csv.reader(io.StringIO(outputs["--csv"], newline="")))[1:]
    assert sorted(os.fsencode(r[0]) for r in rows) == wanted


def test_predict_names_its_classes_and_refuses_what_it_cannot_read_in_one_line(exported, tmp_path, capsys):
    import shutil

    from PIL import Image

    Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(tmp_path / "big_colour.jpg")  # resized, made grey
    code, out, err = run_main(["predict", str(exported), str(tmp_path / "big_colour.jpg"), "--json", "--top", "3"], capsys)
    shown = json.loads(out)
    names = set(json.loads((exported / "labels.json").read_text()).values())
    assert code == 0 and len(shown) == 1 and len(shown[0]["top"]) == 3 and {t["class"] for t in shown[0]["top"]} <= names
    assert shown[0]["top"][0]["probability"] >= shown[0]["top"][1]["probability"] >= shown[0]["top"][2]["probability"]
    no_labels = tmp_path / "no_labels"
    shutil.copytree(exported, no_labels)
    (no_labels / "labels.json").unlink()
    (tmp_path / "text.txt").write_text("x")

    def broken(name: str, file: str, text: str | bytes) -> str:
        folder = tmp_path / name
        shutil.copytree(exported, folder)
        (folder / file).write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(folder)

    spec = json.loads((exported / "input.json").read_text())
    cases = [
        ([broken("truncated", "model.keras", (exported / "model.keras").read_bytes()[:3000])], "not a readable Keras model"),
        ([broken("junk", "model.keras", b"")], "not a readable Keras model"),
        ([broken("other_size", "input.json", json.dumps({**spec, "height": 28, "width": 28}))], "the model takes (8, 8, 1)"),
        ([broken("colour", "input.json", json.dumps({**spec, "channels": 3}))], "the model takes (8, 8, 1)"),
        ([broken("huge", "input.json", json.dumps({**spec, "height": 1000000, "width": 1000000}))], "not what `tune best"),
        ([broken("infinite", "input.json", '{"height": 1e400, "width": 8, "channels": 1}')], "not what `tune best"),
        ([broken("fractional", "input.json", json.dumps({**spec, "height": 8.9}))], "not what `tune best"),
        ([broken("boolean", "input.json", json.dumps({**spec, "channels": True}))], "input.json: not what `tune best"),
        ([broken("list_label", "labels.json", json.dumps({str(i): [i] for i in range(10)}))], "labels.json: not what `tune best"),
        ([broken("off_by_one", "labels.json", json.dumps({str(i + 1): "c" for i in range(10)}))], "labels.json: not what"),
        ([broken("few_labels", "labels.json", json.dumps({"0": "a", "1": "b"}))], "gives 10 outputs"),
    ]
    for (folder,), expected in cases:
        code, out, err = run_main(["predict", folder, str(tmp_path / "big_colour.jpg")], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and out == "" and len(lines) == 1 and expected in lines[-1], (folder, err)
    swapped = broken("swapped", "model.keras", (exported / "best_trial.keras").read_bytes())
    code, out, err = run_main(["predict", swapped, str(tmp_path / "big_colour.jpg")], capsys)
    assert code == 0 and "is not the model this export recorded" in err
    for args, expected in [
        ([str(exported), "/dev/null"], "/dev/null: not a regular file or folder"),
        ([str(tmp_path), str(tmp_path / "big_colour.jpg")], "no model.keras file here"),
        ([str(tmp_path / "nope"), str(tmp_path / "big_colour.jpg")], "nope: no such file or folder"),
        ([str(no_labels), str(tmp_path / "big_colour.jpg")], "no labels.json (an export made before class names"),
        ([str(exported), str(tmp_path / "missing.png")], "missing.png: no such file or folder"),
        ([str(exported), str(tmp_path / "text.txt")], "no readable image among 1 file (damaged, not an image, or over "
                                                     "Pillow's"),  # an over-large image alone was given no reason
        ([str(exported), str(tmp_path / "big_colour.jpg"), "--json", "--csv"], "--json and --csv: choose one"),
    ]:
        code, out, err = run_main(["predict", *args], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and out == "" and len(lines) == 1 and expected in lines[-1], (args, err)


# `tune ensemble --reevaluate` in a process of its own, a SIGTERM sent to itself at a moment: while
# the models are saved (before the record names their folder), or while the record is written.
SIGNALLED_ENSEMBLE = r"""
import os, signal, sys
import tuner.ensemble.evaluate as evaluate
from tuner.cli import main
from tuner.store.evaluations import Evaluations

def signal_now():
    os.kill(os.getpid(), signal.SIGTERM)

if sys.argv[1] == "saving":
    def saving(store, study, selection, refit, x, y, names, folder):
        (folder / "model.keras").write_bytes(b"half")
        signal_now()
        signal.pause()
    evaluate._score_and_save = saving
else:
    add = Evaluations.add
    def recording(self, name, evaluation):
        signal_now()  # held until the record is written and its folder kept
        add(self, name, evaluation)
    Evaluations.add = recording
main(sys.argv[2:])
"""


@pytest.mark.parametrize("moment, recorded", [("saving", False), ("recording", True)])
def test_an_interrupted_evaluation_leaves_its_folder_only_with_its_record(evaluated, tmp_path, moment, recorded):
    """SIGTERM while the models were saved left their folder, named by no record, until the next
    evaluation; while the record is written, the record and its folder are kept together."""
    import shutil
    import subprocess
    import sys

    results = tmp_path / "results"
    shutil.copytree(evaluated, results)
    store = SearchStore(None, results)
    before = len(store.evaluations.all("e"))
    proc = subprocess.run([sys.executable, "-c", SIGNALLED_ENSEMBLE, moment, "ensemble", "--study", "e",
                           "--results-dir", str(results), "--reevaluate"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 143 and proc.stderr.startswith("error: interrupted (SIGTERM)"), proc.stderr[-2000:]
    evaluations = store.evaluations.all("e")
    assert len(evaluations) == before + recorded
    named = {(results / "e" / entry.path).parent.name for e in evaluations for entry in e.files.values()}
    assert {p.name for p in store.evaluations.folder("e").iterdir()} == named


def _swapped_test_images(monkeypatch) -> None:
    """The test split as loaded from now on: one image replaced by another (of its class or not,
    the counts per class stay)."""
    import tuner.data

    load = tuner.data.load_test_data

    def swapped(*args, **kwargs):
        x, y = load(*args, **kwargs)
        x = x.copy()
        x[0] = x[1]
        return x, y

    monkeypatch.setattr(tuner.data, "load_test_data", swapped)


def _study_as_made_before_the_test_fingerprint(store: SearchStore, study: str) -> None:
    meta = store.studies.attr(study, "tune")
    meta["split"].pop("test_fingerprint")
    store.studies.set_attr(study, "tune", meta)


@pytest.mark.parametrize("made_before", [False, True], ids=["fingerprinted when made", "at the first evaluation"])
def test_an_evaluation_on_other_test_images_is_refused(evaluated, tmp_path, capsys, monkeypatch, made_before):
    """A test image swapped for another of its class kept every count the study compares: the
    evaluation ran and was recorded beside the first, as if both had scored one test set. A study
    made before its split's test fingerprint was recorded has it from its first evaluation."""
    import shutil

    results = tmp_path / "results"
    shutil.copytree(evaluated, results)
    store = SearchStore(None, results)
    if made_before:
        _study_as_made_before_the_test_fingerprint(store, "e")
        assert run_main(["ensemble", "--study", "e", "--results-dir", str(results), "--reevaluate"], capsys)[0] == 0
        assert store.evaluations.test_fingerprint("e") is not None  # recorded by that evaluation
    else:
        assert store.studies.meta("e")["split"]["test_fingerprint"] is not None  # recorded by the search
    before = store.evaluations.latest("e")
    _swapped_test_images(monkeypatch)
    code, out, err = run_main(["ensemble", "--study", "e", "--results-dir", str(results), "--reevaluate"], capsys)
    assert code == 2 and err.count("\n") == 1 and "the test split's images are not the ones the study was made " \
                                                  "with" in err, err
    assert store.evaluations.latest("e") == before  # nothing recorded
    monkeypatch.undo()
    assert run_main(["ensemble", "--study", "e", "--results-dir", str(results), "--reevaluate"], capsys)[0] == 0


def test_a_test_split_changed_before_the_first_evaluation_is_refused(tmp_path, capsys, monkeypatch):
    """Searched without the ensemble step, then its test split changed, every count per class kept:
    the first evaluation scored the other images as the study's (the fingerprint came with it)."""
    results = search_once(tmp_path / "results", "n", "--in-process", "--no-ensemble")
    _swapped_test_images(monkeypatch)
    code, out, err = run_main(["ensemble", "--study", "n", "--results-dir", str(results)], capsys)
    assert code == 2 and "the test split's images are not the ones the study was made with" in err, err
    assert SearchStore(None, results).evaluations.all("n") == []


@pytest.mark.parametrize("check, said_as", [([], "warn  data: reading: skipped 1 file"), (["--no-check"], "warning: skipped 1 file")])
def test_a_file_the_reader_skipped_is_said_once_with_or_without_the_checks(check, said_as, tmp_path, capsys,
                                                                          monkeypatch):
    """The checks' "data: reading" line named the skipped file, then the search's start said it
    again as a warning; without the checks the warning is the only place it is said."""
    from PIL import Image

    from sklearn.datasets import load_digits

    digits = load_digits()
    for i in range(60):
        folder = tmp_path / "images" / f"class{digits.target[i] % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((digits.images[i] * 15).astype(np.uint8)).save(folder / f"{i}.png")
    (tmp_path / "images" / "class0" / "notes.txt").write_text("not an image")
    monkeypatch.setenv("TUNE_CHECK", "1")  # the suite turns them off
    code, out, err = run_main(["search", "--space", str(TINY_SPACE), "--data", str(tmp_path / "images"), "--study", "f",
                               "--trials", "1", "--epochs", "1", "--results-dir", str(tmp_path / "results"),
                               "--no-ensemble", "--jobs", "1", "--in-process", *check], capsys)
    assert code == 0, err
    said = [line for line in (out + err).splitlines() if "not readable as an image" in line]
    assert len(said) == 1 and said[0].startswith(said_as), said


def test_a_study_whose_classes_were_named_otherwise_is_not_evaluated(tmp_path, capsys):
    """A study made when a folder under a dataset's space took the dataset's class names ("0".."9"
    for the folders eight and five): its evaluation scored the folder's names against them (every
    per-class test figure "-", the export's labels.json disagreeing with its own tables)."""
    from PIL import Image

    from sklearn.datasets import load_digits

    digits = load_digits()
    for i in np.flatnonzero(np.isin(digits.target, (5, 8)))[:120]:
        folder = tmp_path / "images" / ("five" if digits.target[i] == 5 else "eight")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((digits.images[i] * 15).astype(np.uint8)).save(folder / f"{i}.png")
    where = ["--data", str(tmp_path / "images"), "--results-dir", str(tmp_path / "results")]
    code, _, err = run_main(["search", "--space", str(TINY_SPACE), "--study", "f", "--trials", "1", "--epochs", "1",
                             "--no-ensemble", "--jobs", "1", "--in-process", *where], capsys)
    assert code == 0, err
    store = SearchStore(None, tmp_path / "results")
    meta = store.studies.attr("f", "tune")
    assert meta["split"]["class_names"] == ["eight", "five"]
    meta["split"]["class_names"] = [str(i) for i in range(10)]  # as the earlier tune recorded it
    store.studies.set_attr("f", "tune", meta)
    before = snapshot(tmp_path / "results")
    code, out, err = run_main(["best", "--study", "f", "--export", str(tmp_path / "export"), *where], capsys)
    assert code == 2 and err.count("\n") == 1 and 'names its classes ("eight", "five"), the study ("0", "1"' in err, err
    assert "nothing was evaluated" in err and not (tmp_path / "export").exists()
    assert snapshot(tmp_path / "results") == before
