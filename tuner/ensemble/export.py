"""`export_study`: a self-contained folder with the evaluated ensemble, the best trial, its
configuration in the space-file vocabulary, its metrics and history, and a README."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tuner import interrupts
from tuner.errors import UserError
from tuner.paths import check_can_write, check_room_for_files, new_folder, remove_stale, replace_folder
from tuner.store import Evaluation, SearchStore, TrialRecord
from tuner.store.artifacts import sha256_of
from tuner.store.stored import DamagedRecord, recorded
from tuner.wording import plural


def best_config(meta: dict[str, Any], best: TrialRecord, study: str) -> dict[str, Any]:
    """The study's space with every parameter fixed to the best trial's value: running
    `tune search --space config.yaml --trials 1` trains that trial again."""
    space = dict(recorded(meta, study, "space"))
    space["name"] = f"{study[:80]}-trial-{best.number}"
    space["description"] = f"best trial {best.number} of study {study}"
    space["params"] = dict(best.params)
    space.pop("start", None)  # every value is fixed: a start point would name fixed parameters
    return space


def _how_trained(best: TrialRecord, asked: int) -> str:
    """How the best trial trained when not as the space asks (a deadline's fewer epochs, a first
    result's subset of an epoch, a KerasTuner Hyperband bracket's budget of `best.max_epochs`):
    `config.yaml` trains the space's whole schedule."""
    if best.reason:
        return f"; it trained {plural(best.epochs, 'epoch')} ({best.reason})"
    if best.max_epochs is not None and best.max_epochs < asked:
        return f"; it was given {best.max_epochs} of the space's {plural(asked, 'epoch')} and trained {best.epochs}"
    return ""


def _readme(study: str, meta: dict[str, Any], record: Evaluation, best: TrialRecord, n_trials: int) -> str:
    split = recorded(meta, study, "split")
    sel = record.selection
    members = ", ".join(f"trial {n} ({w:.2f})" for n, w in sel.members.items())
    data_flag = " --data PATH" if meta.get("dataset") == "folder" else ""  # a folder is found by no lookup
    calibrated = (", each member's logits divided by a temperature fitted on validation data (by its log-loss; "
                  "where a member has every validation image right, sharpened to a mean confidence of (n + 1) / (n + 2) "
                  "on its n if it was less sure)") if sel.temperatures else ""
    return f"""# {study}: exported by `tune`

- dataset: {meta.get('dataset', '?')} (source: {split.get('source', '?')})
- split: {split['n_train']} train / {split['n_val']} validation / {split['n_test']} test images, seed {split['seed']}
  (validation fraction {split['validation_fraction']}; the test split was held out from the start)
- search: {plural(n_trials, 'finished trial')}, engine {meta.get('engine', '?')}, sampler {meta.get('sampler', '?')}
- best trial: {best.number}, validation accuracy {100 * sel.best_val_accuracy:.2f}%{_how_trained(best, recorded(meta, study, 'space')['training']['max_epochs'])}
- ensemble: {members}, chosen by greedy selection on validation {sel.metric}{calibrated}

| model | test accuracy | test loss |
| --- | --- | --- |
{_test_rows(record)}

Evaluated once on the {record.n_test} test images ({record.when}); nothing was chosen with them.

## Use

Only Keras 3 is needed (any backend); both files are plain Keras layers. `labels.json` names
each output in the model's order, `input.json` says what an input is:
{_input_line(meta, study)}. From an 8-bit image file (JPEG, PNG, ...) to its class; `tune predict` does the
same for any file, 16-bit ones included, decoded exactly as the training images were:

```python
import json, sys
import keras, numpy as np
from PIL import Image

model = keras.saving.load_model("model.keras")
labels, spec = json.load(open("labels.json")), json.load(open("input.json"))
image = Image.open(sys.argv[1]).convert("RGB" if spec["channels"] == 3 else "L")
image = image.resize((spec["width"], spec["height"]), Image.Resampling.BILINEAR)
x = np.asarray(image, dtype="float32").reshape(1, spec["height"], spec["width"], spec["channels"])
probabilities = model.predict(x, verbose=0)[0]  # raw 0-255 pixel values: no scaling
best = int(probabilities.argmax())
print(labels[str(best)], f"{{probabilities[best]:.4f}}")
```
{_labels_note(record)}
`config.yaml` is the best trial's configuration as a space file: `tune search --space config.yaml --trials 1{data_flag}`
trains it again on the space's whole schedule, as a new study's first trial (with that trial's seed, so its
figures differ a little). `metrics.json` holds the figures above with per-class accuracy; `history.json` the
per-epoch history of the best trial and of each ensemble member.
"""


