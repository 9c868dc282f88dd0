#!/usr/bin/env bash
# tools/device-check.sh: the one prepared run on a lent GPU machine (H100/H200, sm_90).
#
# How to run it
#   1. On the dev machine (no GPU): build the test programs, the hone binary and the GPU
#      benchmarks for sm_90 and pack them, with the shared libraries and the few shared-data files
#      the GPU machine lacks (it has no Debian packages and no ../shared), into one archive:
#          tools/device-check.sh --prepare          # -> build-device/payload.tar.xz (ignored by git)
#      then carry build-device with the run (run tool: carry ["build-device"]).
#   2. On the GPU machine, from the repo root, with $OUT set (default ./device-check-out):
#          OUT=/some/dir tools/device-check.sh
#
# What it does on the GPU machine (each step logged to <step>.log, packed at the end into
# $OUT/logs.tar.gz, as the run tool brings back only 8 files; one line per step, the failures and the
# profiles in $OUT/summary.txt; the whole run stays under ~8 minutes, every step has its own timeout):
#   env        nvidia-smi, nvcc --version, cmake/ninja, where gtest, cuBLASLt and cuDNN live.
#   selftest   builds tests/cuda_selftest.cpp with the kernels straight from the sources (nvcc +
#              g++, 16 parallel jobs; no CMake, so the engine's packages are not needed) and
#              runs it: GEMM (all transposes, odd shapes, bf16), dropout mask == CPU, AdamW and
#              grad norm, elementwise, softmax/layernorm, attention, embedding backward.
#   gtest      from the carried programs: the CUDA kernel tests, the op harness's CUDA suites
#              (forward, backward vs the CPU backward, bf16), GPT-2 parity on the GPU (fp32,
#              bf16, fp16), the Trainer on CUDA vs the CPU, and `hone finetune device=cuda`.
#   parity124m GPT-2 124M (full size, random init) against transformers on the GPU, fp32 and bf16
#              (tools/gpt2_124m_parity.py; needs the machine's torch + transformers).
#   bench      `hone bench gpt2 --device cuda` (tokens/s, MFU, peak memory; bf16 with --profile: GPU
#              busy time, time by kind of work and the top kernels, traced with CUPTI) in bf16 and fp32,
#              `hone bench resnet --device cuda`, and the per-kernel GPU benchmarks (GEMM
#              cuBLASLt vs cuBLAS, fused vs composed, attention).
#   ab         the GPT-2 bf16 step with each fast path's switch off in turn (HONE_CE_GRAD_IN_FORWARD=0, ...),
#              and with each opt-in (HONE_GEMM_AUTOTUNE=1, HONE_DETERMINISTIC=0, HONE_GEMM_BGRAD_EPILOGUE=1;
#              ResNet with HONE_DETERMINISTIC=0 and HONE_CUDNN_NHWC=1); AB='X=0;X=0 Y=1' measures those
#              GPT-2 settings instead (apart by ';', variables of one setting apart by spaces).
#   gtestquick (only when named in ONLY) the kernel checks, autocast's GEMM paths and the model-level CUDA
#              cases, in about a minute.
# KERNEL_FILTER: a Google Benchmark filter for the kernelbench step (default: every GPU case).
# ONLY=step,step,... runs a subset (steps: selftest, gtest, gtestquick, parity124m, bench, fp32bench, kernelbench, ab,
# torch (eager), torchcompile), for a
# short rerun when little device time is left, e.g. ONLY=gtest,parity124m,bench.
# Exit status: 0 when every step that ran passed.
set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

