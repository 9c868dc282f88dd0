// HONE_HD: a small function that CPU code and CUDA device code both call (nvcc compiles it for both;
// other compilers see a plain inline function).
// HONE_HD_HOT: the same, and always inlined by gcc as well: formulas inside the CPU's vectorised
// loops, which gcc vectorises only when the call is gone.
#pragma once

#if defined(__CUDACC__)
#define HONE_HD __host__ __device__ __forceinline__
#define HONE_HD_HOT __host__ __device__ __forceinline__
#else
#define HONE_HD inline
#define HONE_HD_HOT [[gnu::always_inline]] inline
#endif
