#!/usr/bin/env bash
# Configures and builds hone into ./build (Release; CUDA when nvcc is found). Extra arguments are
# passed to ninja as targets, e.g. `tools/build.sh hone`.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${HONE_CMAKE_ARGS:-} > build-configure.log 2>&1 \
  || { cat build-configure.log; exit 1; }
grep "^-- hone:" build-configure.log || true
# Two jobs: the machines have 2 cores and nvcc/cc1plus each take over a GiB.
cmake --build build --parallel "${HONE_JOBS:-2}" ${1:+--target "$@"}
