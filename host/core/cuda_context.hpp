// The CUDA side of a Context. Only included by code built with the CUDA backend.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace mbmpo {

struct CudaResources {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  // A device buffer kept for the context's life: the workspace of the per-task parameter sums
  // (kernels/policy/policy_sums.cu: a vector of ones at offset 0, the sums, the activations). It
  // grows only outside graph capture, so a recorded CG iteration holds no allocation node;
  // stream order keeps its users apart.
  float* sum_scratch = nullptr;
  std::size_t sum_scratch_floats = 0;
  // cuBLAS's workspace, owned here (32 MiB, NVIDIA's size for Hopper): without one, cuBLAS
  // allocates with cudaMallocAsync while a graph records, which puts memory nodes in the graph
  // (and a new allocation in every recording).
  void* cublas_workspace = nullptr;
};

}  // namespace mbmpo
