// CUDA backend of the policy's batched forward pass: the mean MLP of T tasks' policies over
// [T][rows] inputs, the structure of host/policy/policy_batch_cpu.hpp's batch::means. Per layer l,
// theta_t's W_l [out x in] and b_l, X_0 = obs, X_l = H_{l-1}:
//
//   H_l = X_l W_l^T                             (cublasSgemmStridedBatched over the tasks, one call
//                                                per seed of a seed: kernels/core/seed_gemm.cu)
//   H_l = tanh(H_l + b_l), no tanh on the last  (bias_tanh_kernel)
//   mean = H_{L-1}
//
// Users: the rollout's policy step (policy_ops.cu, policy_act_step), log-probabilities and KL
// divergences (policy_ops.cu), and the per-task sums' forward (policy_sums.cu, bias_tanh).
// CPU twin: batch::means in host/policy/policy_batch_cpu.hpp. Tests: tests/policy/test_policy.cpp
// (CPU against CUDA for rollouts, log-probs and KL, a (256, 256) policy included). Bench: `mbmpo
// bench --suite rollout|meta_update`.
#include <algorithm>

#include "host/core/cuda_check.hpp"
#include "host/core/cuda_context.hpp"
#include "kernels/core/device_scratch.cuh"
#include "kernels/core/launch.cuh"
#include "kernels/core/seed_gemm_cuda.hpp"
#include "kernels/policy/policy_forward_cuda.hpp"

namespace mbmpo::cuda {
namespace {

// Rows per task per chunk of policy_sample_means: bounds each hidden buffer at kReferenceTasks
// tasks to kChunkFloats floats (64 MiB) whatever the task count.
constexpr std::int64_t kChunkFloats = std::int64_t(1) << 24;
constexpr std::int64_t kReferenceTasks = 20;  // the paper's meta-batch

// One thread per element (t, row, i).
__global__ void bias_tanh_kernel(int tasks, std::int64_t rows, int out, std::int64_t stride, bool hidden,
                                 const float* __restrict__ params, int params_stride, int b_offset,
                                 float* __restrict__ x) {
  const std::int64_t per_task = rows * out;
  const std::int64_t total = std::int64_t(tasks) * per_task;
  for (std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t t = idx / per_task, rem = idx % per_task;
    const int i = static_cast<int>(rem % out);
    float* element = x + t * stride + rem;
    const float pre = *element + params[t * params_stride + b_offset + i];
    *element = hidden ? tanhf(pre) : pre;
  }
}

}  // namespace

int widest_hidden(const PolicyShape& s) {
  int widest = 0;
  for (int l = 0; l + 1 < s.layers; ++l) widest = std::max(widest, s.out[l]);
  return widest;
}

void bias_tanh(CudaResources& cuda, int tasks, std::int64_t rows, int out, std::int64_t stride, bool hidden,
               const float* params, int params_stride, int b_offset, float* x) {
  const std::int64_t count = std::int64_t(tasks) * rows * out;
  if (count == 0) return;
  bias_tanh_kernel<<<elementwise_blocks(count), kElementwiseThreads, 0, cuda.stream>>>(
      tasks, rows, out, stride, hidden, params, params_stride, b_offset, x);
  MBMPO_KERNEL_CHECK("bias_tanh_kernel");
}

void policy_means(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds, std::int64_t rows,
                  const float* params, bool params_per_task, const float* obs, std::int64_t obs_stride,
                  float* hidden_a, float* hidden_b, float* mean, std::int64_t mean_stride) {
  if (tasks == 0 || rows == 0) return;
  const int params_stride = params_per_task ? s.parameter_count : 0;
  const std::int64_t hidden_stride = rows * widest_hidden(s);
  const float* input = obs;
  std::int64_t input_stride = obs_stride;
  float* output = hidden_a;
  for (int l = 0; l < s.layers; ++l) {
    const bool last = l + 1 == s.layers;
    const int in = s.in[l], o = s.out[l];
    float* h = last ? mean : output;
    const std::int64_t h_stride = last ? mean_stride : hidden_stride;
    // H_l row-major [rows x o] = column-major [o x rows] = W_l (row-major [o x in], i.e.
    // column-major [in x o], used transposed) times X_l^T (column-major [in x rows]).
    seed_sgemm(cuda, seeds, false, CUBLAS_OP_T, CUBLAS_OP_N, o, static_cast<int>(rows), in, 1.f,
               params + s.w_offset[l], in, params_stride, input, in, input_stride, 0.f, h, o, h_stride, tasks);
    bias_tanh(cuda, tasks, rows, o, h_stride, !last, params, params_stride, s.b_offset[l], h);
    input = h;
    input_stride = h_stride;
    output = output == hidden_a ? hidden_b : hidden_a;
  }
}

void policy_sample_means(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds, std::int64_t per_task,
                         const float* params, bool params_per_task, const float* obs, float* mean) {
  if (tasks == 0 || per_task == 0) return;
  const int widest = std::max(1, widest_hidden(s));
  const std::int64_t chunk = std::clamp<std::int64_t>(kChunkFloats / (kReferenceTasks * widest), 1, per_task);
  DeviceScratch<float> hidden_a(cuda.stream, std::size_t(tasks) * chunk * widest);
  DeviceScratch<float> hidden_b(cuda.stream, std::size_t(tasks) * chunk * widest);
  for (std::int64_t first = 0; first < per_task; first += chunk) {
    const std::int64_t rows = std::min(chunk, per_task - first);
    policy_means(cuda, s, tasks, seeds, rows, params, params_per_task, obs + first * s.obs_dim,
                 per_task * s.obs_dim, hidden_a.get(), hidden_b.get(), mean + first * s.act_dim,
                 per_task * s.act_dim);
  }
}

}  // namespace mbmpo::cuda
