"""The fixed ResNet-9 recipe that `bench/recipe_check.py` and `bench/reference/resnet9.py` share:
its parameters in tune's vocabulary (`tuner/space/params.py`), the options to change them, and tune's
fixed split of the data (so the reference and `tune` train and validate on the same images)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The DAWNBench ResNet-9 and its recipe (Page, "How to train your ResNet") in Keras's terms: its
# summed loss with lr 0.4/512 and weight decay 5e-4*512 is a mean loss with lr 0.4 and L2 2.5e-4.
RECIPE = {"model": "resnet", "depth": 3, "width": 64, "head_units": 0, "dropout": 0.0, "l2": 2.5e-4,
          "logit_scale": 0.125, "batch_norm": True, "batch_size": 512, "learning_rate": 0.4, "lr_schedule": "onecycle",
          "warmup_epochs": 0, "optimizer": "sgd", "momentum": 0.9, "label_smoothing": 0.2,
          "augment": 1.0, "max_shift": 4, "flip": True, "tta_flip": True}


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="the CIFAR-10 copy (default: Keras's download)")
    parser.add_argument("--train-samples", type=int, help="a stratified training subset (CPU-sized runs)")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="weights and batch order (the split is fixed)")
    parser.add_argument("--precision", choices=["float32", "bf16"], default="float32")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="change one recipe parameter, e.g. --set width=16 --set lr_schedule=cosine")
    parser.add_argument("--out", type=Path, required=True)


def recipe_from_args(args: argparse.Namespace) -> dict:
    from tuner.space.params import complete_params
    from tuner.space.reading import parse_value

    recipe = dict(RECIPE)
    for item in args.set:
        name, _, value = item.partition("=")
        recipe[name] = parse_value(value)
    return complete_params(recipe)


def load_split(args: argparse.Namespace):
    """tune's train/validation split of the cifar10 space (its seed), optionally subsampled."""
    from tuner.data import load_search_data
    from tuner.space.files import load_space
    from tuner.space.schema import parse_space

    raw = load_space("cifar10").to_dict()
    raw["training"]["validation_fraction"] = args.val_fraction
    if args.train_samples:
        raw["training"]["max_train_samples"] = args.train_samples
    from tuner import config
    cache = config.cache_dir()
    data, _ = load_search_data(parse_space(raw, "cifar10"), args.data, cache)
    return data
