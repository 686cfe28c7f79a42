"""`tune search` runs the checks before a new study's first trial: a failed one stops it with its
line and nothing searched; passed ones are recorded with the study and shown by `tune report`."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

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
    assert not (results / "tune.db").exists()  # no study, and no database either


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


def test_checks_in_their_own_process_pass_on_each_finding_as_it_comes(tiny_space, results):
    """Workers will train, so the checks run in a process of their own; the view still gets each
    finding when it is found (the data audit's seconds before the training checks' end), not all
    of them at the end."""
    import time

    from tuner.search.checks import run_first_checks
    from tuner.search.request import SearchRequest

    seen: list[tuple[float, str]] = []
    request = SearchRequest(tiny_space, "study", 1, cache_dir=results / "cache", jobs=2, isolate=True)
    findings = run_first_checks(request, lambda f: seen.append((time.monotonic(), f.check)))
    assert [check for _, check in seen] == [f.check for f in findings] and len(findings) == 12
    first_audit, last = seen[0][0], seen[-1][0]
    assert last - first_audit > 1.0  # at least the checks' Keras import lies between


def test_a_search_with_checks_and_workers_runs_and_records_them(checking, results, capsys):
    """The default on TensorFlow: the checks in their own process, the two workers started once the
    cost check has reported, released when the checks pass."""
    code, out, err = run_main(["search", "--space", str(TINY_SPACE), "--trials", "2", "--epochs", "1", "--seed", "0",
                               "--results-dir", str(results), "--no-ensemble"], capsys)
    assert code == 0, err
    assert "12 checks: 12 pass, 0 warn, 0 fail" in out and "2 worker processes" in out
    store = SearchStore(None, results)
    assert len(store.studies.checks("tiny_digits")) == 12
    assert sum(t.finished for t in store.trials.all("tiny_digits")) == 2
    logs = sorted(p.name for p in (store.artifacts.study_dir("tiny_digits") / "logs").iterdir())
    assert logs == ["worker-0.log", "worker-1.log"]


@pytest.mark.parametrize("where", [("--jobs", "1", "--in-process"), ("--jobs", "2")])
def test_checks_that_outlast_the_timeout_stop_the_search_there(checking, results, capsys, where):
    """The checks count toward --timeout: past it they stop (their process ended, or after the
    finding at hand in this process), with one line; nothing is searched or created."""
    code, out, err = run_main(["search", "--space", str(TINY_SPACE), "--trials", "2", "--timeout", "2",
                               "--results-dir", str(results), *where], capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("error: --timeout 2 s passed during the checks before the first trial (") and \
        "nothing was searched" in err, err
    assert not (results / "tune.db").exists()  # no study, and no database either


@pytest.mark.parametrize("left, fixed, epoch, stops", [
    (2.0, 3.0, 0.5, True),  # 2 s left, a trial's start alone takes 3
    (7.0, 3.0, 0.4, True),  # digits with 7 s left: the search's start took 4, and every proposal was set aside
    (13.2, 3.0, 0.5, True),
    (13.8, 3.0, 0.5, False),  # the search's start, a trial's and one epoch fit: it runs (the plan shortens trials)
    (-1.0, 0.0, 0.0, True),  # already past
    (500.0, 3.0, 400.0, False),
    # A long epoch: a quarter of it is the first trial where 7 of 20 epochs fit after it (10 + 103 + 7 * 400 + 3 s).
    (2916.0, 3.0, 400.0, False),
    (400.0, 3.0, 400.0, True),  # no room for a search after a subset: the first trial is one whole epoch
])
def test_checks_that_leave_too_little_for_a_first_trial_stop_the_search(left, fixed, epoch, stops):
    import time
    import types

    from tuner.check import COST_CHECK, Finding, Status
    from tuner.errors import SearchStopped
    from tuner.search.checks import _check_room

    space = types.SimpleNamespace(training=types.SimpleNamespace(max_epochs=20))
    request = types.SimpleNamespace(deadline=time.monotonic() + left, timeout=60.0, space=space)
    findings = [Finding("data: classes", Status.PASS, "10 classes"),
                Finding(COST_CHECK, Status.PASS, "cost", {"macs": 1e6, "epoch_seconds": epoch, "fixed_seconds": fixed})]
    if not stops:
        _check_room(request, findings)
        return
    with pytest.raises(SearchStopped, match=r"^--timeout 60 s: \d+:\d\d left after the checks, less than a first "
                                            r"trial's estimated .*; nothing was searched$"):
        _check_room(request, findings)


def test_checks_without_an_estimate_or_a_deadline_let_the_search_run():
    import types

    from tuner.check import COST_CHECK, Finding, Status
    from tuner.search.checks import _check_room

    on_a_gpu = [Finding(COST_CHECK, Status.PASS, "on gpu", {"macs": 1e6, "accelerator": 1.0})]  # no estimate there
    _check_room(types.SimpleNamespace(deadline=0.0, timeout=1.0), on_a_gpu)
    _check_room(types.SimpleNamespace(deadline=None, timeout=None), [])


def test_a_search_whose_checks_leave_no_time_for_a_trial_stops_and_creates_nothing(checking, results, capsys,
                                                                                   monkeypatch):
    """A first trial estimated at 1,000 s of start-up, a 600 s budget: after the checks the search
    stops with one line instead of setting every proposal aside in an empty study."""
    from tuner.training import cost as costs

    slow = costs.Calibration(step_seconds=0.004, work_seconds=1e-10, fixed_seconds=1000.0)
    monkeypatch.setattr(costs, "prior", lambda device, threads: slow)
    code, out, err = run_main(["search", "--space", str(TINY_SPACE), "--trials", "2", "--timeout", "600",
                               "--results-dir", str(results), "--jobs", "1", "--in-process"], capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("error: --timeout 600 s: 9:") and "less than a first trial's estimated 16:5" in err, err
    assert not (results / "tune.db").exists()  # no study, and no database either


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.floats(-100, 1e5), st.floats(0, 100), st.floats(0, 1e4), st.floats(0, 1), st.integers(1, 50))
def test_the_search_starts_exactly_when_a_first_trial_fits(left, fixed, epoch, validation_share, max_epochs):
    """A first trial: one epoch; or, when a one-epoch trial is longer than the first result's
    75 s and a third of the schedule fits after it, a quarter of its training and the whole
    validation (`tuner.search.budget`)."""
    import time
    import types

    from tuner.check import COST_CHECK, Finding, Status
    from tuner.errors import SearchStopped
    from tuner.search.checks import _check_room

    from tuner.search.checks import SEARCH_START_SECONDS

    validation = validation_share * epoch
    subset = fixed + validation + 0.25 * (epoch - validation)
    room = epoch == 0 or (left - SEARCH_START_SECONDS - subset - fixed) / epoch >= max_epochs / 3
    trial = subset if fixed + epoch > 75.0 and room else fixed + epoch
    needed = SEARCH_START_SECONDS + trial
    assume(abs(left - needed) > 0.5)  # the clock moves while this runs
    assume(epoch == 0 or abs((left - SEARCH_START_SECONDS - subset - fixed) / epoch - max_epochs / 3) > 0.01)
    space = types.SimpleNamespace(training=types.SimpleNamespace(max_epochs=max_epochs))
    request = types.SimpleNamespace(deadline=time.monotonic() + left, timeout=60.0, space=space)
    findings = [Finding(COST_CHECK, Status.PASS, "cost", {"epoch_seconds": epoch, "fixed_seconds": fixed,
                                                          "validation_seconds": validation})]
    try:
        _check_room(request, findings)
        stopped = False
    except SearchStopped as e:
        stopped = str(e).endswith("nothing was searched")
    assert stopped == (left < needed)
