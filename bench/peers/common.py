"""What the three contenders share and nothing else: the data (tune's fixed split of the
same copy, so all see the same train and validation images) and the progress record each
writes: (seconds since the comparison started the process, best validation accuracy so far)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SPACE = Path(__file__).with_name("peer_space.yaml")
T0 = float(os.environ.get("PEER_T0", time.time()))  # set by compare.py just before it starts us


def load_space(train_samples: int | None, val_fraction: float | None):
    """The peer space; a CPU-sized run takes a train subset and a smaller validation share."""
    from tuner.space.files import load_space as load
    from tuner.space.schema import parse_space

    space = load(str(SPACE))
    raw = space.to_dict()
    if train_samples:
        raw["training"]["max_train_samples"] = train_samples
    if val_fraction:
        raw["training"]["validation_fraction"] = val_fraction
    return parse_space(raw, space.source)


def load_data(data: Path | None, train_samples: int | None, val_fraction: float | None):
    """Train and validation arrays of tune's split (uint8 images, int labels)."""
    from tuner.data import load_search_data

    from tuner import config
    cache = config.cache_dir()
    search_data, _ = load_search_data(load_space(train_samples, val_fraction), data, cache)
    return search_data


def add_arguments(parser) -> None:
    """The options every contender takes (compare.py passes the same to each)."""
    parser.add_argument("--data", type=Path)
    parser.add_argument("--train-samples", type=int)
    parser.add_argument("--val-fraction", type=float)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--out", type=Path, required=True)


class Progress:
    def __init__(self, tool: str):
        self.tool, self.trials = tool, []

    def trial_done(self, val_accuracy: float | None) -> None:
        self.trials.append({"end_seconds": time.time() - T0, "val_accuracy": val_accuracy})
        print(f"{self.tool}: trial {len(self.trials)} val_accuracy={val_accuracy} at {self.trials[-1]['end_seconds']:.1f} s",
              flush=True)

    def write(self, out: Path, **extra) -> None:
        values = [t["val_accuracy"] for t in self.trials if t["val_accuracy"] is not None]
        record = {"tool": self.tool, "wall_seconds": time.time() - T0, "best_val_accuracy": max(values, default=None),
                  "trials": self.trials, **extra}
        out.write_text(json.dumps(record, indent=1))
