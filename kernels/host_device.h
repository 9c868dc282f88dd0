// HONE_HD: a small function that CPU code and CUDA device code both call (nvcc compiles it for both;
// other compilers see a plain inline function).
#pragma once

#if defined(__CUDACC__)
#define HONE_HD __host__ __device__ __forceinline__
#else
#define HONE_HD inline
#endif