def input_spec(meta: dict[str, Any], study: str) -> dict[str, Any]:
    height, width, channels = _shape(meta, study)
    return {"height": height, "width": width, "channels": channels, "color_mode": "rgb" if channels == 3 else "grayscale",
            "pixels": "raw values 0-255, as float32 or uint8; not scaled or normalized",
            "resize": "bilinear, to height x width, no crop (as in training)"}


def _input_line(meta: dict[str, Any], study: str) -> str:
    spec = input_spec(meta, study)
    return (f"(n, {spec['height']}, {spec['width']}, {spec['channels']}) arrays of {spec['color_mode']} images, "
            f"{spec['pixels']}")


def _labels_note(record: Evaluation) -> str:
    if record.class_names is not None:
        return ""
    return ("\nThis study's evaluation predates class names in its record, so `labels.json` is missing; "
            "`tune ensemble --reevaluate` records an evaluation with them (a further read of the test split), "
            "after which `tune best --export DIR` writes it.\n")


def _test_rows(record: Evaluation) -> str:
    test, refit = record.test, record.final == "refit"
    names = {"refit": "`model.keras` (the ensemble, each member trained again on train + validation)",
             "ensemble": "the same ensemble as searched (not exported)" if refit else "`model.keras` (ensemble)",
             "best": "`best_trial.keras` (trained on train only)" if refit else "`best_trial.keras`"}
    return "\n".join(f"| {names[k]} | {100 * test[k]['accuracy']:.2f}% | {test[k]['loss']:.4f} |"
                     for k in ("refit", "ensemble", "best") if k in test)


def _shape(meta: dict[str, Any], study: str) -> tuple[int, ...]:
    from tuner.space.schema import parse_space

    return parse_space(recorded(meta, study, "space"), "study").input_shape


