// The CUDA side of a Context. Only included by code built with the CUDA backend.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace mbmpo {

struct CudaResources {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
};

}  // namespace mbmpo
