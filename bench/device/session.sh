#!/usr/bin/env bash
# On the GPU machine (the device tool), one step of issue 6's measurements per call; results go
# to $OUT (at most 8 files come back), state that a later call resumes stays in .devrun/ (kept
# while the machine stays warm: call again within its 30 s).
#
#   run(command="bash bench/device/session.sh search 450 --no-ensemble", carry=[".whl", ".devdata"])
#   run(command="bash bench/device/session.sh search 300 --refit", carry=[".whl", ".devdata"])   # resumes, then the
#       ensemble, scored as searched and refit on train + validation in one test pass
#   run(command="bash bench/device/session.sh peers tune,optuna", ...)   # then: peers kerastuner
#   run(command="bash bench/device/session.sh flags", ...)  |  augment  |  precision
#   run(command="bash bench/device/session.sh spaces", carry=[".whl", ".devdata"])   # after `wheels.sh --spaces`
#
# Here first: `bash bench/device/wheels.sh` (wheels into .whl/, the data into .devdata/).
# Without a GPU (a smoke run on the CPU) the same steps run unwrapped by the NVML sampler;
# extra arguments go to the step's command (`SPACE=digits DATA= ... search 20 --epochs 2`).
set -euo pipefail
cd "$(dirname "$0")/../.."
step=${1:?step: search SECONDS | spaces | peers CONTENDERS | flags | augment | precision}
shift
OUT=${OUT:-.devrun/out}
mkdir -p "$OUT" .devrun
if command -v nvidia-smi >/dev/null && [ ! -f /tmp/site/.tune-wheels ]; then  # the GPU image lacks these
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  touch /tmp/site/.tune-wheels
fi
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export KERAS_BACKEND=${KERAS_BACKEND:-jax} TUNE_CACHE_DIR=${TUNE_CACHE_DIR:-/tmp/tcache}
DATA=${DATA-.devdata/cifar10.tar.gz} SPACE=${SPACE:-cifar10}  # SPACE=digits DATA= for a quick smoke run
calls=(.devrun/call-*)
[ -e "${calls[0]}" ] && call=$((${#calls[@]} + 1)) || call=1
touch ".devrun/call-$call"
python3 -c 'import jax, keras; print("call", '"$call"', "jax", jax.__version__, jax.devices(), "keras", keras.__version__)'

sampled() {  # the command, wrapped by the NVML sampler where there is a GPU
  if command -v nvidia-smi >/dev/null; then
    python3 bench/gpu_util.py --out "$OUT/util-$call.json" -- "$@"
  else
    "$@"
  fi
}

case $step in
  search)  # issue 6's 20-minute cifar10 search, in calls of at most SECONDS of new trials each
    seconds=${1:?seconds}; shift
    results=.devrun/search
    set +e
    # Each worker logs its cache lookups and the parts of their keys, for bench/cache_keys.py below
    # (EXPLAIN=0: not). Hashing the parts twice cost 0.02 s over a cifar10 trial's 41 programs (CPU).
    TUNE_EXPLAIN_CACHE=${EXPLAIN-1} sampled python3 -m tuner search --space "$SPACE" ${DATA:+--data "$DATA"} --trials 50 --timeout "$seconds" \
      --results-dir "$results" "$@" 2>&1 | tee "$OUT/search-$call.log"
    set -e
    python3 bench/trial_costs.py "$results/tune.db" "$SPACE" > "$OUT/costs-$call.md" || true
    tail -1 "$OUT/costs-$call.md"
    case " $* " in
      *" --no-ensemble "*) ;;  # `best` would evaluate the test split now, mid-search
      *) python3 -m tuner best --study "$SPACE" --json --results-dir "$results" > "$OUT/best-$call.json" 2>&1 || true ;;
    esac
    cp "$results/tune.db" "$OUT/tune.db" || true
    # The workers' stderr: why a worker missed what another compiled, and what else they said.
    logs=("$results/$SPACE"/logs/worker-*.log)
    if [ -e "${logs[0]}" ]; then
      python3 bench/cache_keys.py "${logs[@]}" | tee "$OUT/cache-$call.json" || true
      for log in "${logs[@]}"; do echo "== $log"; grep -v '^cache-key ' "$log" | tail -n 100; done > "$OUT/workers-$call.log"
    fi
    ;;
  spaces)  # issue 17: what one trial of each built-in space costs on this GPU, for its space file
    # digits from scikit-learn; mnist and Fashion-MNIST from .devdata (`wheels.sh --spaces`).
    results=.devrun/spaces
    for space in ${SPACES:-digits mnist mnist_lenet fashion_mnist fashion_mnist_mlp fashion_mnist_regularization}; do
      case $space in
        mnist*) data=(--data .devdata/mnist.npz) ;;
        fashion*) data=(--data .devdata/fashion-mnist) ;;
        *) data=() ;;
      esac
      set +e
      sampled python3 -m tuner search --space "$space" "${data[@]}" --study "$space" --trials 1 \
        --epochs "${EPOCHS:-3}" --no-check --no-ensemble --jobs 1 --results-dir "$results" "$@" 2>&1 | tee -a "$OUT/spaces-$call.log"
      set -e
      python3 bench/trial_costs.py "$results/tune.db" "$space" >> "$OUT/spaces-costs-$call.md" 2>&1 || true
    done
    ;;
  peers)  # the peers and tune side by side; records kept in .devrun/peers for the next call
    python3 bench/peers/compare.py --data "$DATA" --jobs "${JOBS:-4}" --keep .devrun/peers --only "${1:?contenders}" \
      --out "$OUT/peers-$call.json" "${@:2}" 2>&1 | tee "$OUT/peers-$call.log"
    cp .devrun/peers/*.json "$OUT/" 2>/dev/null || true
    ;;
  flags)  # how much of a new architecture's compile is XLA's autotuning, and what skipping it costs
    python3 bench/compile_flags.py --space bench/peers/peer_space.yaml --data "$DATA" --set depth=3 \
      --widths "${WIDTHS:-37,52,90}" --variant default= --variant autotune0=--xla_gpu_autotune_level=0 \
      --out "$OUT/flags-$call.json" "$@" 2>&1 | tee "$OUT/flags-$call.log"
    ;;
  augment)  # augmentation's cost per step, on tune's own trainer and batches and on the bench's wrapper
    python3 bench/augment_bench.py --model resnet --depth 3 --width 64 --batch 512 \
      --variants tune_plain,tune,plain,identity,host "$@" 2>&1 | tee "$OUT/augment-$call.log"
    ;;
  precision)  # bf16 against float32 on the current recipe, two seeds each
    bash bench/resnet9_precision.sh "$DATA" "$OUT" 2>&1 | tee "$OUT/precision-$call.log"
    ;;
  *)
    echo "unknown step: $step" >&2
    exit 2
    ;;
esac
