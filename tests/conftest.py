"""Shared fixtures. Tests train real (tiny) models on scikit-learn's digits: 1-2 epochs each."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
TINY_SPACE = TESTS / "spaces" / "tiny_digits.yaml"
ENDLESS_SPACE = TESTS / "spaces" / "endless_digits.yaml"  # a trial runs until it is stopped
SHARED = Path(os.environ.get("TUNE_SHARED_DATASETS", TESTS.parent.parent / "shared" / "datasets"))
# One CPU thread a training process: the suite runs in two processes (-n 2) on two cores, and more
# threads each would oversubscribe them. Commands the tests start inherit it, as a user's setting.
for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_name, "1")


def _same_examples_in_every_run() -> None:
    """Hypothesis now and then draws a constant written in this project's modules imported so far.
    Which ones a worker has imported depends on the tests xdist handed it first, so a derandomized
    test drew 0.01 in one run of the suite and not in the next. Without those constants, each
    test draws the same examples in every run. (A private hook: a Hypothesis without it draws as
    it likes.)"""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:
        return
    if hasattr(providers, "_get_local_constants") and hasattr(providers, "_local_constants"):
        empty = providers._local_constants  # nothing drawn yet: still the empty set it starts as
        providers._get_local_constants = lambda: empty


_same_examples_in_every_run()

# The modules that take longest (`--durations=0`), handed out first: xdist gives each worker whole
# modules (--dist loadscope) in collection order, and a long one collected last would run alone
# while the other worker idles.
LONGEST_FIRST = ("training/test_other_backends.py", "cli/test_promises.py", "e2e/test_trust.py",
                 "search/test_engine_contract.py", "e2e/test_reliability.py", "check/test_search_checks.py",
                 "search/test_pool.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.relative_to(TESTS).as_posix(), len(rank)))  # stable: the rest as collected


@pytest.fixture(autouse=True, scope="session")
def isolated(tmp_path_factory: pytest.TempPathFactory):
    """No test reads or writes the user's caches or storage. Session-wide: module-scoped fixtures
    (studies searched once for a module) are set up before any test's own fixtures."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        cache = tmp_path_factory.getbasetemp() / "cache"  # shared across tests: decoded data is reused
        monkeypatch.setenv("TUNE_CACHE_DIR", str(cache))
        monkeypatch.delenv("TUNE_STORAGE", raising=False)
        monkeypatch.delenv("TUNE_DATA_DIR", raising=False)
        monkeypatch.setenv("TUNE_CHECK", "0")  # a new study's checks cost seconds: tests/check turn them on
        monkeypatch.setenv("KERAS_HOME", str(tmp_path_factory.getbasetemp() / "keras_home"))
        yield


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return tmp_path / "results"


@pytest.fixture
def tiny_space():
    from tuner.space.files import load_space

    return load_space(str(TINY_SPACE))


@pytest.fixture(scope="session")
def digits_data():
    from tuner.data import load_search_data
    from tuner.space.files import load_space

    data, split = load_search_data(load_space(str(TINY_SPACE)), None, Path("/nonexistent"))
    return data, split


def run_cli(args: list[str]):
    """Invoke `tune` in-process through click's CliRunner; returns the Result."""
    from click.testing import CliRunner

    from tuner.cli import _register, cli

    _register()
    return CliRunner().invoke(cli, args, catch_exceptions=True)


def search_once(results: Path, study: str, *extra: str) -> Path:
    """A finished study of the tiny space in `results` (2 trials of 1 epoch, seeded), searched
    through `tune search` itself; for module-scoped fixtures."""
    from tuner.cli import main

    with pytest.raises(SystemExit) as e:
        main(["search", "--space", str(TINY_SPACE), "--study", study, "--trials", "2", "--epochs", "1",
              "--results-dir", str(results), "--seed", "0", "--jobs", "1", *extra])
    assert e.value.code == 0
    return results


def snapshot(results: Path) -> dict:
    """Everything a command could have changed in a results folder: each file's checksum (the
    database's file aside) and, from the database, every study's record and trials."""
    import hashlib

    from tuner.store import SearchStore

    files = {p.relative_to(results).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(results.rglob("*")) if p.is_file() and not p.name.startswith("tune.db")}
    store = SearchStore(None, results)
    studies = {name: (store.db.storage.get_study_user_attrs(store.studies.id(name)), store.trials.all(name))
               for name in store.studies.names()}
    return {"files": files, "studies": studies}


def run_main(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Invoke `tune` through `main` (its error handling and exit codes included)."""
    from tuner.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A PostgreSQL URL: $TUNE_TEST_POSTGRES, else a throwaway server on loopback started from
    Debian's postgresql package (scripts/setup.sh --test installs it)."""
    import glob
    import shutil
    import socket
    import subprocess

    if os.environ.get("TUNE_TEST_POSTGRES"):
        yield os.environ["TUNE_TEST_POSTGRES"]
        return
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("no PostgreSQL server installed (scripts/setup.sh --test installs one)")
    bindir = Path(bins[-1]).parent
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="tune-pg-"))  # not under pytest's 0700 tree: postgres must enter it
    run_as: list[str] = []
    if os.getuid() == 0:  # initdb refuses root: run the server as the postgres user
        shutil.chown(folder, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "tune"],
                   check=True, capture_output=True)
    subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"), "-o",
                    f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    subprocess.run([*run_as, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "tune", "tune"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://tune@127.0.0.1:{port}/tune"
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
