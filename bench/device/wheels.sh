#!/usr/bin/env bash
# Here (no GPU): fetch the wheels the GPU machine lacks, for its Python 3.12, into .whl/ (ignored),
# and copy the CIFAR-10 archive into .devdata/ (ignored). Both travel with `carry`.
#   bash bench/device/wheels.sh [path/to/cifar10.tar.gz]
#   bash bench/device/wheels.sh --spaces   # MNIST and Fashion-MNIST in place of CIFAR-10 (carry holds
#                                            64 MiB: the three do not fit together), for `session.sh spaces`
# The GPU image has JAX, numpy, click, rich, PyYAML, pillow, psutil, scikit-learn and nvidia-ml-py
# (the device README's package list); these are the rest of tune's imports, pinned to versions
# tested here. About 12 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-../shared/datasets/cifar10.tar.gz}
wheels=(keras==3.15.1 optree==0.20.0 namex==0.1.0 keras-tuner==1.4.8 kt-legacy==1.0.5 optuna==5.0.0
        sqlalchemy==2.1.9 greenlet alembic==1.20.1 mako==1.4.3 colorlog==6.12.0
        pydantic==2.14.3 pydantic-core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5)
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
  platforms+=(--platform "$p")
done
mkdir -p .whl .devdata
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d .whl "${wheels[@]}"
if [ "$data" = --spaces ]; then
  rm -f .devdata/cifar10.tar.gz
  cp -u ../shared/datasets/mnist.npz .devdata/mnist.npz
  mkdir -p .devdata/fashion-mnist
  cp -u /usr/share/datasets/fashion-mnist/*.gz .devdata/fashion-mnist/  # apt-get install dataset-fashion-mnist
else
  rm -rf .devdata/mnist.npz .devdata/fashion-mnist
  cp -u "$data" .devdata/cifar10.tar.gz
fi
du -sh .whl .devdata
