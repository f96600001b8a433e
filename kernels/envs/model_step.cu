// A learned-model environment's step around the ensemble's prediction (host/models/model_step.hpp),
// two launches on the context's stream:
//   clip_actions_kernel   act_env[i] = clamp(act[i], -limit, limit), grid-stride over the elements
//   task_rewards_kernel   reward[r] = task_reward(task, obs_r, act_env_r, next_obs_r),
//                         done[r] = task_done(task, next_obs_r), grid-stride over the rows
// (the prediction between them is DynamicsEnsemble::predict's). The per-row functions are the
// imagined rollout's (kernels/envs/task_functions.cuh). CPU twin: host/models/model_step.cpp.
// Tests: tests/models/test_model_step.cpp (CUDA against CPU, awkward sizes, NaN-poisoned outputs),
// python/tests/test_model_env.py. Bench: none (two passes over N rows after the K-model prediction).
#include "host/core/cuda_check.hpp"
#include "host/core/cuda_context.hpp"
#include "kernels/core/launch.cuh"
#include "kernels/envs/model_step_cuda.hpp"

namespace mbmpo::cuda {
namespace {

__global__ void clip_actions_kernel(std::int64_t count, float limit, const float* __restrict__ act,
                                    float* __restrict__ act_env) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < count;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const float a = act[i];
    act_env[i] = a < -limit ? -limit : (a > limit ? limit : a);  // a NaN stays NaN, as std::clamp keeps it
  }
}

__global__ void task_rewards_kernel(TaskId task, std::int64_t rows, const float* __restrict__ obs,
                                    const float* __restrict__ act_env, const float* __restrict__ next_obs,
                                    float* __restrict__ reward, float* __restrict__ done) {
  const TaskConstants c = task_constants(task);
  for (std::int64_t r = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; r < rows;
       r += std::int64_t(gridDim.x) * blockDim.x) {
    const float* next = next_obs + r * c.obs_dim;
    reward[r] = task_reward(task, obs + r * c.obs_dim, act_env + r * c.act_dim, next);
    done[r] = task_done(task, next) ? 1.f : 0.f;
  }
}

}  // namespace

void clip_actions(CudaResources& cuda, std::int64_t count, float limit, const float* act, float* act_env) {
  if (count == 0) return;
  clip_actions_kernel<<<elementwise_blocks(count), kElementwiseThreads, 0, cuda.stream>>>(count, limit, act, act_env);
  MBMPO_KERNEL_CHECK("clip_actions_kernel");
}

void task_rewards(CudaResources& cuda, TaskId task, std::int64_t rows, const float* obs, const float* act_env,
                  const float* next_obs, float* reward, float* done) {
  if (rows == 0) return;
  task_rewards_kernel<<<elementwise_blocks(rows), kElementwiseThreads, 0, cuda.stream>>>(task, rows, obs, act_env,
                                                                                        next_obs, reward, done);
  MBMPO_KERNEL_CHECK("task_rewards_kernel");
}

}  // namespace mbmpo::cuda
