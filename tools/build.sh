#!/usr/bin/env bash
# Configures and builds hone (Release; CUDA when nvcc is found) into ${HONE_BUILD_DIR:-build}.
# Extra arguments are passed as targets, e.g. `tools/build.sh hone`.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${HONE_BUILD_DIR:-build}
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release ${HONE_CMAKE_ARGS:-} > "$dir.configure.log" 2>&1 \
  || { cat "$dir.configure.log"; exit 1; }
grep "^-- hone:" "$dir.configure.log" || true
# Two jobs: the machines have 2 cores and nvcc/cc1plus each take over a GiB.
cmake --build "$dir" --parallel "${HONE_JOBS:-2}" ${1:+--target "$@"}
