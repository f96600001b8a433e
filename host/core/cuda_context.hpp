// The CUDA side of a Context. Only included by code built with the CUDA backend.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>

namespace mbmpo {

// cuBLAS's workspace per handle: NVIDIA's size for Hopper. Every handle below has one of this
// size, because cuBLAS may pick its kernel by the workspace it has.
constexpr std::size_t kCublasWorkspaceBytes = std::size_t(32) << 20;

// A side stream with its own cuBLAS handle and workspace, on which one of several seeds issues its
// products (kernels/core/seed_gemm.cu). cuBLAS promises identical bits for identical calls only
// while a workspace is not shared between concurrent streams; a private handle and workspace per
// branch keeps each seed's call exactly the call a single run makes on the main stream.
struct CudaBranch {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  void* cublas_workspace = nullptr;
  cudaEvent_t done = nullptr;  // recorded on the branch when its products are issued
};
// Seeds beyond this many share branches in turn (seed g on branch g mod kCudaBranches).
constexpr int kCudaBranches = 4;

struct CudaResources {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  // The branches the per-seed products fork to from `stream` and join back from; `fork` is
  // recorded on `stream` before they start.
  CudaBranch branches[kCudaBranches];
  cudaEvent_t fork = nullptr;
  // A device buffer kept for the context's life: the workspace of the per-task parameter sums
  // (kernels/policy/policy_sums.cu: a vector of ones at offset 0, the sums, the activations). It
  // grows only outside graph capture, so a recorded CG iteration holds no allocation node;
  // stream order keeps its users apart.
  float* sum_scratch = nullptr;
  std::size_t sum_scratch_floats = 0;
  // cuBLAS's workspace, owned here (kCublasWorkspaceBytes): without one, cuBLAS
  // allocates with cudaMallocAsync while a graph records, which puts memory nodes in the graph
  // (and a new allocation in every recording).
  void* cublas_workspace = nullptr;
};

}  // namespace mbmpo
