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

#ifdef MBMPO_WITH_CUDA
namespace {
// A cuBLAS handle on `stream` with a workspace of its own; every handle of a context is made here,
// so that all are configured alike (a seed's product on a branch is the main stream's call).
void make_cublas(cudaStream_t stream, cublasHandle_t& handle, void*& workspace) {
  MBMPO_CUBLAS_CHECK(cublasCreate(&handle));
  MBMPO_CUBLAS_CHECK(cublasSetStream(handle, stream));
  workspace = memory::allocate(Backend::cuda, kCublasWorkspaceBytes);
  MBMPO_CUBLAS_CHECK(cublasSetWorkspace(handle, workspace, kCublasWorkspaceBytes));
  // Plain FP32 unless a caller opts into TF32 for a particular product.
  MBMPO_CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));
}

void set_up_cuda(CudaResources& cuda) {
  // A blocking stream: it synchronises with the legacy default stream, which memory::copy uses
  // for copies that no context orders.
  MBMPO_CUDA_CHECK(cudaStreamCreate(&cuda.stream));
  make_cublas(cuda.stream, cuda.cublas, cuda.cublas_workspace);
  // The branches: non-blocking, since they only ever wait on `stream`'s events (a blocking stream
  // would also wait on the legacy default stream, which a graph capture may not touch).
  MBMPO_CUDA_CHECK(cudaEventCreateWithFlags(&cuda.fork, cudaEventDisableTiming));
  for (CudaBranch& branch : cuda.branches) {
    MBMPO_CUDA_CHECK(cudaStreamCreateWithFlags(&branch.stream, cudaStreamNonBlocking));
    MBMPO_CUDA_CHECK(cudaEventCreateWithFlags(&branch.done, cudaEventDisableTiming));
    make_cublas(branch.stream, branch.cublas, branch.cublas_workspace);
  }
  // Stream-ordered scratch (cudaMallocAsync) comes from the device's default pool: let the pool
  // keep up to 1 GiB, instead of returning everything to the driver at every synchronisation
  // (threshold 0) and mapping it again at the next allocation; beyond that, memory goes back, so
  // the pool never starves the Tensors' cudaMalloc.
  int device = 0;
  MBMPO_CUDA_CHECK(cudaGetDevice(&device));
  cudaMemPool_t pool = nullptr;
  MBMPO_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
  std::uint64_t keep = std::uint64_t(1) << 30;
  MBMPO_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
}

// Frees whatever of the resources exists (a handle before its workspace); errors are ignored, as
// they can only repeat an earlier one.
void release_cuda(CudaResources& cuda) noexcept {
  if (cuda.stream) cudaStreamSynchronize(cuda.stream);
  for (CudaBranch& branch : cuda.branches) {
    if (branch.stream) cudaStreamSynchronize(branch.stream);
    if (branch.cublas) cublasDestroy(branch.cublas);
    memory::release(Backend::cuda, branch.cublas_workspace);
    if (branch.done) cudaEventDestroy(branch.done);
    if (branch.stream) cudaStreamDestroy(branch.stream);
  }
  if (cuda.fork) cudaEventDestroy(cuda.fork);
  if (cuda.cublas) cublasDestroy(cuda.cublas);
  memory::release(Backend::cuda, cuda.sum_scratch);
  memory::release(Backend::cuda, cuda.cublas_workspace);
  if (cuda.stream) cudaStreamDestroy(cuda.stream);
  cuda = CudaResources{};
}
}  // namespace
#endif

Context::Context(Backend backend) : backend_(backend) {
  if (backend_ != Backend::cuda) return;
  MBMPO_CHECK(cuda_availability().usable, "cannot create a CUDA context, no CUDA device is usable: ",
              cuda_availability().reason);
#ifdef MBMPO_WITH_CUDA
  cuda_ = std::make_unique<CudaResources>();
  try {
    set_up_cuda(*cuda_);
  } catch (...) {
    release_cuda(*cuda_);  // what was set up before the failure
    cuda_.reset();
    throw;
  }
#endif
}

Context::~Context() {
#ifdef MBMPO_WITH_CUDA
  if (cuda_) release_cuda(*cuda_);
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
