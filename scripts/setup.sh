#!/usr/bin/env bash
# Set up `tune` in ./.venv on a fresh Debian machine (CPU).
#   scripts/setup.sh          the package, TensorFlow (the default Keras backend)
#   scripts/setup.sh --test   also test tools, JAX and PyTorch (CPU) for the other backends and
#                             Optuna's GP sampler, Debian's Fashion-MNIST, a PostgreSQL server and
#                             chromium (the report's browser test)
set -euo pipefail
cd "$(dirname "$0")/.."
test_deps=0
[ "${1:-}" = "--test" ] && test_deps=1

if [ "$test_deps" = 1 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # chromium: the report's test opens it in a real browser
    apt-get install -y -qq dataset-fashion-mnist postgresql chromium >/dev/null
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$test_deps" = 1 ]; then
    # The CPU build of torch first, pinned: a bare range would pull a multi-GB CUDA build.
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -e ".[tensorflow,report,jax,gp,postgres,test]"
else
    .venv/bin/python -m pip install -q -e ".[tensorflow,report]"
fi
echo "tune is installed in .venv: .venv/bin/tune --help"
