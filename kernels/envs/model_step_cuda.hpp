// CUDA launchers behind host/models/model_step.hpp (device pointers).
#pragma once

#include <cstdint>

#include "host/core/context.hpp"
#include "kernels/envs/task_functions.cuh"

namespace mbmpo::cuda {

// act_env[i] = clip(act[i], +-limit), i < count.
void clip_actions(CudaResources& cuda, std::int64_t count, float limit, const float* act, float* act_env);

// reward[r] = task_reward(task, obs[r], act_env[r], next_obs[r]), done[r] = task_done(next_obs[r]).
void task_rewards(CudaResources& cuda, TaskId task, std::int64_t rows, const float* obs, const float* act_env,
                  const float* next_obs, float* reward, float* done);

}  // namespace mbmpo::cuda
