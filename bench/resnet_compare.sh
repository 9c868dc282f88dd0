#!/usr/bin/env bash
# hone vs PyTorch (channels_last) on the same ResNet-18 (CIFAR stem) training step, same run.
#   bash bench/resnet_compare.sh [BATCH] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-32}; N=${2:-5}
echo "== hone"
hone_line=$(OMP_NUM_THREADS=2 ./build/tools/hone bench resnet --batch "$B" --steps "$N" | tee /dev/stderr | tail -1)
echo "== PyTorch"
torch_line=$(OPENBLAS_CORETYPE=SkylakeX OMP_NUM_THREADS=2 /usr/bin/python3 bench/resnet_torch_step.py --batch "$B" --steps "$N" | tee /dev/stderr | tail -1)
hone_ms=$(echo "$hone_line" | sed 's/.*median_ms_per_step=\([0-9.]*\).*/\1/')
torch_ms=$(echo "$torch_line" | sed 's/.*median_ms_per_step=\([0-9.]*\).*/\1/')
python3 -c "print(f'hone {float(\"$hone_ms\"):.0f} ms/step, PyTorch {float(\"$torch_ms\"):.0f} ms/step: hone takes {float(\"$hone_ms\")/float(\"$torch_ms\"):.2f}x the time of PyTorch')"
