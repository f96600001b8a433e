// CUDA backend of the dynamics-ensemble operations (see host/models/ensemble_mlp_cpu.hpp for the
// contracts). Each operation is one launch over all K models:
//   gather_normalize     picks each model's minibatch rows, concatenates (s, a) and normalises
//                        inputs and targets in one pass (the first layer's GEMM reads the result),
//                        with the statistics of the model's seed in a stack of seeds' ensembles;
//   mse_loss_grad        one block per model: loss sum in a fixed order (deterministic, so early
//                        stopping decisions do not depend on atomics) and dL/dy;
//   denormalize_scatter  the last layer's epilogue: bias, de-normalisation, residual, clip;
//   adam_update          one pass over the whole flat parameter vector of all models;
//   shuffle_indices      Philox keys + one radix sort of (key, index) pairs for all models
//                        (each model keyed by its own seed's fit in a stack of seeds' ensembles).
#include <cub/block/block_reduce.cuh>
#include <cub/device/device_radix_sort.cuh>

#include "host/core/cuda_context.hpp"
#include "kernels/core/device_scratch.cuh"
#include "kernels/core/launch.cuh"
#include "kernels/models/ensemble_mlp_cuda.hpp"

namespace mbmpo::cuda {
namespace {

__global__ void gather_normalize_kernel(GatherDims d, const float* __restrict__ obs,
                                        const float* __restrict__ act,
                                        const float* __restrict__ delta,
                                        const std::int32_t* __restrict__ indices,
                                        NormalizerView<float> norm, float* __restrict__ x,
                                        float* __restrict__ target) {
  const int in = d.obs_dim + d.act_dim;
  const int width = target ? in + d.obs_dim : in;  // x columns, then target columns
  const std::int64_t total = std::int64_t(d.models) * d.rows * width;
  for (std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t row = idx / width;  // k * rows + r
    const int j = static_cast<int>(idx % width);
    const int k = static_cast<int>(row / d.rows);
    const int r = static_cast<int>(row % d.rows);
    const std::int64_t src = indices[k * d.index_stride + r];
    const NormalizerView<float> norm_k = norm.for_model(k);
    if (j < in) {
      float value = 0.f;
      if (src >= 0) {
        const float raw = j < d.obs_dim ? obs[src * d.obs_dim + j] : act[src * d.act_dim + j - d.obs_dim];
        value = (raw - norm_k.input_mean[j]) / (norm_k.input_std[j] + norm_k.eps);
      }
      x[row * in + j] = value;
    } else {
      const int c = j - in;
      target[row * d.obs_dim + c] =
          src < 0 ? 0.f : (delta[src * d.obs_dim + c] - norm_k.delta_mean[c]) / (norm_k.delta_std[c] + norm_k.eps);
    }
  }
}

constexpr int kLossThreads = 512;
__global__ void mse_loss_grad_kernel(int rows, int dim, const float* __restrict__ y,
                                     const float* __restrict__ target, float* __restrict__ dy,
                                     float* __restrict__ loss_sum) {
  using Reduce = cub::BlockReduce<float, kLossThreads>;
  __shared__ typename Reduce::TempStorage temp;
  const int k = blockIdx.x;
  const std::int64_t per_model = std::int64_t(rows) * dim;
  const float grad_scale = per_model > 0 ? 2.f / static_cast<float>(per_model) : 0.f;
  const std::int64_t base = k * per_model;
  float sum = 0.f;
  for (std::int64_t i = threadIdx.x; i < per_model; i += kLossThreads) {
    const float e = y[base + i] - target[base + i];
    sum += e * e;
    if (dy) dy[base + i] = grad_scale * e;
  }
  const float total = Reduce(temp).Sum(sum);
  if (threadIdx.x == 0) loss_sum[k] += total;
}

__global__ void denormalize_scatter_kernel(GatherDims d, const float* __restrict__ y,
                                           const float* __restrict__ bias,
                                           const float* __restrict__ obs,
                                           const std::int32_t* __restrict__ indices,
                                           NormalizerView<float> norm, float clip,
                                           float* __restrict__ next_obs) {
  const std::int64_t total = std::int64_t(d.models) * d.rows * d.obs_dim;
  for (std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t row = idx / d.obs_dim;
    const int j = static_cast<int>(idx % d.obs_dim);
    const int k = static_cast<int>(row / d.rows);
    const int r = static_cast<int>(row % d.rows);
    const std::int64_t dst = indices[k * d.index_stride + r];
    if (dst < 0) continue;
    const NormalizerView<float> norm_k = norm.for_model(k);
    const float out = y[idx] + (bias ? bias[k * d.obs_dim + j] : 0.f);
    const float next = obs[dst * d.obs_dim + j] + out * (norm_k.delta_std[j] + norm_k.eps) + norm_k.delta_mean[j];
    next_obs[dst * d.obs_dim + j] = fminf(fmaxf(next, -clip), clip);
  }
}

__global__ void adam_kernel(std::int64_t count, AdamStep step, float* __restrict__ params,
                            const float* __restrict__ grads, float* __restrict__ m,
                            float* __restrict__ v) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < count;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const int k = parameter_model(step, i);
    if (!step.active[k]) continue;
    const float g = grads[i];
    const float m_i = step.beta1 * m[i] + (1.f - step.beta1) * g;
    const float v_i = step.beta2 * v[i] + (1.f - step.beta2) * g * g;
    m[i] = m_i;
    v[i] = v_i;
    params[i] -= step.lr_t[k] * m_i / (sqrtf(v_i) + step.epsilon);
  }
}

