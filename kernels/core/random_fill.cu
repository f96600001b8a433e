#include "host/core/cuda_check.hpp"
#include "host/core/cuda_context.hpp"
#include "kernels/core/launch.cuh"
#include "kernels/core/philox.cuh"
#include "kernels/core/random_fill_cuda.hpp"

namespace mbmpo::cuda {
namespace {

template <bool kNormal>
__global__ void fill_kernel(std::uint64_t seed, std::uint64_t stream, float* out,
                            std::int64_t count) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < count;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const auto index = static_cast<std::uint64_t>(i);
    out[i] = kNormal ? normal_at(seed, stream, index) : uniform_at(seed, stream, index);
  }
}

template <bool kNormal>
void launch_fill(CudaResources& cuda, std::uint64_t seed, std::uint64_t stream, float* out,
                 std::int64_t count) {
  if (count == 0) return;
  fill_kernel<kNormal><<<elementwise_blocks(count), kElementwiseThreads, 0, cuda.stream>>>(
      seed, stream, out, count);
  MBMPO_KERNEL_CHECK(kNormal ? "fill_kernel<normal>" : "fill_kernel<uniform>");
}

}  // namespace

void fill_uniform(CudaResources& cuda, std::uint64_t seed, std::uint64_t stream, float* out,
                  std::int64_t count) {
  launch_fill<false>(cuda, seed, stream, out, count);
}

void fill_normal(CudaResources& cuda, std::uint64_t seed, std::uint64_t stream, float* out,
                 std::int64_t count) {
  launch_fill<true>(cuda, seed, stream, out, count);
}

}  // namespace mbmpo::cuda
