"""Every model family through the whole product: searched, ensembled, refit, exported,
reported and used by `tune predict` on image files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from conftest import TINY_SPACE, run_main
from tuner.space.params import MODELS

pytestmark = pytest.mark.slow  # real searches and refits


@pytest.fixture(scope="module")
def families_study(tmp_path_factory):
    """Five trials of one epoch on digits, one per family (start points), with the new words."""
    folder = tmp_path_factory.mktemp("families")
    space = yaml.safe_load(TINY_SPACE.read_text())
    space["name"] = "families"
    space["params"].update({"model": {"type": "categorical", "choices": list(MODELS)}, "depth": 1,
                            "activation": {"type": "categorical", "choices": ["relu", "elu", "tanh"]},
                            "pooling": {"type": "categorical", "choices": ["max", "average"]},
                            "optimizer": {"type": "categorical", "choices": ["adam", "nadam", "adamax", "sgd"]},
                            "l1": 1.0e-6, "max_norm": 4.0, "augment": 1.0, "rotation": 10.0, "zoom": 0.1})
    space["start"] = [{"model": m} for m in MODELS]
    path = folder / "families.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return folder, path


def test_every_family_is_searched_ensembled_refit_exported_reported_and_predicts(families_study, capsys, tmp_path):
    folder, space = families_study
    results = folder / "results"
    where = ["--results-dir", str(results)]
    code, out, err = run_main(["search", "--space", str(space), "--trials", str(len(MODELS)), "--seed", "0", "--jobs", "1",
                               "--keep-models", str(len(MODELS)), "--refit", *where], capsys)
    assert code == 0, err
    assert "ensemble refit on train+val" in out
    code, out, err = run_main(["leaderboard", "--study", "families", "--json", *where], capsys)
    rows = json.loads(out)["leaderboard"]
    assert code == 0 and sorted(r["params"]["model"] for r in rows) == sorted(MODELS)

    code, out, err = run_main(["ensemble", "--study", "families", "--top", str(len(MODELS)), "--reevaluate", *where],
                              capsys)
    assert code == 0, err  # any family may be a member

    code, _, err = run_main(["best", "--study", "families", "--export", str(tmp_path / "export"), *where], capsys)
    assert code == 0, err
    config = yaml.safe_load((tmp_path / "export" / "config.yaml").read_text())
    assert config["params"]["model"] in MODELS

    code, out, err = run_main(["report", "--study", "families", "--out", str(tmp_path / "report"), *where], capsys)
    assert code == 0, err
    assert (tmp_path / "report" / "report.html").stat().st_size > 10_000
    for figure in ("slices", "augmented", "curves_members"):  # the families side by side; rotated and zoomed images
        assert (tmp_path / "report" / f"{figure}.png").stat().st_size > 1000

    from PIL import Image
    from sklearn.datasets import load_digits

    digits, images = load_digits(), tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.fromarray((digits.images[i] * 16).clip(0, 255).astype(np.uint8)).save(images / f"{i}.png")
    code, out, err = run_main(["predict", str(tmp_path / "export"), str(images), "--json"], capsys)
    assert code == 0, err
    predictions = json.loads(out)
    assert len(predictions) == 3 and all(p["top"][0]["class"] in [str(c) for c in range(10)] for p in predictions)
