#!/usr/bin/env bash
# hone vs PyTorch on the same GPT-2 124M training step, in the same run, 2 threads each.
#   bash bench/gpt2_compare.sh [BATCH] [SEQ] [STEPS]
# Needs Debian's python3-torch (apt-get install python3-torch) and a built ./build/tools/hone.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-4}; T=${2:-256}; N=${3:-3}
echo "== hone"
hone_line=$(OMP_NUM_THREADS=2 ./build/tools/hone bench gpt2 --batch "$B" --seq "$T" --steps "$N" | tee /dev/stderr | tail -1)
echo "== PyTorch"
torch_line=$(OPENBLAS_CORETYPE=SkylakeX OMP_NUM_THREADS=2 /usr/bin/python3 bench/gpt2_torch_step.py --batch "$B" --seq "$T" --steps "$N" | tee /dev/stderr | tail -1)
hone_ms=$(echo "$hone_line" | sed 's/.*median_ms_per_step=\([0-9.]*\).*/\1/')
torch_ms=$(echo "$torch_line" | sed 's/.*median_ms_per_step=\([0-9.]*\).*/\1/')
python3 -c "print(f'hone {float(\"$hone_ms\"):.0f} ms/step, PyTorch {float(\"$torch_ms\"):.0f} ms/step: hone takes {float(\"$hone_ms\")/float(\"$torch_ms\"):.2f}x the time of PyTorch')"
