// rows[t][p] = row[t / (T/B)][p] for t < T: one vector copied into every row of a [T][P] matrix (a
// policy tiled into one row per task, a CG vector handed to every task), or B vectors each into its
// seed of T/B rows (several seeds' meta-policies), one launch on the context's stream.
//   broadcast_rows_kernel   grid-stride over T*P elements, element i reads row[i / (T/B P)][i mod P]
#include "host/core/cuda_check.hpp"
#include "host/core/error.hpp"
#include "host/core/cuda_context.hpp"
#include "kernels/core/broadcast_rows_cuda.hpp"
#include "kernels/core/launch.cuh"

namespace mbmpo::cuda {
namespace {

__global__ void broadcast_rows_kernel(std::int64_t count, std::int64_t P, std::int64_t seed_elements,
                                      const float* __restrict__ row, float* __restrict__ rows) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < count;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    rows[i] = row[i / seed_elements * P + i % P];
  }
}

}  // namespace

void broadcast_rows(CudaResources& cuda, std::int64_t T, std::int64_t B, std::int64_t P, const float* row,
                    float* rows) {
  MBMPO_CHECK(B >= 1 && T % B == 0, "broadcast_rows: ", B, " seeds do not split ", T, " rows evenly");
  const std::int64_t count = T * P;
  if (count == 0) return;
  broadcast_rows_kernel<<<elementwise_blocks(count), kElementwiseThreads, 0, cuda.stream>>>(count, P, T / B * P,
                                                                                           row, rows);
  MBMPO_KERNEL_CHECK("broadcast_rows_kernel");
}

}  // namespace mbmpo::cuda
