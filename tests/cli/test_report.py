"""`tune report` on a real study: the page and a PNG per figure, opened in a real browser
(headless chromium): every figure decoded with a size, the screenshot not blank, no request
made for the page, and the text holding the study's own figures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from tests.conftest import search_once
from tuner.store import SearchStore

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium's own background services (time, updates, accounts) call home whatever the page
# does; a request of the page's would go anywhere else.
CHROMIUMS_OWN = ("google.com", "googleapis.com", "gvt1.com", "gstatic.com")
FIGURES = {"history", "intermediate", "importances", "slices", "times", "curves_top", "curves_members", "confusion",
           "augmented", "confidently_wrong"}


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> tuple[Path, Path]:
    results = search_once(tmp_path_factory.mktemp("report") / "results", "r", "--set", "augment=1.0", "--trials", "4", "--in-process")
    from tuner.cli import main

    with pytest.raises(SystemExit) as e:
        main(["report", "--results-dir", str(results)])
    assert e.value.code == 0
    return results, results / "r" / "report"


def test_the_report_has_every_figure_as_a_png_and_inline(reported):
    results, out = reported
    assert {p.stem for p in out.glob("*.png")} == FIGURES
    page = (out / "report.html").read_text()
    assert page.count("<img ") == len(FIGURES)
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)  # nothing to fetch
    store = SearchStore(None, results)
    record = store.evaluations.latest("r")
    assert f"{100 * record.test['ensemble']['accuracy']:.2f}%" in page and "study r" in page
    assert f"reads of the test split</td><td>{store.evaluations.test_reads('r')}" in page


def test_a_report_is_not_written_among_the_studies(reported, capsys):
    from tests.conftest import run_main

    results, _ = reported
    for out in (results, results / "r" / "trials"):
        code, stdout, err = run_main(["report", "--results-dir", str(results), "--out", str(out)], capsys)
        assert code == 2 and "inside the results folder" in err and not (out / "report.html").exists()


def test_the_figures_counted_are_the_reports_own(reported, tmp_path, capsys):
    """PNGs already in --out (a `tune check` picture, a user's) are not counted as the report's."""
    from tests.conftest import run_main

    results, _ = reported
    out = tmp_path / "shared"
    out.mkdir()
    for name in ("augmented.png", "mine.png"):
        (out / name).write_bytes(b"not tune's")
    code, stdout, err = run_main(["report", "--results-dir", str(results), "--out", str(out), "--no-images"], capsys)
    drawn = FIGURES - {"augmented", "confidently_wrong"}  # the image grids, left out
    assert code == 0 and f"({len(drawn)} figures beside it as PNG files)" in stdout + err, err
    assert (out / "mine.png").read_bytes() == b"not tune's"

def test_data_given_that_is_not_the_studys_is_refused_before_anything_is_drawn(reported, tmp_path, capsys):
    """`--data` with other data exited 0 and said so only in the page (its image grids left out)."""
    from tests.conftest import run_main

    results, _ = reported
    other = tmp_path / "other.npz"
    rng = np.random.default_rng(0)
    np.savez(other, x_train=rng.integers(0, 256, (200, 8, 8), dtype=np.uint8), y_train=np.arange(200) % 10,
             x_test=rng.integers(0, 256, (50, 8, 8), dtype=np.uint8), y_test=np.arange(50) % 10)
    out = tmp_path / "report"
    code, stdout, err = run_main(["report", "--results-dir", str(results), "--out", str(out), "--data", str(other)],
                                 capsys)
    assert code == 2 and err.count("\n") == 1 and "does not match the study's split" in err, err
    assert not out.exists()

def test_a_report_never_reads_the_test_split(reported, tmp_path, monkeypatch):
    from tuner import data

    def forbidden(*args, **kwargs):
        raise AssertionError("the report read the test split")

    monkeypatch.setattr(data, "load_test_data", forbidden)
    results, _ = reported
    from tuner.cli import main

    with pytest.raises(SystemExit) as e:
        main(["report", "--results-dir", str(results), "--out", str(tmp_path / "again")])
    assert e.value.code == 0 and (tmp_path / "again" / "report.html").is_file()


# `tune report` in a process of its own whose figures, once drawn, bring a signal: the command
# leaves as a signal makes it leave (at once, in one line).
SIGNALLED_REPORT = r"""
import os, signal, sys
import tuner.ui.report as report
from tuner.cli import main
from tuner.paths import atomic

def signalled(self):
    atomic(self.out / "whole.png", lambda tmp: tmp.write_bytes(b"png"))  # a figure written whole
    def cut(tmp):  # the next one cut short while its temporary file is written
        tmp.write_bytes(b"pn")
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))
        signal.pause()
    atomic(self.out / "cut.png", cut)

