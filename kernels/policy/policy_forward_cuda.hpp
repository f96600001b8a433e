// CUDA launchers of the policy's batched forward pass (kernels/policy/policy_forward.cu): the mean
// MLP over [tasks][rows] inputs as one strided-batched product per layer (per seed of a seed),
// plus element-wise passes. Device pointers; sizes checked by the host callers.
#pragma once

#include <cstdint>

#include "host/core/context.hpp"
#include "host/policy/policy_layout.hpp"

namespace mbmpo::cuda {

// The widest hidden layer's output (0 without hidden layers): the row length of the two hidden
// buffers a forward pass needs.
int widest_hidden(const PolicyShape& s);

// x[t][n] = x[t][n] + b_t (theta_t's bias b_l, `out` wide), then tanh when `hidden`; x has task
// stride `stride` and row length `out`; theta_t = params + t * params_stride (0: one shared row).
void bias_tanh(CudaResources& cuda, int tasks, std::int64_t rows, int out, std::int64_t stride, bool hidden,
               const float* params, int params_stride, int b_offset, float* x);

// mean[t][n] (row length act_dim, task stride mean_stride) = the policy's mean at obs[t][n] (row
// length obs_dim, task stride obs_stride) for n < rows, theta_t = params + t * P (params_per_task)
// or one shared row. hidden_a, hidden_b: [tasks][rows][widest_hidden] each. The tasks are `seeds`
// equal blocks (a seed): each seed's products are its own run's (kernels/core/seed_gemm.cu).
void policy_means(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds, std::int64_t rows,
                  const float* params, bool params_per_task, const float* obs, std::int64_t obs_stride,
                  float* hidden_a, float* hidden_b, float* mean, std::int64_t mean_stride);

// policy_means over `per_task` samples a task, in chunks of rows whose size depends on the policy
// alone (never on the task count, so a seed's seeds run their own runs' products), with its
// hidden buffers from the stream-ordered pool; mean [tasks][per_task][act_dim].
void policy_sample_means(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds, std::int64_t per_task,
                         const float* params, bool params_per_task, const float* obs, float* mean);

}  // namespace mbmpo::cuda
