"""What a new architecture's compile costs under different XLA flags, and what the flags cost in
training speed.

Each variant runs in a fresh process (XLA reads XLA_FLAGS once) with an empty compilation cache,
and trains trials of architectures it has never seen, as a search over widths does: per trial the
build, the first epoch (compile included), the steady epoch and the validation predictions
(their program compiles in the background during the first epoch). GPU flags are the point
(XLA's autotuning runs candidate kernels for every convolution of a new program); on a CPU only
the default variant makes sense.

    KERAS_BACKEND=jax python bench/compile_flags.py --space cifar10 --data cifar10.tar.gz \\
        --widths 64,128 --variant default= --variant autotune0=--xla_gpu_autotune_level=0 \\
        --variant autotune1=--xla_gpu_autotune_level=1 --out flags.json
    KERAS_BACKEND=jax python bench/compile_flags.py --space bench/peers/peer_space.yaml \\
        --data cifar10.tar.gz --set depth=3 --widths 37,52,90 --variant default= \\
        --variant autotune0=--xla_gpu_autotune_level=0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(args: argparse.Namespace) -> None:
    """One variant: trials of each width in this process, printed as JSON lines."""
    sys.path.insert(0, str(ROOT))
    from tuner.training.backend import configure

    setup = configure(args.precision, Path(tempfile.mkdtemp(prefix="tune-flags-")))
    from tuner.data import load_search_data
    from tuner.training.memory import free_memory
    from tuner.space.files import load_space
    from tuner.space.reading import parse_value
    from tuner.training.fit import train_trial

    space = load_space(args.space)
    from tuner import config
    data, _ = load_search_data(space, args.data, config.cache_dir())
    fixed = {k: parse_value(v) for k, v in (pair.split("=", 1) for pair in args.set)}
    start = space.start[0] if space.start else {}
    for width in (int(w) for w in args.widths.split(",")):
        params = space.complete({**start, **fixed, "width": width})
        result = train_trial(params, data, max_epochs=args.epochs, patience=args.epochs, seed=0)
        t = result.timings
        print("ROW " + json.dumps({"width": width, **{k: round(v, 3) for k, v in t.items()},
                                    "val_accuracy": round(result.val_accuracy, 4), "device": setup.get("device")}),
              flush=True)
        del result
        free_memory()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="cifar10")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--widths", default="64,128", help="one trial per width, in this order, per variant")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="fix a parameter")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=XLA_FLAGS",
                        help="repeatable; an empty value is XLA's defaults (default: default=)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        return child(args)
    variants = dict(v.split("=", 1) for v in (args.variant or ["default="]))
    forwarded = ["--space", args.space, "--widths", args.widths, "--epochs", str(args.epochs),
                 "--precision", args.precision, *(["--data", str(args.data)] if args.data else []),
                 *[f"--set={pair}" for pair in args.set]]
    rows = []
    for name, flags in variants.items():
        env = {**os.environ, "XLA_FLAGS": " ".join(filter(None, [os.environ.get("XLA_FLAGS", ""), flags]))}
        proc = subprocess.run([sys.executable, __file__, *forwarded, "--child"], env=env, capture_output=True,
                              text=True)
        found = [json.loads(line[4:]) for line in proc.stdout.splitlines() if line.startswith("ROW ")]
        if proc.returncode != 0:
            print(f"{name}: failed (exit {proc.returncode})\n{proc.stderr[-2000:]}", file=sys.stderr)
        for row in found:
            rows.append({"variant": name, "xla_flags": flags, **row})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| variant | width | build | first epoch | steady epoch | compile (first - steady) | predict | programs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['variant']} | {r['width']} | {r['build_seconds']:.2f} s | {r['first_epoch_seconds']:.2f} s | "
              f"{r['epoch_seconds']:.3f} s | {r['first_epoch_seconds'] - r['epoch_seconds']:.2f} s | "
              f"{r['predict_seconds']:.2f} s | {r.get('programs', '-')} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
