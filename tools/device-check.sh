#!/usr/bin/env bash
# tools/device-check.sh: the one prepared run on a lent GPU machine (H100/H200, sm_90).
#
# How to run it
#   1. On the dev machine (no GPU), optionally, build the GoogleTest programs for sm_90 and
#      gather them with the shared libraries the GPU machine lacks (it has no Debian packages):
#          tools/device-check.sh --prepare          # -> build-device/{bin,lib} (ignored by git)
#      then carry build-device with the run (run tool: carry ["build-device"]).
#   2. On the GPU machine, from the repo root, with $OUT set (default ./device-check-out):
#          OUT=/some/dir tools/device-check.sh
#
# What it does on the GPU machine (each step logged to $OUT/<step>.log, one line per step in
# $OUT/summary.txt; the whole run stays under ~8 minutes, every step has its own timeout):
#   env        nvidia-smi, nvcc --version, cmake/ninja, where gtest and cuBLASLt live.
#   selftest   builds tests/cuda_selftest.cpp with the kernels straight from the sources (nvcc +
#              g++, 16 parallel jobs; no CMake, so the engine's packages are not needed) and
#              runs it: GEMM (all transposes, odd shapes, bf16), dropout mask == CPU, AdamW and
#              grad norm, elementwise, softmax/layernorm, attention, embedding backward.
#   gtest      when build-device/ was carried: the CUDA kernel tests and the op harness's CUDA
#              suites (forward, backward vs the CPU backward, bf16) from those binaries.
#   bench      `hone bench gpt2 --device cuda` when a hone binary was carried (reports if the
#              command does not support CUDA yet).
# Exit status: 0 when every step that ran passed.
set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

