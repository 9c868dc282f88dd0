# CUDA is optional. AUTO builds it when nvcc is found; the CUDA code then compiles
# even on machines without a GPU, and the CUDA tests skip at run time.
#
# EMULATE builds the CUDA backend without nvcc and without a GPU: our own kernels compile as C++
# against tests/cuda_emu (the toolkit's headers for types and declarations, an emulated runtime and
# cuBLASLt), so the CUDA test suites run, and check our kernels, on any machine (tools/test.sh runs
# them in build-emu). Of cuDNN the convolution API and the backend graph API (which the frontend's
# fused attention graphs run on) are emulated.
set(HONE_HAVE_CUDA OFF)
set(HONE_CUDA_EMULATION OFF)
set(HONE_CUDART_LIBS CUDA::cudart)
set(HONE_CUBLAS_LIBS CUDA::cublas CUDA::cublasLt)
if(HONE_CUDA STREQUAL "EMULATE")
  find_package(CUDAToolkit REQUIRED)
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  set(HONE_HAVE_CUDA ON)
  set(HONE_CUDA_EMULATION ON)
  set(HONE_CUDART_LIBS hone_cuda_emu)
  set(HONE_CUBLAS_LIBS hone_cuda_emu)
elseif(NOT HONE_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # sm_90 = H100/H200. Add more with -DCMAKE_CUDA_ARCHITECTURES="80;90": each one
      # multiplies the CUDA build time on a 2-core machine.
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(HONE_HAVE_CUDA ON)
  elseif(HONE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "HONE_CUDA=ON but no CUDA compiler was found")
  endif()
endif()
