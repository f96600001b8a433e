// Imagined rollouts and the inner step at the sizes of bench/peers/rollout_peer.py.
// Scales: small = 5 tasks x 8 rollouts x 20 steps, models (64, 64); paper = 20 x 50 x 200 (the
// paper's meta-batch), models (512, 512); large = also 5 tasks x 4096 rollouts x 200 (GPU only).
// Always K = 5 models, policy (32, 32), HalfCheetah's sizes and reward.
#include "bench/policy_bench.hpp"

#include "host/envs/environment.hpp"
#include "host/envs/sampler.hpp"
#include "host/envs/task.hpp"
#include "host/policy/advantages.hpp"
#include "host/policy/gaussian_policy.hpp"
#include "host/policy/imagined_rollout.hpp"
#include "host/policy/inner_step.hpp"

namespace mbmpo::bench {
namespace {

struct RolloutScale {
  std::string name;
  RolloutDims dims;
};

std::vector<RolloutScale> rollout_scales(const std::string& scale, Backend backend) {
  const TaskSpec& task = task_spec("half_cheetah");
  if (scale == "small") return {{"5x8x20", {5, 8, 20, task.obs_dim, task.act_dim}}};
  std::vector<RolloutScale> scales = {{"20x50x200", {20, 50, 200, task.obs_dim, task.act_dim}}};
  if (scale == "large" && backend == Backend::cuda) scales.push_back({"5x4096x200", {5, 4096, 200, task.obs_dim, task.act_dim}});
  return scales;
}

struct Problem {
  DynamicsEnsemble models;
  PolicyLayout layout;
  Tensor<float> params, start, theta;
  Trajectories trajectories;
};

Problem make_problem(Context& context, const std::string& scale, const RolloutDims& d) {
  DynamicsEnsembleConfig config;
  config.models = 5;
  config.hidden = scale == "small" ? std::vector<int>{64, 64} : std::vector<int>{512, 512};
  DynamicsEnsemble models(context, d.obs_dim, d.act_dim, config, 1);
  PolicyLayout layout(d.obs_dim, d.act_dim, {32, 32});
  const std::vector<float> theta = initial_policy_parameters(layout, 2);
  std::vector<float> params;
  for (int t = 0; t < d.tasks; ++t) params.insert(params.end(), theta.begin(), theta.end());
  const auto start = sample_start_states(MujocoModel::load(task_spec("half_cheetah")), int(d.rows()), 3, 0);
  const Backend b = context.backend();
  return {std::move(models), layout,
          Tensor<float>::from_host(b, {d.tasks, layout.parameter_count()}, params),
          Tensor<float>::from_host(b, {d.tasks, d.rollouts, d.obs_dim}, start),
          Tensor<float>::from_host(b, {layout.parameter_count()}, theta), Trajectories(b, d)};
}


}  // namespace

std::vector<nlohmann::json> run_rollout_suite(Context& context, const std::string& scale,
                                              const Ceiling& ceiling) {
  std::vector<nlohmann::json> rows;
  for (const RolloutScale& s : rollout_scales(scale, context.backend())) {
    Problem p = make_problem(context, scale, s.dims);
    const double steps = double(s.dims.samples());
    const double flops = steps * 2.0 * double(p.models.layout().forward_macs_per_row() + p.layout.forward_macs());
    const int repeats = context.backend() == Backend::cpu ? 3 : 10;
    for (bool graph : {true, false}) {
      if (context.backend() == Backend::cpu && !graph) continue;  // the flag means nothing there
      RolloutOptions options;
      options.cuda_graph = graph;
      std::uint64_t draw = 0;
      const Timing t = time_on(context, repeats, [&] {
        options.draw = draw++;
        imagined_rollout(context, TaskId::half_cheetah, p.models, p.layout, p.params, p.start, options,
                         p.trajectories);
      });
      const std::string name = s.name + (context.backend() == Backend::cuda ? (graph ? "/graph" : "/stream") : "");
      nlohmann::json r = row("rollout", name, device_label(context), scale, t, steps);
      r["items"] = "imagined steps";
      rows.push_back(with_flops(r, flops, ceiling));
    }
  }
  return rows;
}

std::vector<nlohmann::json> run_inner_step_suite(Context& context, const std::string& scale,
                                                 const Ceiling& ceiling) {
  std::vector<nlohmann::json> rows;
  for (const RolloutScale& s : rollout_scales(scale, context.backend())) {
    Problem p = make_problem(context, scale, s.dims);
    imagined_rollout(context, TaskId::half_cheetah, p.models, p.layout, p.params, p.start, {}, p.trajectories);
    Advantages advantages(context.backend(), s.dims);
    Tensor<float> adapted(context.backend(), {s.dims.tasks, p.layout.parameter_count()});
    const Timing t = time_on(context, context.backend() == Backend::cpu ? 3 : 20, [&] {
      compute_advantages(context, p.trajectories, {}, advantages);
      inner_step(context, p.layout, p.theta, p.trajectories, advantages, 1e-3, adapted);
    });
    const double samples = double(s.dims.samples());
    // Per sample: the policy forward and its backward (about twice the forward) in the gradient.
    const double flops = samples * 2.0 * 3.0 * double(p.layout.forward_macs());
    nlohmann::json r = row("inner_step", s.name, device_label(context), scale, t, samples);
    r["items"] = "samples (advantages + inner step)";
    rows.push_back(with_flops(r, flops, ceiling));
  }
  return rows;
}

}  // namespace mbmpo::bench
