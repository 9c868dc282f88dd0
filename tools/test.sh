#!/usr/bin/env bash
# The README's test command: set up, build everything, run the whole test suite; then build the
# CUDA backend once more on the CUDA emulator (tests/cuda_emu: no nvcc, no GPU needed) and run the
# suite there, so that every CUDA test (op harness on CUDA, GPT-2 parity, Trainer and finetune on
# CUDA, our kernels against the CPU) runs on every machine. HONE_CUDA_EMULATION=0 skips that part.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-debian.sh
HONE_CMAKE_ARGS="${HONE_CMAKE_ARGS:-} -DHONE_BENCH=OFF" bash tools/build.sh
(cd build && OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} ctest --output-on-failure --timeout 900)
if [ "${HONE_CUDA_EMULATION:-1}" != 0 ]; then
  # The emulator compiles against the CUDA toolkit's headers (types and API declarations).
  if ! command -v nvcc >/dev/null && [ ! -e /usr/local/cuda/include/cuda_runtime.h ]; then
    echo "== the CUDA emulator suites are skipped: no CUDA toolkit headers on this machine =="
  else
    echo "== the CUDA suites on the CUDA emulator (build-emu) =="
    HONE_BUILD_DIR=build-emu HONE_CMAKE_ARGS="${HONE_CMAKE_ARGS:-} -DHONE_BENCH=OFF -DHONE_CUDA=EMULATE" bash tools/build.sh
    # Every tensor its own allocation: the emulator's guard pages and NaN fill then see each buffer.
    (cd build-emu && HONE_CUDA_CACHING=0 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} ctest --output-on-failure --timeout 900)
  fi
fi
