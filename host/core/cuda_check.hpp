// Checking of every CUDA runtime and cuBLAS call. Only included by code built with the CUDA
// backend. A failure throws mbmpo::Error with the call, the file and line, and the error's name.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace mbmpo {

void throw_cuda_error(cudaError_t status, const char* expression, const char* file, int line);
void throw_cublas_error(cublasStatus_t status, const char* expression, const char* file, int line);

// After a kernel launch: the launch error always (cheap, no synchronisation); in debug builds also
// a device synchronisation, so a fault is reported at the launch that caused it.
void check_kernel_launch(const char* kernel, const char* file, int line);

}  // namespace mbmpo

#define MBMPO_CUDA_CHECK(expression)                                                        \
  do {                                                                                      \
    const cudaError_t mbmpo_status_ = (expression);                                        \
    if (mbmpo_status_ != cudaSuccess)                                                      \
      ::mbmpo::throw_cuda_error(mbmpo_status_, #expression, __FILE__, __LINE__);           \
  } while (0)

#define MBMPO_CUBLAS_CHECK(expression)                                                      \
  do {                                                                                      \
    const cublasStatus_t mbmpo_status_ = (expression);                                     \
    if (mbmpo_status_ != CUBLAS_STATUS_SUCCESS)                                            \
      ::mbmpo::throw_cublas_error(mbmpo_status_, #expression, __FILE__, __LINE__);         \
  } while (0)

#define MBMPO_KERNEL_CHECK(kernel_name) ::mbmpo::check_kernel_launch(kernel_name, __FILE__, __LINE__)
