#include "host/core/context.hpp"

#include "host/core/error.hpp"
#include "host/core/memory.hpp"

#include <cstdint>

#ifdef MBMPO_WITH_CUDA
#include "host/core/cuda_check.hpp"
#include "host/core/cuda_context.hpp"
#endif

namespace mbmpo {

#ifndef MBMPO_WITH_CUDA
struct CudaResources {};
#endif

Context::Context(Backend backend) : backend_(backend) {
  if (backend_ != Backend::cuda) return;
  MBMPO_CHECK(cuda_availability().usable, "cannot create a CUDA context, no CUDA device is usable: ",
              cuda_availability().reason);
#ifdef MBMPO_WITH_CUDA
  cuda_ = std::make_unique<CudaResources>();
  // A blocking stream: it synchronises with the legacy default stream that Tensor copies use.
  MBMPO_CUDA_CHECK(cudaStreamCreate(&cuda_->stream));
  const cublasStatus_t status = cublasCreate(&cuda_->cublas);
  if (status != CUBLAS_STATUS_SUCCESS) {
    cudaStreamDestroy(cuda_->stream);
    MBMPO_CUBLAS_CHECK(status);
  }
  MBMPO_CUBLAS_CHECK(cublasSetStream(cuda_->cublas, cuda_->stream));
  constexpr std::size_t kCublasWorkspaceBytes = std::size_t(32) << 20;
  cuda_->cublas_workspace = memory::allocate(Backend::cuda, kCublasWorkspaceBytes);
  MBMPO_CUBLAS_CHECK(cublasSetWorkspace(cuda_->cublas, cuda_->cublas_workspace, kCublasWorkspaceBytes));
  // Plain FP32 unless a caller opts into TF32 for a particular product.
  MBMPO_CUBLAS_CHECK(cublasSetMathMode(cuda_->cublas, CUBLAS_DEFAULT_MATH));
  // Stream-ordered scratch (cudaMallocAsync) comes from the device's default pool: let the pool
  // keep what it has, instead of returning it to the driver at every synchronisation (threshold 0)
  // and mapping it again at the next allocation.
  int device = 0;
  MBMPO_CUDA_CHECK(cudaGetDevice(&device));
  cudaMemPool_t pool = nullptr;
  MBMPO_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
  std::uint64_t keep = UINT64_MAX;
  MBMPO_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
#endif
}

Context::~Context() {
#ifdef MBMPO_WITH_CUDA
  if (cuda_) {
    cudaStreamSynchronize(cuda_->stream);
    memory::release(Backend::cuda, cuda_->sum_scratch);
    memory::release(Backend::cuda, cuda_->cublas_workspace);
    cublasDestroy(cuda_->cublas);
    cudaStreamDestroy(cuda_->stream);
  }
#endif
}

void Context::synchronize() {
#ifdef MBMPO_WITH_CUDA
  if (cuda_) MBMPO_CUDA_CHECK(cudaStreamSynchronize(cuda_->stream));
#endif
}

CudaResources& Context::cuda() {
  MBMPO_CHECK(cuda_ != nullptr, "Context::cuda() on a ", to_string(backend_), " context");
  return *cuda_;
}

}  // namespace mbmpo
