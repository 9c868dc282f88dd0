# Decides how the CPU kernels are vectorised.
# The AVX-512 micro-kernels live in their own translation units compiled with explicit
# -mavx512f flags; the code that calls them checks the running CPU first
# (kernels/cpu/cpu_features.h), so a binary built here never executes an AVX-512
# instruction on a CPU without it.
include(CheckCXXCompilerFlag)
check_cxx_compiler_flag("-mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma" HONE_HAVE_AVX512_FLAGS)
set(HONE_AVX512_FLAGS -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mavx2)
check_cxx_compiler_flag("-mavx2 -mfma" HONE_HAVE_AVX2_FLAGS)
set(HONE_AVX2_FLAGS -mavx2 -mfma)