__global__ void shuffle_keys_kernel(int models, std::int64_t count, ShuffleKeys shuffle, std::uint64_t epoch,
                                    std::uint64_t* __restrict__ keys) {
  const std::int64_t total = std::int64_t(models) * count;
  for (std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    keys[idx] = shuffle_key(shuffle, epoch, static_cast<int>(idx / count), idx % count);
  }
}

}  // namespace

void gather_normalize(CudaResources& cuda, const GatherDims& d, const float* obs, const float* act,
                      const float* delta, const std::int32_t* indices,
                      const NormalizerView<float>& norm, float* x, float* target) {
  const int width = d.obs_dim + d.act_dim + (target ? d.obs_dim : 0);
  const std::int64_t total = std::int64_t(d.models) * d.rows * width;
  if (total == 0) return;
  gather_normalize_kernel<<<elementwise_blocks(total), kElementwiseThreads, 0, cuda.stream>>>(
      d, obs, act, delta, indices, norm, x, target);
  MBMPO_KERNEL_CHECK("gather_normalize_kernel");
}

void mse_loss_grad(CudaResources& cuda, int models, int rows, int dim, const float* y,
                   const float* target, float* dy, float* loss_sum) {
  if (models == 0) return;
  mse_loss_grad_kernel<<<static_cast<unsigned>(models), kLossThreads, 0, cuda.stream>>>(
      rows, dim, y, target, dy, loss_sum);
  MBMPO_KERNEL_CHECK("mse_loss_grad_kernel");
}

void denormalize_scatter(CudaResources& cuda, const GatherDims& d, const float* y,
                         const float* bias, const float* obs, const std::int32_t* indices,
                         const NormalizerView<float>& norm, float clip, float* next_obs) {
  const std::int64_t total = std::int64_t(d.models) * d.rows * d.obs_dim;
  if (total == 0) return;
  denormalize_scatter_kernel<<<elementwise_blocks(total), kElementwiseThreads, 0, cuda.stream>>>(
      d, y, bias, obs, indices, norm, clip, next_obs);
  MBMPO_KERNEL_CHECK("denormalize_scatter_kernel");
}

void adam_update(CudaResources& cuda, std::int64_t count, const AdamStep& step, float* params,
                 const float* grads, float* m, float* v) {
  if (count == 0) return;
  adam_kernel<<<elementwise_blocks(count), kElementwiseThreads, 0, cuda.stream>>>(count, step, params,
                                                                                 grads, m, v);
  MBMPO_KERNEL_CHECK("adam_kernel");
}

void shuffle_indices(CudaResources& cuda, int models, std::int64_t count, const ShuffleKeys& shuffle,
                     std::uint64_t epoch, const std::int32_t* in, std::int32_t* out) {
  const std::int64_t total = std::int64_t(models) * count;
  if (total == 0) return;
  MBMPO_CHECK(total <= std::int64_t(INT32_MAX), "shuffle: too many indices (", total, ")");
  DeviceScratch<std::uint64_t> keys(cuda.stream, static_cast<std::size_t>(total));
  DeviceScratch<std::uint64_t> sorted_keys(cuda.stream, static_cast<std::size_t>(total));
  shuffle_keys_kernel<<<elementwise_blocks(total), kElementwiseThreads, 0, cuda.stream>>>(
      models, count, shuffle, epoch, keys.get());
  MBMPO_KERNEL_CHECK("shuffle_keys_kernel");
  std::size_t temp_bytes = 0;
  const int items = static_cast<int>(total);
  MBMPO_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys.get(),
                                                   sorted_keys.get(), in, out, items, 0, 64,
                                                   cuda.stream));
  DeviceScratch<unsigned char> temp(cuda.stream, temp_bytes);
  MBMPO_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.get(), temp_bytes, keys.get(),
                                                   sorted_keys.get(), in, out, items, 0, 64,
                                                   cuda.stream));
}

}  // namespace mbmpo::cuda