# ---- --prepare: on the dev machine ---------------------------------------------------------------
if [[ "${1:-}" == "--prepare" ]]; then
  BUILD=${BUILD:-build-cuda}
  DATA=${HONE_DATA:-$REPO/../shared/data}
  # The cuDNN frontend headers: without them the binaries build without cuDNN attention.
  bash tools/fetch-cudnn-frontend.sh || echo "warning: no cuDNN frontend headers: attention will use hone's kernel"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHONE_BENCH=ON -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
  ninja -C "$BUILD" -j"${HONE_JOBS:-2}" hone_engine_tests hone_kernel_tests hone_model_tests hone_tool_tests \
    hone_cuda_selftest hone fused_bench row_kernels_bench attention_bench conv_bench $(ls bench/kernels/gemm_cuda_bench.cpp >/dev/null 2>&1 && echo gemm_cuda_bench) || exit 1
  STAGE=$(mktemp -d)
  mkdir -p "$STAGE"/{tests,tools,bench,lib,data}
  # The build tree's layout: the tool tests find the hone binary at tests/../tools/hone.
  for p in tests/hone_engine_tests tests/hone_kernel_tests tests/hone_model_tests tests/hone_tool_tests \
           tests/hone_cuda_selftest tools/hone bench/gemm_cuda_bench bench/fused_bench bench/row_kernels_bench bench/attention_bench bench/conv_bench; do
    [[ -x "$BUILD/$p" ]] && cp "$BUILD/$p" "$STAGE/$p"
  done
  # Shared libraries that are not part of glibc or the CUDA toolkit travel along, and cuDNN's
  # 128 KB loader libcudnn.so.9 (so the programs start on a machine without cuDNN; its engine
  # libraries do not travel, and without them convolution and attention take our own kernels).
  for b in "$STAGE"/{tests,tools,bench}/*; do
    ldd "$b" | awk '/=> \// {print $3}'
  done | sort -u | grep -v -E '/lib(c|m|dl|rt|pthread|cudart|cublas|cublasLt|cuda|cudnn_[a-z_]+)\.so' |
    while read -r lib; do cp -L "$lib" "$STAGE/lib/"; done
  # The shared data the CLI test needs (HONE_DATA on the GPU machine).
  for f in tokenizers/gpt2/encoder.json tokenizers/gpt2/vocab.bpe text/tinyshakespeare/input.txt; do
    if [[ -f "$DATA/$f" ]]; then mkdir -p "$STAGE/data/$(dirname "$f")" && cp "$DATA/$f" "$STAGE/data/$f"; fi
  done
  strip "$STAGE"/{tests,tools,bench}/* 2>/dev/null
  rm -rf build-device && mkdir -p build-device
  # One xz archive: the carried folder must stay under 64 MiB.
  tar -C "$STAGE" -cJf build-device/payload.tar.xz . && rm -rf "$STAGE"
  du -sh build-device/payload.tar.xz
  exit 0
fi

# ---- on the GPU machine ---------------------------------------------------------------------------
OUT=${OUT:-$REPO/device-check-out}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
START=$(date +%s)
ORIG_LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}  # PyTorch (the peer) runs with the machine's own search path
STATUS=0
note() { echo "$*" | tee -a "$SUMMARY"; }
wanted() { [[ -z "${ONLY:-}" || ",$ONLY," == *",$1,"* ]]; }  # is step $1 to run
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
# cuDNN may exist only inside a Python package (nvidia-cudnn-cu13): without it convolutions and
# attention take our own kernels (and say so).
CUDNN_DIR=$(timeout 60 find / -xdev -name 'libcudnn.so.9*' 2>/dev/null | head -1 | xargs -r dirname)
note "cudnn: ${CUDNN_DIR:-not found (own conv/attention kernels will run)}"
export LD_LIBRARY_PATH="$CUDA_HOME/lib64:$CUDA_HOME/lib:${CUBLAS_DIR:-}:${CUDNN_DIR:-}:${LD_LIBRARY_PATH:-}"

# selftest: kernels from sources -------------------------------------------------------------------
# The objects stay out of $OUT: the run tool brings back a limited number of files.
ST="$REPO/build-device/selftest-build"
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
if [[ -n "${SKIP_SELFTEST:-}" ]] || ! wanted selftest; then
  note "selftest: skipped (SKIP_SELFTEST set, or not in ONLY)"
elif timeout 300 bash -c "$(declare -f build_selftest); REPO=$REPO ST=$ST CUDA_HOME=$CUDA_HOME CUBLAS_DIR=${CUBLAS_DIR:-} build_selftest" \
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
CARRIED=""
if [[ -f build-device/payload.tar.xz ]]; then
  CARRIED=build-device/run
  rm -rf "$CARRIED" && mkdir -p "$CARRIED" && tar -C "$CARRIED" -xJf build-device/payload.tar.xz
  # Last: the machine's own libraries (its cuDNN, a newer libstdc++) take precedence.
  export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$REPO/$CARRIED/lib"
  export HONE_DATA="$REPO/$CARRIED/data"
  # The tests read their fixtures from $HONE_SOURCE_DIR (tests/test_source_dir.h): this copy.
  export HONE_SOURCE_DIR="$REPO"
  note "carried hone: $(timeout 30 "$CARRIED/tools/hone" version 2>&1 | tr -s ' ' | tr '\n' ' ')"
fi

# run_gtest NAME PROGRAM FILTER TIMEOUT
run_gtest() {
  local name=$1 prog=$2 filter=$3 limit=$4 log="$OUT/gtest-$1.log"
  if timeout "$limit" "$CARRIED/tests/$prog" --gtest_filter="$filter" --gtest_brief=1 >"$log" 2>&1; then
    note "gtest $name ($filter): PASS: $(grep -h -E '^\[ +(PASSED|SKIPPED) +\] [0-9]+ tests?' "$log" | tr -s ' ' | tr '\n' ' ')[$(elapsed)s]"
  else
    STATUS=1
    note "gtest $name ($filter): FAIL, $(grep -c '^\[  FAILED  \]' "$log") failed lines (see gtest-$name.log) [$(elapsed)s]"
    grep -E '^\[  FAILED  \]' "$log" | head -40 | sed 's/^/  /' >>"$SUMMARY"
  fi
  # The GPU lines of the tests' own reports (the CPU ones are in ctest's output already).
  grep -E '^\[(cuda|gemm_epilogue)\]|^\[parity\].* cuda:|^\[hone\] attention:' "$log" | sort -u | sed 's/^/  /' >>"$SUMMARY"
}

if [[ -n "$CARRIED" ]] && wanted gtest; then
  run_gtest kernels hone_kernel_tests 'CudaKernels*:*Cuda*-*CudaAttentionCudnn*' 120
  # cuDNN attention (the parameterised cases are named Sdpa/CudaAttentionCudnn.*): each shape builds its
  # graphs on first use, so a longer limit.
  run_gtest sdpa hone_kernel_tests '*CudaAttentionCudnn*' 300
  # Op harness on CUDA (forward, backward vs CPU backward, bf16) and the engine's other CUDA cases.
  run_gtest engine hone_engine_tests '*Cuda*:*cuda*' 240
  run_gtest models hone_model_tests '*Cuda*:Gpt2Parity.*:Gpt2Generate.*:Trainer.*' 180
  run_gtest tools hone_tool_tests 'FinetuneCli.Cuda*' 120
fi
if [[ -n "$CARRIED" && ",${ONLY:-}," == *",gtestquick,"* ]]; then
  # The short form (only when named in ONLY), for a rerun with little device time left: the kernel checks, autocast's GEMM paths,
  # and the model-level CUDA cases (GPT-2 and BERT parity on CUDA, the Trainer on CUDA against the CPU).
  run_gtest kernels hone_kernel_tests 'CudaKernels*' 60
  run_gtest autocast hone_engine_tests 'AutocastCopy.*' 60
  run_gtest models hone_model_tests '*OnCuda*:Trainer.Cuda*' 120
fi
if [[ -z "$CARRIED" ]]; then
  note "gtest: not run (carry build-device/ made by 'tools/device-check.sh --prepare' to run them)"
fi

# The machine's Python with a CUDA torch (and transformers) is the peer: for the GPT-2 124M parity
# below and the PyTorch GPT-2 step in the benches. It runs with the machine's own library path.
PY=$(command -v python3 || true)
TORCH_OK=0
if [[ -n "$PY" ]] && LD_LIBRARY_PATH="$ORIG_LD_LIBRARY_PATH" timeout 60 "$PY" -c \
     "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
  TORCH_OK=1
else
  note "torch peer: none (no Python with a CUDA torch): the 124M parity and the PyTorch bench are skipped"
fi

# GPT-2 124M parity at full size against transformers on this GPU (fp32 and bf16; the committed
# fixtures, checked by the gtest step, are small models).
if [[ -n "$CARRIED" ]] && (( TORCH_OK )) && wanted parity124m; then
  if LD_LIBRARY_PATH="$ORIG_LD_LIBRARY_PATH" HF_HUB_OFFLINE=1 timeout 240 "$PY" tools/gpt2_124m_parity.py \
       --hone "$CARRIED/tools/hone" --device cuda --work "$REPO/build-device/parity124m" --hone-ld-path "$LD_LIBRARY_PATH" \
       >"$OUT/parity124m.log" 2>&1; then
    note "parity124m: PASS [$(elapsed)s]"
  else
    STATUS=1
    note "parity124m: FAIL or error (see parity124m.log) [$(elapsed)s]"
    tail -3 "$OUT/parity124m.log" | sed 's/^/  /' >>"$SUMMARY"
  fi
  grep -E '^\[parity124m\]' "$OUT/parity124m.log" | sed 's/^/  /' >>"$SUMMARY"
  rm -rf "$REPO/build-device/parity124m"  # hundreds of MB of weights and outputs, kept out of $OUT
fi

# bench ------------------------------------------------------------------------------------------------------
# run_bench NAME TIMEOUT COMMAND...: the last lines of its output go into the summary.
# Past BUDGET seconds the remaining benches are skipped (the run must stay under ~8 minutes).
BUDGET=${BUDGET:-450}
run_bench() {
  local name=$1 limit=$2
  shift 2
  if (( $(elapsed) > BUDGET )); then note "bench $name: skipped (past the ${BUDGET}s budget)"; return; fi
  if timeout "$limit" "$@" >"$OUT/bench-$name.log" 2>&1; then
    note "bench $name: $(grep -E 'MFU|median|peak device|\[hone\] attention:' "$OUT/bench-$name.log" | tr '\n' ' ') [$(elapsed)s]"
    # The kernel profile (--profile): where the GPU's time went, kept line by line; and cuDNN's convolution choices.
    grep -E '^\[(profile|cudnn)\]' "$OUT/bench-$name.log" | sed 's/^/  /' >>"$SUMMARY"
  else
    # hone's own error line (before its usage text) when there is one, else where it stopped.
    local why
    why=$(grep -m1 -E '^hone [a-z]+: ' "$OUT/bench-$name.log" || tail -2 "$OUT/bench-$name.log")
    note "bench $name: failed or timed out: $(echo "$why" | tr '\n' ' ') [$(elapsed)s]"
  fi
}
if [[ -n "$CARRIED" ]]; then
  H="$CARRIED/tools/hone"
  TORCH_STEP=(env LD_LIBRARY_PATH="$ORIG_LD_LIBRARY_PATH" "$PY" bench/gpt2_torch_step.py --device cuda --batch 16
              --seq 1024 --precision bf16 --steps 10 --warmup 3)
  wanted bench && run_bench gpt2-bf16 150 "$H" bench gpt2 --device cuda --precision bf16 --profile
  (( TORCH_OK )) && wanted torch && run_bench torch-gpt2-bf16 150 "${TORCH_STEP[@]}"
  wanted fp32bench && run_bench gpt2-fp32-tf32 120 "$H" bench gpt2 --device cuda --precision fp32 --tf32 --steps 5
  wanted bench && run_bench resnet-bf16 90 "$H" bench resnet --device cuda --precision bf16 --profile
  # A/B: the GPT-2 bf16 step again under other switch settings, so that each path's end-to-end worth is
  # measured in the same run, on the same card: each fast path switched off in turn, the opt-ins (each
  # GEMM configuration on the fastest of cuBLASLt's candidates, timed; cuDNN's non-deterministic
  # algorithms: what determinism costs). AB='A=0;B=0 C=1' replaces the list (settings apart by ';').
  if wanted ab; then
    IFS=';' read -r -a AB_SETTINGS <<<"${AB:-HONE_CE_GRAD_IN_FORWARD=0;HONE_LAYERNORM_BACKWARD_VEC=0;HONE_ADD_LAYERNORM_VEC_REGS=0;HONE_GEMM_EPILOGUE=0;HONE_GEMM_BGRAD_EPILOGUE=1;HONE_GEMM_AUTOTUNE=1;HONE_DETERMINISTIC=0}"
    for setting in "${AB_SETTINGS[@]}"; do
      read -r -a vars <<<"$setting"
      run_bench "gpt2-bf16-${setting// /,}" 60 env "${vars[@]}" "$H" bench gpt2 --device cuda --precision bf16 --steps 10
      grep -h -E '^\[gemm\] autotune' "$OUT/bench-gpt2-bf16-${setting// /,}.log" 2>/dev/null | sed 's/^/  /' >>"$SUMMARY"
    done
    if [[ -z "${AB:-}" ]]; then
      run_bench resnet-bf16-HONE_DETERMINISTIC=0 90 env HONE_DETERMINISTIC=0 "$H" bench resnet --device cuda --precision bf16
      run_bench resnet-bf16-HONE_CUDNN_NHWC=1 90 env HONE_CUDNN_NHWC=1 "$H" bench resnet --device cuda --precision bf16
    fi
  fi
  for b in gemm_cuda_bench fused_bench row_kernels_bench attention_bench conv_bench; do
    wanted kernelbench || continue
    if (( $(elapsed) > BUDGET )); then note "bench $b: skipped (past the ${BUDGET}s budget)"; continue; fi
    if [[ -x "$CARRIED/bench/$b" ]]; then
      timeout 90 "$CARRIED/bench/$b" --benchmark_filter="${KERNEL_FILTER:-[Cc]uda|CUDA|GPU|Gpu}" --benchmark_min_time=0.2 \
        --benchmark_out="$OUT/$b.json" --benchmark_out_format=json >"$OUT/$b.log" 2>&1
      note "bench $b: rc $?, $(grep -c -E '^[A-Za-z].*(ns|us|ms) ' "$OUT/$b.log") GPU cases (see $b.log) [$(elapsed)s]"
      # The row kernels' paths side by side (time and bytes/s) are read straight off the summary.
      [[ $b == row_kernels_bench ]] && grep -E '^cuda/' "$OUT/$b.log" | sed 's/  */ /g; s/^/  /' >>"$SUMMARY"
    fi
  done
  (( TORCH_OK )) && wanted torchcompile && run_bench torch-gpt2-bf16-compile 240 "${TORCH_STEP[@]}" --compile
fi

note "total: $(elapsed)s, status $STATUS"
# The run tool brings back at most 8 files from $OUT: every log goes into one archive beside the summary.
(cd "$OUT" && find . -type f ! -name summary.txt ! -name logs.tar.gz | sort | tar -czf logs.tar.gz -T - &&
  find . -type f ! -name summary.txt ! -name logs.tar.gz -delete && find . -mindepth 1 -type d -empty -delete)
exit $STATUS
