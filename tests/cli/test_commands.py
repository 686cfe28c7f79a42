"""The command line end to end, and a table of hostile inputs: each one line, exit 2, no
traceback, and the existing study untouched."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_SPACE, run_main, search_once, snapshot
from tests.data.test_sources import make_folder


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    """A results folder holding one finished study, 'existing' (2 trials of 1 epoch)."""
    return search_once(tmp_path_factory.mktemp("cli") / "results", "existing", "--no-ensemble")


def count_trials(results: Path) -> int:
    from tuner.store import SearchStore

    return len(SearchStore(None, results).trials.all("existing"))


def test_help_is_fast_and_explains(capsys):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "tuner", "search", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--trials" in proc.stdout and "--engine" in proc.stdout
    proc = subprocess.run([sys.executable, "-c", "import tuner.cli, sys; tuner.cli._register(); "
                           "print(any(m.startswith(('keras', 'tensorflow', 'optuna')) for m in sys.modules))"],
                          capture_output=True, text=True)
    assert proc.stdout.strip() == "False"  # no heavy import behind `tune --help` (its speed: a benchmark)


def test_spaces_lists_and_shows(capsys):
    code, out, _ = run_main(["spaces"], capsys)
    assert code == 0 and all(name in out for name in ("digits", "mnist", "fashion_mnist", "cifar10", "folder"))
    code, out, err = run_main(["spaces", "cifar10"], capsys)
    assert code == 0 and "lr_schedule" in out and "searched" in err


@pytest.mark.parametrize("name", ["folder", "digits", "cifar10"])
def test_a_shown_space_is_a_space_file_on_stdout(name, capsys, tmp_path):
    """`tune spaces folder > my.yaml` gives the file, byte for byte, which loads as a space."""
    from tuner.space.files import load_space

    code, out, err = run_main(["spaces", name], capsys)
    assert code == 0 and out == open(load_space(name).source).read()
    (tmp_path / "my.yaml").write_text(out)
    assert load_space(str(tmp_path / "my.yaml")).fingerprint() == load_space(name).fingerprint()
    assert "searched" in err and "fingerprint" in err


@pytest.mark.slow
def test_search_resume_leaderboard_studies_best(study_dir, capsys, tmp_path):
    args = ["--results-dir", str(study_dir)]
    code, out, err = run_main(["search", "--space", str(TINY_SPACE), "--study", "existing", "--trials", "3",
                               "--epochs", "1", "--seed", "0", "--jobs", "1", *args], capsys)
    assert code == 0, err
    assert "trial 2 started" in out and "trial 0 started" not in out  # resumed: one new trial only
    assert "held-out test set" in out  # the ensemble step ran at the end
    assert count_trials(study_dir) == 3
    code, out, _ = run_main(["leaderboard", "--study", "existing", "--json", *args], capsys)
    board = json.loads(out)
    assert code == 0 and board["counts"]["complete"] + board["counts"]["pruned"] == 3
    values = [r["val_accuracy"] for r in board["leaderboard"]]
    assert values == sorted(values, reverse=True)
    times = board["median_trial_times"]  # where a trial's time goes, also printed under the table
    assert times["trials"] == board["counts"]["complete"] and times["wall"] > 0 and times["compile"] >= 0
    assert times["training"] + times["compile"] + times["validation"] <= times["wall"] * 1.5
    code, out, _ = run_main(["leaderboard", "--study", "existing", *args], capsys)
    assert "per trial, medians of" in out and "compile" in out
    code, out, _ = run_main(["studies", "--json", *args], capsys)
    assert code == 0 and json.loads(out)[0]["study"] == "existing"
    code, out, _ = run_main(["best", "--study", "existing", *args], capsys)
    assert code == 0 and "recorded evaluation" in out  # shown from the record: the test set is not read again
    code, out, _ = run_main(["best", "--study", "existing", "--export", str(tmp_path / "exp"), *args], capsys)
    assert code == 0 and (tmp_path / "exp" / "model.keras").is_file()


@pytest.mark.slow
def test_ensemble_refit_is_shown_recorded_and_exported(study_dir, capsys, tmp_path):
    args = ["--study", "existing", "--results-dir", str(study_dir)]
    code, out, err = run_main(["ensemble", "--refit", *args], capsys)
    assert code == 0, err
    assert "refit 1/" in out and "ensemble refit on train+val" in out and "refit gain over the ensemble" in out
    code, out, _ = run_main(["ensemble", "--refit", *args], capsys)
    assert code == 0 and "recorded evaluation" in out and "refit 1/" not in out  # recorded: not trained again
    code, _, _ = run_main(["best", "--export", str(tmp_path / "exp"), *args], capsys)
    readme = (tmp_path / "exp" / "README.md").read_text()
    assert code == 0 and "each member trained again on train + validation" in readme


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _tar(path: Path, name: str, kind: str = "file") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo(name)
        if kind == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(info)
        else:
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
    return path


def _space(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


_PIXELS = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
GOOD = {"x_train": _PIXELS[:40], "y_train": np.arange(40) % 10, "x_test": _PIXELS[40:], "y_test": np.arange(10)}

# (name, extra arguments built from a temporary folder, text the one line must contain)
CASES = [
    ("unknown space", lambda d: ["--space", "nope"], "no space 'nope'"),
    ("invalid yaml", lambda d: ["--space", str(_space(d / "s.yaml", "name: [x\n"))], "invalid YAML"),
    ("unknown key", lambda d: ["--space", str(_space(d / "s.yaml", "name: x\ndataset: digits\nparams: {}\nfoo: 1\n"))], "foo: unknown key"),
    ("wrong type", lambda d: ["--space", str(_space(d / "s.yaml", "name: x\ndataset: digits\nparams: {depth: two}\n"))], "is not a whole number"),
    ("empty choices", lambda d: ["--space", str(_space(d / "s.yaml", "name: x\ndataset: digits\nparams: {optimizer: {type: categorical, choices: []}}\n"))], "choices"),
    ("low > high", lambda d: ["--space", str(_space(d / "s.yaml", "name: x\ndataset: digits\nparams: {depth: {type: int, low: 2, high: 1}}\n"))], "greater than high"),
    ("unknown param type", lambda d: ["--space", str(_space(d / "s.yaml", "name: x\ndataset: digits\nparams: {depth: {type: big}}\n"))], "unknown type"),
    ("unknown dataset", lambda d: ["--space", str(_space(d / "s.yaml", "name: x\ndataset: svhn\nparams: {}\n"))], "dataset"),
    ("space not a mapping", lambda d: ["--space", str(_space(d / "s.yaml", "- a\n- b\n"))], "must be a YAML mapping"),
    ("zero trials", lambda d: ["--trials", "0"], "--trials"),
    ("negative trials", lambda d: ["--trials", "-3"], "--trials"),
    ("trials not a number", lambda d: ["--trials", "many"], "--trials"),
    ("zero epochs", lambda d: ["--epochs", "0"], "--epochs"),
    ("negative timeout", lambda d: ["--timeout", "-1"], "--timeout"),
    ("unknown engine", lambda d: ["--engine", "ray"], "--engine"),
    ("zero jobs", lambda d: ["--jobs", "0"], "--jobs"),
    ("several jobs with keras-tuner", lambda d: ["--engine", "keras-tuner", "--jobs", "2"], "--jobs needs --engine optuna"),
    ("a bad --set value", lambda d: ["--set", "class_weight=foo"], "with --set class_weight, --epochs: params.class_weight: 'foo' is not allowed"),
    ("unknown sampler", lambda d: ["--sampler", "cmaes"], "'cmaes' is not one of 'bayesian', 'gp', 'hyperband', 'random', 'tpe'"),
    ("sampler of the other engine", lambda d: ["--engine", "keras-tuner", "--sampler", "tpe"], "has no sampler 'tpe'"),
    ("unknown pruner", lambda d: ["--pruner", "asha"], "'asha' is not one of 'hyperband', 'median', 'none'"),
    ("pruner with keras-tuner", lambda d: ["--engine", "keras-tuner", "--pruner", "median"], "has no pruner 'median'"),
    ("unreachable storage with password", lambda d: ["--storage", "postgresql://tune:hunter2@127.0.0.1:9/tune"], "cannot open storage postgresql://tune:***@127.0.0.1:9/tune"),
    ("storage not a URL", lambda d: ["--storage", "not a url"], "storage"),
    ("missing data path", lambda d: ["--data", str(d / "missing")], "no such file"),
    ("corrupt npz", lambda d: ["--data", str(_space(d / "c.npz", "garbage")), "--space", "mnist"], "not a readable .npz"),
    ("truncated npz", lambda d: ["--data", str(_truncated(d)), "--space", "mnist"], "not a readable .npz"),
    ("npz header claiming petabytes", lambda d: ["--data", str(_huge_header(d)), "--space", "mnist"],
     "do not fit in this machine's memory"),
    ("archive with ../", lambda d: ["--data", str(_tar(d / "a.tar.gz", "../x.png")), "--space", "folder"], "outside the folder"),
    ("archive with absolute path", lambda d: ["--data", str(_tar(d / "a.tar.gz", "/tmp/x.png")), "--space", "folder"], "outside the folder"),
    ("archive with symlink", lambda d: ["--data", str(_tar(d / "a.tar.gz", "a/l.png", "link")), "--space", "folder"], "is a link"),
    ("zip with ../", lambda d: ["--data", str(_zip(d)), "--space", "folder"], "outside the folder"),
    ("all images unreadable", lambda d: ["--data", str(make_folder(d / "f", n=0, broken=2)), "--space", "folder"], "no readable images"),
    ("one class", lambda d: ["--data", str(make_folder(d / "f", classes=("cat",))), "--space", "folder"], "at least 2 class"),
    ("labels out of range", lambda d: ["--data", str(_npz(d / "l.npz", **{**GOOD, "y_train": np.arange(40)})), "--space", "mnist"], "out of range"),
    ("negative labels", lambda d: ["--data", str(_npz(d / "l.npz", **{**GOOD, "y_train": -np.ones(40, int)})), "--space", "mnist"], "labels must be 0 or more"),
    ("dataset does not match the space", lambda d: ["--data", str(_npz(d / "m.npz", **GOOD)), "--space", "cifar10"], "expects 32x32x3"),
    ("folder space without data", lambda d: ["--space", "folder"], "needs --data"),
    ("--set without =", lambda d: ["--set", "optimizer"], "expected NAME=VALUE"),
    ("--set unknown parameter", lambda d: ["--set", "lr=0.1"], "params.lr: unknown parameter"),
    ("--set value not allowed", lambda d: ["--set", "optimizer=lion"], "'lion' is not allowed"),
    ("--set breaks a domain rule", lambda d: ["--set", "flip=true"], "must not be mirrored"),
    ("--refit without the ensemble step", lambda d: ["--refit"], "needs the ensemble step"),
    ("same study, other space", lambda d: ["--space", "digits"], "exists with a different space"),
]


def _truncated(d: Path) -> Path:
    full = _npz(d / "full.npz", **GOOD)
    (d / "t.npz").write_bytes(full.read_bytes()[:200])
    return d / "t.npz"


def _huge_header(d: Path) -> Path:
    """A 1-KB .npz whose x_train header claims (99999999999999, 28, 28) bytes (it read "out of memory", exit 1)."""
    import io

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                  "shape": (99999999999999, 28, 28)})
    with zipfile.ZipFile(d / "huge.npz", "w") as zf:
        zf.writestr("x_train.npy", header.getvalue() + b"\0" * 64)
        for name, value in GOOD.items():
            if name != "x_train":
                buffer = io.BytesIO()
                np.save(buffer, value)
                zf.writestr(f"{name}.npy", buffer.getvalue())
    return d / "huge.npz"


def _zip(d: Path) -> Path:
    with zipfile.ZipFile(d / "a.zip", "w") as zf:
        zf.writestr("../../x.png", b"x")
    return d / "a.zip"


@pytest.mark.slow
@pytest.mark.parametrize("name, extra, expected", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_one_line_exit_2_and_leaves_the_study(name, extra, expected, study_dir, tmp_path, capsys):
    before = snapshot(study_dir)
    args = ["search", "--space", str(TINY_SPACE), "--study", "existing", "--epochs", "1", "--trials", "5",
            "--results-dir", str(study_dir), "--no-ensemble", "--jobs", "1"]
    code, out, err = run_main(args + extra(tmp_path), capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], err
    assert "Traceback" not in out + err and "hunter2" not in out + err
    assert snapshot(study_dir) == before  # nothing written: no file, no record, no trial


def test_reliability_counts_the_hostile_cases_there_are():
    text = (Path(__file__).resolve().parents[2] / "RELIABILITY.md").read_text()
    assert len(CASES) >= 30 and f"runs {len(CASES)} malformed" in text


def test_unknown_study_for_leaderboard(study_dir, capsys):
    code, _, err = run_main(["leaderboard", "--study", "nope", "--results-dir", str(study_dir)], capsys)
    assert code == 2 and "no study 'nope'" in err and "existing" in err


@pytest.mark.slow
def test_search_says_which_trials_are_start_points(tmp_path, capsys):
    import yaml

    space = yaml.safe_load(TINY_SPACE.read_text())
    space["start"] = [{"width": 6, "optimizer": "adam"}]
    path = tmp_path / "start.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    code, out, err = run_main(["search", "--space", str(path), "--trials", "2", "--epochs", "1", "--no-ensemble",
                               "--in-process", "--jobs", "1", "--seed", "0", "--results-dir", str(tmp_path / "r")], capsys)
    assert code == 0, err
    (first,) = [line for line in out.splitlines() if line.startswith("trial 0 started")]
    assert first.startswith("trial 0 started (start point 1/1): ") and " w6 " in first and " adam " in first
    assert "trial 1 started: " in out


@pytest.mark.slow  # starts `tune` in a process of its own, as a shell does
def test_shell_completion_offers_the_choices(monkeypatch):
    import os
    import subprocess
    import sys

    env = {**os.environ, "_TUNE_COMPLETE": "bash_complete", "COMP_WORDS": "tune search --sampler ", "COMP_CWORD": "3"}
    out = subprocess.run([sys.executable, "-m", "tuner"], env=env, capture_output=True, text=True, check=True).stdout
    assert [line.split(",")[1] for line in out.split()] == ["bayesian", "gp", "hyperband", "random", "tpe"]
    env.update(_TUNE_COMPLETE="bash_source")
    script = subprocess.run([sys.executable, "-m", "tuner"], env=env, capture_output=True, text=True, check=True).stdout
    assert "_tune_completion" in script and "complete -o nosort -F _tune_completion tune" in script


RESUMED_CHOICES = [  # (the study's record, --sampler, --pruner, --timeout): the sampler and pruner that run, or the refusal
    ({"sampler": "random", "pruner": "median"}, None, None, None, ("random", "median")),
    ({"sampler": "tpe", "pruner": "hyperband"}, None, None, None, ("tpe", "hyperband")),  # made with --timeout
    ({"sampler": "tpe", "pruner": "median"}, None, None, 60.0, ("tpe", "median")),  # not hyperband: the study's own
    ({"sampler": "tpe", "pruner": "median"}, "tpe", "median", None, ("tpe", "median")),
    ({"sampler": "tpe", "pruner": "median"}, "random", None, None, "was searched with sampler tpe; it cannot change to random"),
    ({"sampler": "tpe", "pruner": "median"}, None, "none", None, "was searched with pruner median; it cannot change to none"),
    ({"engine": "keras-tuner", "sampler": "bayesian", "pruner": "none"}, "hyperband", None, None,
     "was searched with sampler bayesian"),  # KerasTuner's oracle could not reload: five workers died
]


@pytest.mark.parametrize("meta, sampler, pruner, timeout, expected", RESUMED_CHOICES)
def test_a_resumed_study_keeps_its_sampler_and_pruner(meta, sampler, pruner, timeout, expected):
    """A resume with another --sampler ran it while the study's record still named the first."""
    from dataclasses import replace

    from tuner.cli.search import _as_the_study_was
    from tuner.errors import UserError
    from tuner.search.engines import budget_pruner
    from tuner.search.request import SearchRequest
    from tuner.space.files import load_space

    meta = {"engine": "optuna", **meta}
    request = SearchRequest(load_space(str(TINY_SPACE)), "s", 1, meta["engine"], sampler, pruner, timeout)
    if isinstance(expected, str):
        with pytest.raises(UserError, match=expected):
            _as_the_study_was(request, meta)
        return
    resumed = _as_the_study_was(request, meta)
    resumed = replace(resumed, pruner=budget_pruner(resumed.engine, resumed.pruner, timeout))
    assert (resumed.sampler, resumed.pruner) == expected


@pytest.mark.parametrize("read_only", ["tune.db", ".", "existing"])
def test_an_evaluation_that_could_not_be_recorded_reads_nothing(read_only, study_dir, capsys, monkeypatch):
    """On a read-only copy of a results folder, `ensemble --reevaluate` read the test split, then
    failed to record it (exit 1, an internal-looking database error)."""
    import os

    from tuner.store import SearchStore

    refused = (study_dir / read_only).resolve()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path).resolve() == refused and mode & os.W_OK
                        else real_access(path, mode, **kw))
    before = snapshot(study_dir), SearchStore(None, study_dir).evaluations.test_reads("existing")
    code, out, err = run_main(["ensemble", "--reevaluate", "--results-dir", str(study_dir), "--study", "existing"], capsys)
    assert code == 2 and err.count("\n") == 1 and "cannot write to the" in err and str(refused) in err, err
    assert (snapshot(study_dir), SearchStore(None, study_dir).evaluations.test_reads("existing")) == before
