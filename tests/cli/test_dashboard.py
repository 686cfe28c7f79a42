"""optuna-dashboard's own application, run in-process on tune's studies of both engines: it
lists the study, answers its trials with their parameters and the named objective, computes
parameter importances, and shows the test evaluation whole in the study's note."""

from __future__ import annotations

import io
import json
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest

from tests.conftest import TINY_SPACE, run_main

pytestmark = pytest.mark.slow


def _get(app, path: str) -> tuple[str, dict]:
    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update(PATH_INFO=path, REQUEST_METHOD="GET", QUERY_STRING="", **{"wsgi.input": io.BytesIO()})
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    return status[0], json.loads(body)


@pytest.fixture(scope="module", params=["optuna", "keras-tuner"])
def searched(request, tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp(f"dashboard-{request.param}")
    from tuner.cli import main

    with pytest.raises(SystemExit) as e:
        main(["search", "--space", str(TINY_SPACE), "--study", "d", "--trials", "4", "--epochs", "1", "--seed", "0",
              "--engine", request.param, "--jobs", "1", "--in-process", "--results-dir", str(results)])
    assert e.value.code == 0
    return results


def test_the_dashboard_reads_a_tune_study_whole(searched, capsys):
    from optuna_dashboard import wsgi

    from tuner.store import SearchStore

    store = SearchStore(None, searched)
    app = wsgi(store.url)
    status, listing = _get(app, "/api/studies")
    assert status.startswith("200") and [s["study_name"] for s in listing["study_summaries"]] == ["d"]
    study_id = listing["study_summaries"][0]["study_id"]
    status, detail = _get(app, f"/api/studies/{study_id}")
    assert status.startswith("200") and detail["objective_names"] == ["val_accuracy"]
    trials = store.trials.all("d")
    assert len(detail["trials"]) == len(trials) == 4
    searched_names = {k for k, v in store.studies.meta("d")["space"]["params"].items() if isinstance(v, dict)}
    for shown in detail["trials"]:
        names = {p["name"] for p in shown["params"]}
        assert names and names <= searched_names  # each trial's searched values, as Optuna parameters
    best = max((t for t in trials if t.value is not None), key=lambda t: t.value)
    assert detail["best_trials"][0]["values"] == [best.value]
    status, importances = _get(app, f"/api/studies/{study_id}/param_importances")
    assert status.startswith("200") and importances["param_importances"][0]
    record = store.evaluations.latest("d")
    note = detail["note"]["body"]
    assert f"Test evaluation of {record.when}" in note and f"{100 * record.test['ensemble']['accuracy']:.2f}%" in note
    assert len(note) > 1024  # whole: the dashboard cuts a study attribute at 1,024 characters
    code, out, _ = run_main(["ensemble", "--results-dir", str(searched), "--reevaluate"], capsys)
    assert code == 0
    again = _get(wsgi(store.url), f"/api/studies/{study_id}")[1]["note"]
    assert again["version"] == detail["note"]["version"] + 1 and "Earlier evaluations" in again["body"]
