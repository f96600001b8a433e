#include "host/policy/imagined_rollout.hpp"

#include <algorithm>

#include "host/core/nvtx.hpp"

#include "host/core/cuda_graph.hpp"
#include "host/core/stream_copy.hpp"

#ifdef MBMPO_WITH_CUDA
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

struct ImaginedRollout::Impl {
  Impl(Context& c, const RolloutDims& d)
      : context(c),
        state(c.backend(), {d.rows(), d.obs_dim}),
        next(c.backend(), {d.rows(), d.obs_dim}),
        act_env(c.backend(), {d.rows(), d.act_dim}),
        alive(c.backend(), {d.rows()}),
        all_alive(Tensor<float>::from_host(c.backend(), {d.rows()}, std::vector<float>(std::size_t(d.rows()), 1.f), &c)) {}
  Context& context;
  Tensor<float> state, next, act_env, alive;
  Tensor<float> all_alive;  // the alive flags' starting value, copied in at each run
  // CUDA: the policy step's hidden activations and means (cuda::PolicyStepScratch), grown for the
  // widest policy run so far, before a graph records the steps.
  Tensor<float> step_hidden_a, step_hidden_b, step_mean;
  ModelAssignment assignment;
  const DynamicsEnsemble* assigned_for = nullptr;
  int assigned_seeds = 0;
  CudaGraph graph;
};

ImaginedRollout::ImaginedRollout(Context& context, const RolloutDims& d)
    : impl_(std::make_unique<Impl>(context, d)), dims_(d) {}

ImaginedRollout::~ImaginedRollout() {
  // Work still queued reads the buffers freed here.
  try {
    impl_->context.synchronize();
  } catch (...) {
  }
}

int ImaginedRollout::graph_instantiations() const { return impl_->graph.instantiations(); }

