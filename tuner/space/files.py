"""Space files: the built-in ones (`search_spaces/`, packaged as `tuner.search_spaces`) and a
user's own, read and validated into a `Space`."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tuner.errors import UserError
from tuner.paths import length_problem, loop_problem
from tuner.space.reading import safe_yaml
from tuner.space.schema import Space, parse_space
from tuner.wording import clipped

MAX_SPACE_BYTES = 1 << 20


def builtin_spaces() -> dict[str, Path]:
    """Built-in space names and their files (packaged with `tuner`)."""
    try:
        folder: Any = resources.files("tuner.search_spaces")
    except ModuleNotFoundError:  # running from a source checkout that was not pip-installed
        folder = Path(__file__).resolve().parents[2] / "search_spaces"
    return {Path(f.name).stem: Path(str(f)) for f in folder.iterdir() if f.name.endswith(".yaml")}


def load_space(name_or_path: str) -> Space:
    """A built-in space by name, or a user's YAML file by path."""
    builtins = builtin_spaces()
    expanded = os.path.expanduser(name_or_path)  # `~/loop` is a loop too
    if name_or_path not in builtins and (why := length_problem(expanded) or loop_problem(expanded)):
        raise UserError(f"no space '{clipped(name_or_path)}': {why}")
    path = builtins.get(name_or_path) or Path(expanded)
    if not path.is_file():
        raise UserError(f"no space '{name_or_path}': not a built-in ({', '.join(sorted(builtins))}) nor a file")
    try:
        if path.stat().st_size > MAX_SPACE_BYTES:
            raise UserError(f"{path}: {path.stat().st_size} bytes; a space file is at most {MAX_SPACE_BYTES}")
        data = safe_yaml(path.read_text(), str(path))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{where} invalid YAML ({getattr(e, 'problem', None) or e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read ({e})") from None
    return parse_space(data, str(path))