report._Pictures.render = signalled
main(sys.argv[2:])
"""


@pytest.mark.parametrize("signum, code", [("SIGTERM", 143)])  # Ctrl-C ends it the same way (`interrupts._exit_now`)
def test_an_interrupted_report_leaves_no_folder_it_made(reported, tmp_path, signum, code):
    """Interrupted while it draws: no --out folder it made is left (it used to stay, with what
    was written so far; `new/../out` made two and left one), and a folder that was there keeps what
    it held and the whole figures, without the temporary file of the one cut short."""
    import subprocess
    import sys

    results, _ = reported
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("kept")
    for out in (tmp_path / "new" / "report", tmp_path / "other" / ".." / "made", tmp_path / "mine"):
        proc = subprocess.run([sys.executable, "-c", SIGNALLED_REPORT, signum, "report", "--results-dir", str(results),
                               "--out", str(out), "--no-images"], capture_output=True, text=True, timeout=300)
        assert proc.returncode == code and proc.stderr.startswith("error: interrupted"), proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt", "whole.png"]


def test_the_default_report_folder_is_not_followed_out_of_the_results_folder(reported, tmp_path, capsys):
    """A link planted at <results>/<study>/report: the report wrote its figures where it pointed,
    over files of the same names there."""
    import shutil

    from tests.conftest import run_main

    results = tmp_path / "results"
    shutil.copytree(reported[0], results)
    shutil.rmtree(results / "r" / "report")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "history.png").write_text("mine")
    (results / "r" / "report").symlink_to(tmp_path / "outside")
    code, out, err = run_main(["report", "--results-dir", str(results), "--no-images"], capsys)
    assert code == 2 and "outside the results folder" in err and err.count("\n") == 1, err
    assert [p.name for p in (tmp_path / "outside").iterdir()] == ["history.png"]
    assert (tmp_path / "outside" / "history.png").read_text() == "mine"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh --test installs it as root "
                                             "on Debian); the report's browser check needs it")
def test_the_report_renders_offline_in_a_real_browser(reported, tmp_path):
    from PIL import Image

    _, out = reported
    page = (out / "report.html").resolve().as_uri()
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    dom = subprocess.run([*flags, f"--log-net-log={tmp_path / 'net.json'}", "--dump-dom", page], capture_output=True,
                         text=True, timeout=120).stdout
    body = re.search(r'<body data-figures="(\d+)" data-rendered="(\d+)"', dom)
    assert body and body.groups() == (str(len(FIGURES)), str(len(FIGURES))), dom[:300]  # every <img> decoded
    for name in ("The study", "The ensemble and its recorded test evaluation", "test accuracy"):  # the text
        assert name in dom
    net = (tmp_path / "net.json").read_text()
    events = json.loads(net if net.rstrip().endswith("}") else net.rstrip().rstrip(",") + "]}")["events"]
    urls = {e["params"][k] for e in events for k in ("url", "original_url") if k in e.get("params", {})}
    hosts = {urlparse(u).hostname for u in urls if urlparse(u).scheme in ("http", "https", "ws", "wss")}
    assert all(h and h.endswith(CHROMIUMS_OWN) for h in hosts), sorted(hosts)
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, "--window-size=1200,8000", f"--screenshot={shot}", page], capture_output=True, timeout=120,
                   check=True)
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert (pixels < 240).mean() > 0.05  # drawn, not a blank page


def test_importances_left_out_are_said_with_how_many_trials_rank(tmp_path):
    """With two trials the report's Hyperparameters section had no importances and no line saying why."""
    from tuner.store import SearchStore, TrialRecord
    from tuner.ui.report import _Pictures, _search

    store = SearchStore(None, tmp_path / "results", create=True)
    store.open_study("s", {})
    store.trials.add("s", TrialRecord(-1, "complete", 0.9, {}, val_loss=0.3, history={"val_loss": [0.3]}))
    sections = _search(store, "s", {}, store.trials.all("s"), _Pictures(tmp_path))
    (importance,) = [s for s in sections if s.anchor == "importances"]
    assert importance.text == ["No hyperparameter importances yet: Optuna's PED-ANOVA needs more ranked trials (1 trial "
                               "ranks here), with more than one value of some parameter among them."]
