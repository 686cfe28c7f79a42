"""Open or resume a study, fix its split, and run an engine on it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tuner import __version__
from tuner.data import SplitInfo, load_search_data
from tuner.engines import check_choice, engine_class
from tuner.interrupts import catching_ctrl_c
from tuner.runner import SearchContext, SearchObserver, TrialRunner
from tuner.spaces import Space
from tuner.store import SearchStore


@dataclass(frozen=True)
class SearchRequest:
    space: Space
    study: str
    n_trials: int
    engine: str = "optuna"
    sampler: str | None = None
    pruner: str | None = None
    timeout: float | None = None
    data: Path | None = None
    cache_dir: Path = Path.home() / ".cache" / "tune"
    seed: int | None = None  # the sampler's; the split's seed is the space's
    keep_models: int = 10
    max_failures: int = 5
    precision: str = "auto"


def study_meta(request: SearchRequest, sampler: str, pruner: str, split: SplitInfo) -> dict:
    """What the study records about itself; a resume must match engine, space and split."""
    space = request.space
    return {"engine": request.engine, "sampler": sampler, "pruner": pruner, "dataset": space.dataset,
            "space_name": space.name, "space": space.to_dict(), "space_fingerprint": space.fingerprint(),
            "split": split.to_dict(), "tune_version": __version__}


def run_search(store: SearchStore, request: SearchRequest, observer: SearchObserver) -> dict[str, str]:
    """Run (or resume) the study until it has `n_trials` finished trials; returns the
    backend set-up. Raises UserError for bad input and SearchStopped for a fatal condition."""
    from tuner.backend import configure

    sampler, pruner = check_choice(request.engine, request.sampler, request.pruner)
    data, split = load_search_data(request.space, request.data, request.cache_dir)
    for note in split.notes:
        observer.note(note)
    store.open_study(request.study, study_meta(request, sampler, pruner, split))
    store.save_val_labels(request.study, data.y_val)
    setup = configure(request.precision, request.cache_dir)
    ctx = SearchContext(store, request.study, request.space, data, observer, request.keep_models, request.max_failures)
    engine = engine_class(request.engine)(TrialRunner(ctx), sampler, pruner, request.seed)
    observer.search_started(setup)
    with catching_ctrl_c():
        engine.search(request.n_trials, request.timeout)
    return setup
