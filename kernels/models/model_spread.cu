// spread[i] = sqrt(sum_k (x[k][i] - mean_i)^2 / K), mean_i = sum_k x[k][i] / K, for the K models'
// predictions x [K][count] (the disagreement of mbmpo.DynamicsEnsemble), one launch:
//   model_spread_kernel   grid-stride over the count elements, each summing its K values in model
//                         order in double (model_spread_at, kernels/models/model_spread.cuh)
// CPU twin: host/models/model_spread.cpp (the same model_spread_at). Test:
// tests/models/test_model_spread.cpp (CPU against CUDA, awkward sizes, NaN-poisoned output).
// Bench: none (a pass over K*count floats, dwarfed by the K predictions it follows).
#include "host/core/cuda_check.hpp"
#include "host/core/cuda_context.hpp"
#include "kernels/core/launch.cuh"
#include "kernels/models/model_spread.cuh"
#include "kernels/models/model_spread_cuda.hpp"

namespace mbmpo::cuda {
namespace {

__global__ void model_spread_kernel(int K, std::int64_t count, const float* __restrict__ per_model,
                                    float* __restrict__ spread) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < count;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    spread[i] = model_spread_at(per_model + i, K, count);
  }
}

}  // namespace

void model_spread(CudaResources& cuda, int K, std::int64_t count, const float* per_model, float* spread) {
  if (count == 0) return;
  model_spread_kernel<<<elementwise_blocks(count), kElementwiseThreads, 0, cuda.stream>>>(K, count, per_model, spread);
  MBMPO_KERNEL_CHECK("model_spread_kernel");
}

}  // namespace mbmpo::cuda