def check_export_target(out: Path, force: bool, protected: dict[Path, str] | None = None) -> None:
    """Before anything is evaluated: `out` is new or an empty folder (any folder with `force`)
    that holds none of `protected` (each path with what it is, `protected_paths`) nor the current
    folder, lies inside none of them, and its parent can be written."""
    protected = protected or {}
    out = out.resolve()
    for path in protected:
        if out == path.resolve() or out in path.resolve().parents:
            raise UserError(f"--export {out}: that folder holds {path}, which an export would replace; "
                            f"choose a folder of its own")
    here = Path.cwd().resolve()  # an empty one is filled; `--export . --force` emptied a full one
    if out in here.parents or (out == here and any(out.iterdir())):
        raise UserError(f"--export {out}: that folder holds the current folder's files, which an export would "
                        f"replace; choose a folder of its own")
    for path, what in protected.items():
        if path.is_dir() and path.resolve() in out.parents:
            raise UserError(f"--export {out}: inside {what} {path}, whose files it could replace; "
                            f"choose a folder outside it")
    if out.exists() and not out.is_dir():
        raise UserError(f"--export {out}: a file is there, not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        held = ", ".join(sorted(p.name for p in out.iterdir())[:4])
        raise UserError(f"--export {out}: the folder is not empty (holds {held}); choose a new or empty folder, "
                        f"or add --force to replace it")
    check_can_write(out.parent if out.parent != out else out, "export folder")
    # Said now, not after folders were made for it: the export's files, and in the folder it is
    # built in beside `out` (mkdtemp's name is as long as this one).
    for folder in (out, out.parent / ".tune-export-xxxxxxxx"):
        check_room_for_files(folder, "--export")


# What an export names its folder while it builds and the old export while it is replaced
# (`replace_folder`), mkdtemp's 8 characters each (`.tune-old-<pid>` before): only these are a
# killed export's; a user's `.tune-export-mine` is not.
_LEFT_BY_AN_EXPORT = re.compile(r"\.tune-(export|old)-[a-z0-9_]{8}|\.tune-old-[0-9]+")


def export_study(store: SearchStore, study: str, record: Evaluation, out: Path, force: bool = False) -> Path:
    """Build the export in a hidden folder beside `out`, check it, then rename it into place:
    `out` is either complete and consistent or as it was."""
    out = out.resolve()  # `.`, a link: the folder itself
    check_export_target(out, force, protected_paths(store, study))
    ensemble_file, best_file = store.evaluations.model_files(study, record)
    with new_folder(out.parent):  # the parents it makes go again if the export fails
        remove_stale([p for p in out.parent.glob(".tune-*") if _LEFT_BY_AN_EXPORT.fullmatch(p.name)])
        built = Path(tempfile.mkdtemp(prefix=".tune-export-", dir=out.parent))
        built.chmod(0o755)  # mkdtemp's 0700 would hide the export from everyone else
        try:
            with interrupts.removed_on_exit(built):
                _write_export(store, study, record, built, {"model.keras": ensemble_file, "best_trial.keras": best_file})
                with interrupts.holding_signals():  # the rename and the note that it happened, or neither
                    replace_folder(built, out)
                    interrupts.note_for_exit(f"except the export in {out}, which is complete")
        finally:
            shutil.rmtree(built, ignore_errors=True)
    return out


def protected_paths(store: SearchStore, study: str, data: Path | None = None) -> dict[Path, str]:
    """What an export must never replace nor write into, each with what it is: the results folder,
    the study database, and the study's data (`--data`, or where the search read it, when that is
    a path here)."""
    source = (store.studies.meta(study).get("split") or {}).get("source")
    sources = [p for p in (data, Path(source) if isinstance(source, str) and source else None)
               if p is not None and p.exists()]
    database = store.db.sqlite_file()
    return {store.results_dir: "the results folder", **{p: "the study's data" for p in sources},
            **({database: "the study database"} if database is not None else {})}


def check_exportable(store: SearchStore, study: str, record: Evaluation) -> None:
    """What an export of `record` needs, checked before a command shows anything (a refusal is
    its one line): the trials it names, and its model files as recorded."""
    trials_named(store, study, record)
    store.evaluations.model_files(study, record)


def trials_named(store: SearchStore, study: str, record: Evaluation) -> dict[int, TrialRecord]:
    """The study's trials by number; one line if the record names a trial the study lacks (as a
    member, the best, a candidate, or in the members' temperatures and flips)."""
    trials, sel = {t.number: t for t in store.trials.all(study)}, record.selection
    named = {sel.best_trial, *sel.members, *sel.candidates, *sel.temperatures, *sel.flips}
    if unknown := sorted(named - set(trials)):
        raise DamagedRecord(f"study {study}'s evaluation of {record.when} names trial {unknown[0]}, which the study "
                            f"does not hold; the database was written by another program or is damaged")
    return trials


def _write_export(store: SearchStore, study: str, record: Evaluation, out: Path, models: dict[str, Path]) -> None:
    meta, trials, sel = store.studies.meta(study), trials_named(store, study, record), record.selection
    best = trials[sel.best_trial]
    for name, source in models.items():
        shutil.copyfile(source, out / name)
        if sha256_of(out / name) != record.files[name].sha256:
            raise UserError(f"copying {source} to the export changed it (checksum differs); nothing was exported")
    (out / "config.yaml").write_text(yaml.safe_dump(best_config(meta, best, study), sort_keys=False))
    checksums = {name: record.files[name].sha256 for name in models}
    metrics = {"study": study, "best_trial": best.number, "best_params": best.params, **record.to_json(), "sha256": checksums}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    histories = {str(n): trials[n].history for n in set(sel.members) | {best.number}}
    (out / "history.json").write_text(json.dumps({"best_trial": best.history, "members": histories}, indent=1))
    n_trials = sum(t.finished for t in trials.values())
    (out / "input.json").write_text(json.dumps(input_spec(meta, study), indent=1))
    if record.class_names is not None:
        (out / "labels.json").write_text(json.dumps({str(i): name for i, name in enumerate(record.class_names)}, indent=1))
    (out / "README.md").write_text(_readme(study, meta, record, best, n_trials))
