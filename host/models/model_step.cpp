#include "host/models/model_step.hpp"

#include <algorithm>
#include <vector>

#ifdef MBMPO_WITH_CUDA
#include "kernels/envs/model_step_cuda.hpp"
#endif

namespace mbmpo {

void task_rewards_cpu(TaskId task, std::int64_t rows, const float* obs, const float* act, const float* next_obs,
                      float* reward, float* done) {
  const TaskConstants c = task_constants(task);
  std::vector<float> clipped(std::size_t(c.act_dim));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (int j = 0; j < c.act_dim; ++j) {
      clipped[j] = std::clamp(act[r * c.act_dim + j], -c.action_limit, c.action_limit);
    }
    const float* next = next_obs + r * c.obs_dim;
    reward[r] = task_reward(task, obs + r * c.obs_dim, clipped.data(), next);
    done[r] = task_done(task, next) ? 1.f : 0.f;
  }
}

void model_step(Context& context, TaskId task, DynamicsEnsemble& models, const ModelAssignment& assignment,
                TensorView<const float> obs, TensorView<const float> act, TensorView<float> act_env,
                TensorView<float> next_obs, TensorView<float> reward, TensorView<float> done) {
  const Backend backend = context.backend();
  const TaskConstants c = task_constants(task);
  MBMPO_CHECK(obs.shape.size() == 2, "model_step: obs must be [rows, obs_dim], got ", shape_to_string(obs.shape));
  const std::int64_t n = obs.dim(0);
  MBMPO_CHECK(models.obs_dim() == c.obs_dim && models.act_dim() == c.act_dim,
              "model_step: the models and the task disagree on obs/act sizes");
  expect_shape(obs, {n, c.obs_dim}, backend, "model_step obs");
  expect_shape(act, {n, c.act_dim}, backend, "model_step act");
  expect_shape(act_env, {n, c.act_dim}, backend, "model_step clipped actions");
  expect_shape(next_obs, {n, c.obs_dim}, backend, "model_step next_obs");
  expect_shape(reward, {n}, backend, "model_step reward");
  expect_shape(done, {n}, backend, "model_step done");
  MBMPO_CHECK(assignment.total_rows == n, "model_step: the assignment is for ", assignment.total_rows, " rows, not ", n);
  if (n == 0) return;
  if (backend == Backend::cpu) {
    for (std::int64_t i = 0; i < n * c.act_dim; ++i) {
      act_env.data[i] = std::clamp(act.data[i], -c.action_limit, c.action_limit);
    }
    models.predict(obs, act_env, assignment, next_obs);
    task_rewards_cpu(task, n, obs.data, act_env.data, next_obs.data, reward.data, done.data);  // clipped: unchanged
    return;
  }
#ifdef MBMPO_WITH_CUDA
  cuda::clip_actions(context.cuda(), n * c.act_dim, c.action_limit, act.data, act_env.data);
  models.predict(obs, act_env, assignment, next_obs);
  cuda::task_rewards(context.cuda(), task, n, obs.data, act_env.data, next_obs.data, reward.data, done.data);
#endif
}

}  // namespace mbmpo
