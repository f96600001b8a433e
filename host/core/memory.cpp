#include "host/core/memory.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "host/core/context.hpp"
#include "host/core/error.hpp"

#ifdef MBMPO_WITH_CUDA
#include <cuda_runtime.h>

#include "host/core/cuda_check.hpp"
#include "host/core/cuda_context.hpp"
#endif

namespace mbmpo::memory {

namespace {
[[noreturn]] void no_cuda() {
  throw Error("a CUDA buffer was requested but no CUDA device is usable: " +
              cuda_availability().reason);
}
// Host buffers are 64-byte aligned for vectorised CPU code.
constexpr std::size_t kHostAlignment = 64;
std::atomic<std::int64_t> allocations[2];  // by backend: cpu, cuda
}  // namespace

std::int64_t allocation_count(Backend backend) {
  return allocations[backend == Backend::cpu ? 0 : 1].load();
}

void* allocate(Backend backend, std::size_t bytes) {
  if (bytes == 0) return nullptr;
  ++allocations[backend == Backend::cpu ? 0 : 1];
  if (backend == Backend::cpu) {
    const std::size_t rounded = (bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
    void* pointer = std::aligned_alloc(kHostAlignment, rounded);
    if (!pointer) throw Error(detail::concat("out of host memory allocating ", bytes, " bytes"));
    return pointer;
  }
#ifdef MBMPO_WITH_CUDA
  if (!cuda_availability().usable) no_cuda();
  void* pointer = nullptr;
  MBMPO_CUDA_CHECK(cudaMalloc(&pointer, bytes));
  return pointer;
#else
  no_cuda();
#endif
}

void release(Backend backend, void* pointer) noexcept {
  if (!pointer) return;
  if (backend == Backend::cpu) {
    std::free(pointer);
    return;
  }
#ifdef MBMPO_WITH_CUDA
  cudaFree(pointer);  // errors here would be from an earlier fault, already reported
#endif
}

#ifdef MBMPO_WITH_CUDA
namespace {
// The stream of a CUDA context, or null (the legacy default stream).
cudaStream_t stream_of(Context* order) {
  return order != nullptr && order->backend() == Backend::cuda ? order->cuda().stream : nullptr;
}
}  // namespace
#endif

void copy(Backend to, void* destination, Backend from, const void* source, std::size_t bytes, Context* order) {
  if (bytes == 0) return;
  if (to == Backend::cpu && from == Backend::cpu) {
    std::memcpy(destination, source, bytes);
    return;
  }
#ifdef MBMPO_WITH_CUDA
  // cudaMemcpyDefault: unified addressing tells the direction. A copy that involves the host
  // completes before this returns: such copies are for set-up, checkpoints and results, never the
  // hot path, and the host buffer may be gone right after.
  cudaStream_t stream = stream_of(order);
  if (stream == nullptr) {
    MBMPO_CUDA_CHECK(cudaMemcpy(destination, source, bytes, cudaMemcpyDefault));
    return;
  }
  MBMPO_CUDA_CHECK(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDefault, stream));
  if (to == Backend::cpu || from == Backend::cpu) MBMPO_CUDA_CHECK(cudaStreamSynchronize(stream));
#else
  (void)order;
  no_cuda();
#endif
}

void set_bytes(Backend backend, void* pointer, int byte, std::size_t bytes, Context* order) {
  if (bytes == 0) return;
  if (backend == Backend::cpu) {
    std::memset(pointer, byte, bytes);
    return;
  }
#ifdef MBMPO_WITH_CUDA
  cudaStream_t stream = stream_of(order);
  if (stream == nullptr) {
    MBMPO_CUDA_CHECK(cudaMemset(pointer, byte, bytes));
  } else {
    MBMPO_CUDA_CHECK(cudaMemsetAsync(pointer, byte, bytes, stream));
  }
#else
  (void)order;
  no_cuda();
#endif
}

}  // namespace mbmpo::memory
