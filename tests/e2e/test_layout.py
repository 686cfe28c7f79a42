"""The architecture as a test: subpackages in pipeline order import only downwards, and the
heavy or pluggable libraries are imported only where the README says."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_SPACE

PACKAGE = Path(__file__).resolve().parents[2] / "tuner"
# Lowest first; a module may import its own layer and those below it, never one above.
LAYERS = ["foundation", "space", "data", "training", "check", "store", "search", "ensemble", "ui", "cli"]
FOUNDATION = {"config", "errors", "paths", "interrupts", "keras_backend", "wording", "__init__", "__main__"}


def _layer(module: str) -> str:
    """'tuner.store.trials' -> 'store'; `python -m tuner` is the command line; the rest (the
    foundation modules, names such as `tuner.__version__`) is the foundation."""
    part = module.split(".")[1] if module.count(".") else "__init__"
    return "cli" if part == "__main__" else part if part in LAYERS else "foundation"


def _modules() -> dict[str, Path]:
    return {".".join(("tuner",) + p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__"): p
            for p in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> list[str]:
    """Every module `path` imports, at the top or inside a function."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_the_layer_names_are_the_subpackages():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(LAYERS[1:]), packages
    assert {p.stem for p in PACKAGE.glob("*.py")} == FOUNDATION


@pytest.mark.parametrize("module", sorted(_modules()))
def test_imports_point_down(module):
    here = LAYERS.index(_layer(module))
    upward = [name for name in _imports(_modules()[module]) if name.startswith("tuner.")
              and name.split(".")[1] != "search_spaces" and LAYERS.index(_layer(name)) > here]
    assert not upward, f"{module} ({LAYERS[here]}) imports from above: {upward}"


# library -> the only places that may import it
OWNERS = {
    "click": ("tuner.cli",),
    "keras_tuner": ("tuner.search.engines.kerastuner_engine",),
    "optuna": ("tuner.store", "tuner.search.engines"),
    "optuna_dashboard": ("tuner.store.studies",),
    "rich": ("tuner.ui", "tuner.cli"),
}


@pytest.mark.parametrize("library", sorted(OWNERS))
def test_each_library_is_imported_only_where_it_belongs(library):
    found = {m for m, p in _modules().items() for name in _imports(p) if name.split(".")[0] == library}
    strays = sorted(m for m in found if not m.startswith(OWNERS[library]))
    assert found and not strays, f"{library} imported outside {OWNERS[library]}: {strays}"


def test_the_command_line_starts_without_keras_or_optuna():
    probe = ("import sys; from tuner.cli import _register; _register(); "
             "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch', 'optuna', 'keras_tuner') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow  # a process of its own that opens a study
@pytest.mark.parametrize("engine", ["optuna", "keras-tuner"])
def test_the_parent_of_a_search_opens_it_without_keras(engine, tmp_path):
    """What the `tune` process does before its workers train (data, study, start points) imports
    no Keras and no KerasTuner: those load, with their start-up logs, in the workers only."""
    probe = ("import sys; from pathlib import Path; from tuner.search.run import open_search; "
             "from tuner.search.request import SearchRequest; from tuner.search.observer import QuietObserver; "
             "from tuner.space.files import load_space; from tuner.store import SearchStore; "
             f"space = load_space({str(TINY_SPACE)!r}); store = SearchStore(None, Path({str(tmp_path)!r}), create=True); "
             f"open_search(store, SearchRequest(space, 's', 2, {engine!r}, cache_dir=Path({str(tmp_path)!r})), QuietObserver()); "
             "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch', 'keras_tuner') if m in sys.modules), "
             "len(store.trials.all('s')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "0"]


BENCH = PACKAGE.parent / "bench"


@pytest.mark.parametrize("script", sorted(p.relative_to(BENCH).as_posix() for p in BENCH.rglob("*.py")))
def test_bench_scripts_import_what_exists(script):
    """The benchmarks are not run by the suite; what they import from `tuner` must still exist."""
    import importlib
    import importlib.util

    missing = []
    for node in ast.walk(ast.parse((BENCH / script).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tuner":
            module = importlib.import_module(node.module)
            missing += [f"{node.module}.{a.name}" for a in node.names if not hasattr(module, a.name)
                        and importlib.util.find_spec(f"{node.module}.{a.name}") is None]
    assert not missing, missing
