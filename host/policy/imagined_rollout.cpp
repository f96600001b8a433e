#include "host/policy/imagined_rollout.hpp"

#include "host/core/nvtx.hpp"

#ifdef MBMPO_WITH_CUDA
#include "host/core/cuda_graph.hpp"
#include "kernels/policy/policy_ops_cuda.hpp"
#endif

namespace mbmpo {

Trajectories::Trajectories(Backend backend, const RolloutDims& d)
    : dims(d),
      obs(backend, {d.tasks, d.rollouts, d.horizon, d.obs_dim}),
      act(backend, {d.tasks, d.rollouts, d.horizon, d.act_dim}),
      reward(backend, {d.tasks, d.rollouts, d.horizon}),
      valid(backend, {d.tasks, d.rollouts, d.horizon}),
      logp(backend, {d.tasks, d.rollouts, d.horizon}) {}

TensorView<const float> Trajectories::obs_by_task() const {
  return {obs.backend(), obs.data(), {dims.tasks, std::int64_t(dims.rollouts) * dims.horizon, dims.obs_dim}};
}
TensorView<const float> Trajectories::act_by_task() const {
  return {act.backend(), act.data(), {dims.tasks, std::int64_t(dims.rollouts) * dims.horizon, dims.act_dim}};
}

void imagined_rollout(Context& context, TaskId task, DynamicsEnsemble& models,
                      const PolicyLayout& layout, TensorView<const float> params,
                      TensorView<const float> start_obs, const RolloutOptions& options,
                      Trajectories& out) {
  MBMPO_NVTX_RANGE("imagined_rollout");
  const Backend backend = context.backend();
  const RolloutDims& d = out.dims;
  const TaskConstants constants = task_constants(task);
  MBMPO_CHECK(d.obs_dim == constants.obs_dim && d.act_dim == constants.act_dim &&
                  layout.obs_dim() == d.obs_dim && layout.act_dim() == d.act_dim &&
                  models.obs_dim() == d.obs_dim && models.act_dim() == d.act_dim,
              "imagined rollout: task, policy, models and buffers disagree on obs/act sizes");
  expect_shape(params, {d.tasks, layout.parameter_count()}, backend, "rollout policy parameters");
  expect_shape(start_obs, {d.tasks, d.rollouts, d.obs_dim}, backend, "rollout start states");
  MBMPO_CHECK(out.obs.backend() == backend, "imagined rollout: buffers on another backend");
  if (d.rows() == 0 || d.horizon == 0) return;

  // Row (t, m) uses model t mod K.
  std::vector<int> model_of_row(static_cast<std::size_t>(d.rows()));
  for (std::int64_t row = 0; row < d.rows(); ++row) model_of_row[row] = int((row / d.rollouts) % models.models());
  const ModelAssignment assignment = models.assign(model_of_row);
  models.reserve_predict(assignment);

  Tensor<float> state(backend, {d.rows(), d.obs_dim}), next(backend, {d.rows(), d.obs_dim});
  Tensor<float> act_env(backend, {d.rows(), d.act_dim});
  state.copy_elements_from(start_obs);
  auto alive = Tensor<float>::from_host(backend, {d.rows()}, std::vector<float>(d.rows(), 1.f));
  const PolicyShape shape = policy_shape(layout);

  auto steps = [&] {
    float* current = state.data();
    float* predicted = next.data();
    for (int h = 0; h < d.horizon; ++h) {
      TensorView<const float> s{backend, current, {d.rows(), d.obs_dim}};
      TensorView<const float> a{backend, act_env.data(), {d.rows(), d.act_dim}};
      TensorView<float> s_next{backend, predicted, {d.rows(), d.obs_dim}};
      if (backend == Backend::cpu) {
        cpu::policy_act_step(shape, d, h, params.data, current, alive.data(), options.seed, options.draw,
                             constants.action_limit, out.obs.data(), out.act.data(), out.logp.data(),
                             out.valid.data(), act_env.data());
        models.predict(s, a, assignment, s_next);
        cpu::reward_done_step(task, d, h, current, act_env.data(), predicted,
                              alive.data(), out.reward.data());
      } else {
#ifdef MBMPO_WITH_CUDA
        cuda::policy_act_step(context.cuda(), shape, d, h, params.data, current, alive.data(), options.seed,
                              options.draw, constants.action_limit, out.obs.data(), out.act.data(),
                              out.logp.data(), out.valid.data(), act_env.data());
        models.predict(s, a, assignment, s_next);
        cuda::reward_done_step(context.cuda(), task, d, h, current, act_env.data(), predicted,
                               alive.data(), out.reward.data());
#endif
      }
      std::swap(current, predicted);
    }
  };
#ifdef MBMPO_WITH_CUDA
  if (backend == Backend::cuda && options.cuda_graph) {
    run_as_cuda_graph(context, steps);
    return;
  }
#endif
  steps();
  // The step buffers above are freed on return; the kernels reading them must be done first.
  context.synchronize();
}

}  // namespace mbmpo
