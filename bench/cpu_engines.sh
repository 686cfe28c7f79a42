#!/usr/bin/env bash
# Both engines side by side on the CPU, same space and budget, one after the other:
# digits (full space, 20 trials) and Fashion-MNIST (12,000 training images, 4 epochs, 8 trials,
# with the ensemble step). Writes JSON records to OUTDIR.
#   bench/cpu_engines.sh OUTDIR
set -euo pipefail
out=$1; here=$(dirname "$0")
mkdir -p "$out"
for engine in optuna keras-tuner; do
  python "$here/search_bench.py" --space digits --engine "$engine" --trials 20 --ensemble \
    --out "$out/digits_$engine.json" | grep "^|"
done
for engine in optuna keras-tuner; do
  python "$here/search_bench.py" --space fashion_mnist --engine "$engine" --trials 8 --epochs 4 \
    --train-samples 12000 --ensemble --out "$out/fashion_$engine.json" | grep "^|"
done
