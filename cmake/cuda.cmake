# CUDA is optional. AUTO builds it when nvcc is found; the CUDA code then compiles
# even on machines without a GPU, and the CUDA tests skip at run time.
set(HONE_HAVE_CUDA OFF)
if(NOT HONE_CUDA STREQUAL "OFF")
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
