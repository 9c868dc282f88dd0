#!/usr/bin/env bash
# The README's test command: set up, build everything, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-debian.sh
HONE_CMAKE_ARGS="${HONE_CMAKE_ARGS:-} -DHONE_BENCH=OFF" bash tools/build.sh
cd build
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} ctest --output-on-failure --timeout 900
