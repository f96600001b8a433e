#include "host/core/cuda_check.hpp"

#include <string>

#include "host/core/cuda_graph.hpp"
#include "host/core/error.hpp"

namespace mbmpo {

void throw_cuda_error(cudaError_t status, const char* expression, const char* file, int line) {
  // A failed call also sets the thread's last error; clear it (where it is not sticky), or the
  // next kernel launch check would report this failure again under another kernel's name.
  cudaGetLastError();
  throw Error(detail::concat("CUDA error ", cudaGetErrorName(status), " (", cudaGetErrorString(status),
                             ") in ", expression, " at ", file, ":", line));
}

void throw_cublas_error(cublasStatus_t status, const char* expression, const char* file, int line) {
  throw Error(detail::concat("cuBLAS error ", cublasGetStatusName(status), " (",
                             cublasGetStatusString(status), ") in ", expression, " at ", file, ":",
                             line));
}

void check_kernel_launch(const char* kernel, const char* file, int line) {
  cudaError_t status = cudaGetLastError();
#ifndef NDEBUG
  // Debug builds wait for the kernel so a fault names it; not while recording a graph, where
  // synchronising is illegal (the graph's launch is checked instead).
  if (status == cudaSuccess && !stream_capture_active()) status = cudaDeviceSynchronize();
#endif
  if (status != cudaSuccess) {
    throw Error(detail::concat("CUDA error ", cudaGetErrorName(status), " (",
                               cudaGetErrorString(status), ") after launching kernel ", kernel,
                               " at ", file, ":", line));
  }
}

}  // namespace mbmpo