# ---- --prepare: on the dev machine ---------------------------------------------------------------
if [[ "${1:-}" == "--prepare" ]]; then
  BUILD=${BUILD:-build-cuda}
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHONE_BENCH=OFF -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
  ninja -C "$BUILD" -j2 hone_engine_tests hone_kernel_tests hone_cuda_selftest hone || exit 1
  rm -rf build-device && mkdir -p build-device/bin build-device/lib
  for p in tests/hone_engine_tests tests/hone_kernel_tests tests/hone_cuda_selftest tools/hone; do
    [[ -x "$BUILD/$p" ]] && cp "$BUILD/$p" build-device/bin/
  done
  # Shared libraries that are not part of glibc or the CUDA toolkit travel along.
  for b in build-device/bin/*; do
    ldd "$b" | awk '/=> \// {print $3}'
  done | sort -u | grep -v -E '/lib(c|m|dl|rt|pthread|cudart|cublas|cublasLt|cuda)\.so' |
    while read -r lib; do cp -L "$lib" build-device/lib/; done
  strip build-device/bin/* 2>/dev/null
  du -sh build-device
  exit 0
fi

# ---- on the GPU machine ---------------------------------------------------------------------------
OUT=${OUT:-$REPO/device-check-out}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
START=$(date +%s)
STATUS=0
note() { echo "$*" | tee -a "$SUMMARY"; }
elapsed() { echo $(( $(date +%s) - START )); }

note "hone device check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

# env ---------------------------------------------------------------------------------------------
CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")")}
{
  nvidia-smi || true
  nvcc --version || true
  cmake --version | head -1 || true
  ninja --version || true
  g++ --version | head -1 || true
  echo "CUDA_HOME=$CUDA_HOME"
  echo "gtest headers:"; timeout 30 find / -xdev -name gtest.h -path '*gtest/gtest.h' 2>/dev/null | head -3
  echo "cuBLASLt libraries:"; timeout 30 find / -xdev -name 'libcublasLt.so*' 2>/dev/null | head -5
} >"$OUT/env.log" 2>&1
GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
note "gpu: ${GPU:-none found}"
note "nvcc: $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo missing)"

# Library search path: the toolkit's lib dirs plus wherever cuBLASLt is (maybe a Python package).
CUBLAS_DIR=$(timeout 60 find "$CUDA_HOME" / -name 'libcublasLt.so.13*' 2>/dev/null | head -1 | xargs -r dirname)
export LD_LIBRARY_PATH="$REPO/build-device/lib:$CUDA_HOME/lib64:$CUDA_HOME/lib:${CUBLAS_DIR:-}:${LD_LIBRARY_PATH:-}"

# selftest: kernels from sources -------------------------------------------------------------------
ST="$OUT/selftest-build"
mkdir -p "$ST"
build_selftest() {
  local inc="-I$REPO -I$REPO/tests -I$CUDA_HOME/include"
  local cxx_srcs cu_srcs
  # The portable CPU kernels only (no AVX-512/AVX2 files: the host CPU is unknown here).
  cxx_srcs=$(ls kernels/*.cpp kernels/cpu/*.cpp kernels/ref/*.cpp kernels/cuda/*.cpp tests/cuda_selftest.cpp |
             grep -v -E '_(avx512|avx2)\.cpp$')
  cu_srcs=$(ls kernels/cuda/*.cu)
  {
    for f in $cu_srcs; do
      echo "nvcc -O3 -std=c++17 -arch=sm_90 --expt-relaxed-constexpr -lineinfo -DHONE_WITH_CUDA=1 $inc -c $f -o $ST/$(echo "$f" | tr / _).o"
    done
    for f in $cxx_srcs; do
      echo "g++ -O2 -std=c++20 -fopenmp -DHONE_WITH_CUDA=1 $inc -c $f -o $ST/$(echo "$f" | tr / _).o"
    done
  } >"$ST/commands.txt"
  xargs -d '\n' -n 1 -P "${JOBS:-16}" sh -c <"$ST/commands.txt" || return 1
  g++ -fopenmp "$ST"/*.o -L"$CUDA_HOME/lib64" -L"$CUDA_HOME/lib" ${CUBLAS_DIR:+-L$CUBLAS_DIR} \
    -lcublasLt -lcublas -lcudart -o "$ST/hone_cuda_selftest"
}
if timeout 300 bash -c "$(declare -f build_selftest); REPO=$REPO ST=$ST CUDA_HOME=$CUDA_HOME CUBLAS_DIR=${CUBLAS_DIR:-} build_selftest" \
     >"$OUT/selftest-build.log" 2>&1; then
  if timeout 120 "$ST/hone_cuda_selftest" >"$OUT/selftest.log" 2>&1; then
    note "selftest: PASS ($(grep -c '^PASS' "$OUT/selftest.log") checks) [$(elapsed)s]"
  else
    STATUS=1
    note "selftest: FAIL (see selftest.log) [$(elapsed)s]"
    grep -E '^FAIL' "$OUT/selftest.log" | sed 's/^/  /' | tee -a "$SUMMARY" >/dev/null
  fi
else
  STATUS=1
  note "selftest: BUILD FAILED (see selftest-build.log) [$(elapsed)s]"
fi

# gtest programs carried from the dev machine -----------------------------------------------------------
if [[ -x build-device/bin/hone_kernel_tests ]]; then
  if timeout 120 build-device/bin/hone_kernel_tests --gtest_filter='CudaKernels*' >"$OUT/gtest-kernels.log" 2>&1; then
    note "gtest kernels (CudaKernels*): PASS [$(elapsed)s]"
  else
    STATUS=1
    note "gtest kernels (CudaKernels*): FAIL (see gtest-kernels.log) [$(elapsed)s]"
  fi
fi
if [[ -x build-device/bin/hone_engine_tests ]]; then
  # Op harness on CUDA (forward, backward vs CPU backward, bf16) and the engine's other CUDA cases.
  if timeout 240 build-device/bin/hone_engine_tests --gtest_filter='*Cuda*:*cuda*' --gtest_brief=1 \
       >"$OUT/gtest-engine.log" 2>&1; then
    note "gtest engine (*Cuda*): PASS ($(grep -o '[0-9]* tests from' "$OUT/gtest-engine.log" | head -1)) [$(elapsed)s]"
  else
    STATUS=1
    note "gtest engine (*Cuda*): FAIL, $(grep -c '^\[  FAILED  \]' "$OUT/gtest-engine.log") failed lines (see gtest-engine.log) [$(elapsed)s]"
    grep -E '^\[  FAILED  \]' "$OUT/gtest-engine.log" | head -40 | sed 's/^/  /' >>"$SUMMARY"
  fi
else
  note "gtest: not run (carry build-device/ made by 'tools/device-check.sh --prepare' to run them)"
fi

# bench ------------------------------------------------------------------------------------------------------
if [[ -x build-device/bin/hone ]]; then
  if timeout 150 build-device/bin/hone bench gpt2 --device cuda >"$OUT/bench-gpt2.log" 2>&1; then
    note "bench gpt2 --device cuda: $(tail -3 "$OUT/bench-gpt2.log" | tr '\n' ' ') [$(elapsed)s]"
  else
    note "bench gpt2 --device cuda: not available or failed: $(tail -1 "$OUT/bench-gpt2.log") [$(elapsed)s]"
  fi
fi

note "total: $(elapsed)s, status $STATUS"
exit $STATUS
