// One step of a learned-model environment (mbmpo.ModelEnv) on either backend: the ensemble's
// prediction with the task's own reward and termination, computed as a step of an imagined
// rollout computes them (host/policy/imagined_rollout.cpp), so that the same states, actions and
// models give the same next states, rewards and ends bit for bit:
//
//   act_env  = clip(act, +-action_limit)                  (the model's and the reward's action)
//   next_obs = model[assignment(r)](obs, act_env)
//   reward   = task_reward(task, obs, act_env, next_obs)   (kernels/envs/task_functions.cuh)
//   done     = task_done(task, next_obs) ? 1 : 0
//
// CUDA: kernels/envs/model_step.cu. Test: python/tests/test_model_env.py (against imagined_rollout,
// CPU and CUDA) and tests/models/test_model_step.cpp (CUDA against CPU).
#pragma once

#include "host/core/context.hpp"
#include "host/core/tensor.hpp"
#include "host/models/dynamics_ensemble.hpp"
#include "kernels/envs/task_functions.cuh"

namespace mbmpo {

// obs, next_obs [N][obs_dim]; act, act_env [N][act_dim] (act_env: the clipped actions, written);
// reward, done [N].
void model_step(Context& context, TaskId task, DynamicsEnsemble& models, const ModelAssignment& assignment,
                TensorView<const float> obs, TensorView<const float> act, TensorView<float> act_env,
                TensorView<float> next_obs, TensorView<float> reward, TensorView<float> done);

// The reward and end of N transitions on the CPU: reward [N], done [N] (1 or 0), the action
// clipped first as in model_step.
void task_rewards_cpu(TaskId task, std::int64_t rows, const float* obs, const float* act, const float* next_obs,
                      float* reward, float* done);

}  // namespace mbmpo
