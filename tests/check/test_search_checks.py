"""`tune search` runs the checks before a new study's first trial: a failed one stops it with its
line and nothing searched; passed ones are recorded with the study and shown by `tune report`."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import TINY_SPACE, run_main
from tuner.store import SearchStore

pytestmark = pytest.mark.slow


@pytest.fixture
def checking(monkeypatch):
    monkeypatch.delenv("TUNE_CHECK")  # the default: checks on


def _leaky_digits(path, digits_data):
    """The digits as a .npz whose test split is a copy of 40 training images."""
    data = digits_data[0]
    np.savez(path, x_train=data.x_train, y_train=data.y_train, x_test=data.x_train[:40], y_test=data.y_train[:40])
    return path


def test_a_failed_check_stops_the_search_before_any_trial(checking, results, tmp_path, digits_data, capsys):
    """Workers in processes (TensorFlow's default): the checks run in a process of their own."""
    leaky = _leaky_digits(tmp_path / "leaky.npz", digits_data)
    code, out, err = run_main(["search", "--space", str(TINY_SPACE), "--data", str(leaky), "--trials", "1",
                               "--results-dir", str(results), "--no-ensemble"], capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("error: check failed: data: copies across splits: ") and "nothing was searched" in err
    assert "40 of 40 test images copy an earlier split's" in err
    assert "fail  data: copies across splits" in out  # every check was shown first
    assert SearchStore(None, results).studies.names() == []


def test_checks_are_recorded_with_the_study_and_shown_by_the_report(checking, results, tmp_path, capsys):
    code, out, err = run_main(["search", "--space", str(TINY_SPACE), "--trials", "1", "--epochs", "1", "--jobs", "1",
                               "--in-process", "--results-dir", str(results), "--no-ensemble", "--seed", "0"], capsys)
    assert code == 0, err
    checks = SearchStore(None, results).studies.checks("tiny_digits")
    assert len(checks) == 12 and {c["status"] for c in checks} == {"pass"}, checks
    assert "12 checks: 12 pass, 0 warn, 0 fail" in out
    code, out, err = run_main(["search", "--space", str(TINY_SPACE), "--trials", "2", "--epochs", "1", "--jobs", "1",
                               "--in-process", "--results-dir", str(results), "--no-ensemble", "--seed", "0"], capsys)
    assert code == 0 and "checking space" not in out  # a resumed study is not checked again
    code, out, err = run_main(["report", "--results-dir", str(results), "--no-images", "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    page = (tmp_path / "r" / "report.html").read_text()
    assert "check before the first trial" in page and "input-independent baseline" in page
    assert "its images hashed once more by the checks before the first trial" in page  # that read is said too
    assert checks[0]["evidence"].replace("'", "&#39;") in page
