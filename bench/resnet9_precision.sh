#!/usr/bin/env bash
# A fixed ResNet-9 recipe (every parameter set, 16 epochs) trained through `tune` on CIFAR-10,
# in bf16 and float32, two seeds each: the accuracy and the epoch time of each precision.
#   KERAS_BACKEND=jax bench/resnet9_precision.sh path/to/cifar10.tar.gz OUTDIR
set -euo pipefail
data=$1; out=$2
# The DAWNBench recipe of search_spaces/cifar10.yaml's first start point (an earlier variant ran lr 0.1, L2 5e-4, no logit scale).
recipe=(--set model=resnet --set depth=3 --set width=64 --set head_units=0 --set dropout=0.0 --set l2=2.5e-4
        --set logit_scale=0.125 --set batch_norm=true --set batch_size=512 --set learning_rate=0.4 --set lr_schedule=onecycle
        --set warmup_epochs=0 --set optimizer=sgd --set momentum=0.9 --set label_smoothing=0.2
        --set augment=1.0 --set flip=true --set tta_flip=true)
for precision in bf16 float32; do
  for seed in 0 1; do
    python3 "$(dirname "$0")/search_bench.py" --space cifar10 --data "$data" --trials 1 --epochs 16 --pruner none \
      --precision "$precision" --space-seed "$seed" "${recipe[@]}" --ensemble \
      --out "$out/resnet9_${precision}_seed${seed}.json" 2>&1 | grep -E "^trial|^\|"
  done
done