void ImaginedRollout::run(TaskId task, DynamicsEnsemble& models, const PolicyLayout& layout,
                          TensorView<const float> params, TensorView<const float> start_obs,
                          const RolloutOptions& options, Trajectories& out) {
  MBMPO_NVTX_RANGE("imagined_rollout");
  Impl& w = *impl_;
  Context& context = w.context;
  const Backend backend = context.backend();
  const RolloutDims& d = dims_;
  const TaskConstants constants = task_constants(task);
  MBMPO_CHECK(out.dims.tasks == d.tasks && out.dims.rollouts == d.rollouts && out.dims.horizon == d.horizon &&
                  out.dims.obs_dim == d.obs_dim && out.dims.act_dim == d.act_dim,
              "imagined rollout: the output buffers were made for another shape than the rollout's");
  MBMPO_CHECK(d.obs_dim == constants.obs_dim && d.act_dim == constants.act_dim &&
                  layout.obs_dim() == d.obs_dim && layout.act_dim() == d.act_dim &&
                  models.obs_dim() == d.obs_dim && models.act_dim() == d.act_dim,
              "imagined rollout: task, policy, models and buffers disagree on obs/act sizes");
  expect_shape(params, {d.tasks, layout.parameter_count()}, backend, "rollout policy parameters");
  expect_shape(start_obs, {d.tasks, d.rollouts, d.obs_dim}, backend, "rollout start states");
  MBMPO_CHECK(out.obs.backend() == backend, "imagined rollout: buffers on another backend");
  const int B = options.seeds.empty() ? 1 : int(options.seeds.size());
  MBMPO_CHECK(B <= kMaxSeedsTogether, "imagined rollout: at most ", kMaxSeedsTogether, " seeds, got ", B);
  MBMPO_CHECK(B == models.seeds() && d.tasks % B == 0, "imagined rollout: ", d.tasks, " tasks of ", B,
              " seeds on a stack of ", models.seeds(),
              " seeds' ensembles (the seeds' tasks must be equal in number and each seed have its ensemble)");
  if (d.rows() == 0 || d.horizon == 0) return;
  NoiseSeeds noise;
  noise.count = B;
  for (int g = 0; g < B; ++g) noise.seed[g] = options.seeds.empty() ? options.seed : options.seeds[g];

  // Row (t, m) of seed g uses model g K + (t - g T/B) mod K; the assignment is made once per
  // ensemble.
  if (w.assigned_for != &models || w.assignment.models != models.models() || w.assigned_seeds != B) {
    const int K = models.models_per_seed(), tasks_per_seed = d.tasks / B;
    std::vector<int> model_of_row(static_cast<std::size_t>(d.rows()));
    for (std::int64_t row = 0; row < d.rows(); ++row) {
      const int t = int(row / d.rollouts), g = t / tasks_per_seed;
      model_of_row[row] = g * K + (t - g * tasks_per_seed) % K;
    }
    w.assignment = models.assign(model_of_row);
    w.assigned_for = &models;
    w.assigned_seeds = B;
  }
  models.prepare_predict(w.assignment);  // the effective weights once, outside the graph
  // On the stream, so the host goes on to record the steps while the GPU still works.
  copy_on_stream(context, w.state, start_obs);
  copy_on_stream(context, w.alive, w.all_alive);
  const PolicyShape shape = policy_shape(layout);
#ifdef MBMPO_WITH_CUDA
  cuda::PolicyStepScratch step_scratch;
  if (backend == Backend::cuda) {
    const std::int64_t hidden = d.rows() * std::max(1, cuda::widest_hidden(shape));
    if (w.step_hidden_a.numel() < hidden || w.step_mean.numel() < d.rows() * d.act_dim) {
      context.synchronize();  // an earlier run's steps may still read the buffers being replaced
    }
    if (w.step_hidden_a.numel() < hidden) {
      w.step_hidden_a = Tensor<float>(backend, {hidden});
      w.step_hidden_b = Tensor<float>(backend, {hidden});
    }
    if (w.step_mean.numel() < d.rows() * d.act_dim) w.step_mean = Tensor<float>(backend, {d.rows(), d.act_dim});
    step_scratch = {w.step_hidden_a.data(), w.step_hidden_b.data(), w.step_mean.data()};
  }
#endif

  auto steps = [&] {
    float* current = w.state.data();
    float* predicted = w.next.data();
    for (int h = 0; h < d.horizon; ++h) {
      TensorView<const float> s{backend, current, {d.rows(), d.obs_dim}};
      TensorView<const float> a{backend, w.act_env.data(), {d.rows(), d.act_dim}};
      TensorView<float> s_next{backend, predicted, {d.rows(), d.obs_dim}};
      if (backend == Backend::cpu) {
        cpu::policy_act_step(shape, d, h, params.data, current, w.alive.data(), noise, options.draw,
                             constants.action_limit, out.obs.data(), out.act.data(), out.logp.data(),
                             out.valid.data(), w.act_env.data());
        models.predict(s, a, w.assignment, s_next);
        cpu::reward_done_step(task, d, h, current, w.act_env.data(), predicted,
                              w.alive.data(), out.reward.data());
      } else {
#ifdef MBMPO_WITH_CUDA
        cuda::policy_act_step(context.cuda(), shape, d, h, params.data, current, w.alive.data(), noise,
                              options.draw, constants.action_limit, step_scratch, out.obs.data(),
                              out.act.data(), out.logp.data(), out.valid.data(), w.act_env.data());
        models.predict(s, a, w.assignment, s_next);
        cuda::reward_done_step(context.cuda(), task, d, h, current, w.act_env.data(), predicted,
                               w.alive.data(), out.reward.data());
#endif
      }
      std::swap(current, predicted);
    }
  };
  if (backend == Backend::cuda && options.cuda_graph) {
    w.graph.run(context, steps);
  } else {
    steps();
  }
}

void imagined_rollout(Context& context, TaskId task, DynamicsEnsemble& models,
                      const PolicyLayout& layout, TensorView<const float> params,
                      TensorView<const float> start_obs, const RolloutOptions& options,
                      Trajectories& out) {
  ImaginedRollout rollout(context, out.dims);
  rollout.run(task, models, layout, params, start_obs, options, out);
  context.synchronize();  // the rollout's buffers are freed on return
}

}  // namespace mbmpo
