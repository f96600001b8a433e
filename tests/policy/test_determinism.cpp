// Two runs with one seed give the same bits, on each backend. Every operation of an MB-MPO
// iteration (ensemble fit and predict, imagined rollouts with terminations, baseline and
// advantages, inner step, log-probs, KL, the weighted gradient, the meta-objective's gradient and
// curvature products, batched CG, the meta-update with its line search) runs twice, each time in a
// fresh context, and every output is compared byte for byte. On CUDA this is what forbids float
// atomics and scheduling-dependent sums: a line search must not accept or reject a step depending
// on thread timing.
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "host/data/dataset.hpp"
#include "host/envs/sampler.hpp"
#include "host/envs/task.hpp"
#include "host/models/dynamics_ensemble.hpp"
#include "host/optim/conjugate_gradient.hpp"
#include "host/policy/advantages.hpp"
#include "host/policy/gaussian_policy.hpp"
#include "host/policy/imagined_rollout.hpp"
#include "host/policy/inner_step.hpp"
#include "host/policy/meta_update.hpp"
#include "backend_test.hpp"

namespace mbmpo {
namespace {

using test::test_seed;

// Named outputs of one run, as raw bytes.
struct Outputs {
  std::vector<std::pair<std::string, std::vector<unsigned char>>> items;
  template <class T>
  void add(const std::string& name, const std::vector<T>& values) {
    std::vector<unsigned char> bytes(values.size() * sizeof(T));
    if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    items.emplace_back(name, std::move(bytes));
  }
  void add(const std::string& name, double value) { add(name, std::vector<double>{value}); }
  template <class T>
  std::vector<T> get(const std::string& name) const {
    for (const auto& [key, bytes] : items) {
      if (key != name) continue;
      std::vector<T> values(bytes.size() / sizeof(T));
      std::memcpy(values.data(), bytes.data(), bytes.size());
      return values;
    }
    ADD_FAILURE() << "no output named " << name;
    return {};
  }
};

Outputs run_once(Backend backend, std::uint64_t seed) {
  Context context(backend);
  Outputs out;
  const TaskSpec& spec = task_spec("hopper");  // terminations: ragged trajectories
  const auto mujoco = MujocoModel::load(spec);

  // Real random transitions, then a short fit of a small ensemble (two models, awkward widths).
  Dataset data(spec.obs_dim, spec.act_dim, 3000);
  Sampler sampler(mujoco);
  SamplerOptions sampling;
  sampling.episodes = 12;
  sampling.horizon = 150;
  sampling.seed = seed;
  sampler.run(sampling, uniform_random_policy(seed, spec.action_limit), [&](const Episode& e) { data.add(e); });
  DynamicsEnsembleConfig model_config;
  model_config.models = 2;
  model_config.hidden = {67, 45};
  DynamicsEnsemble models(context, spec.obs_dim, spec.act_dim, model_config, seed);
  ModelFitOptions fit_options;
  fit_options.max_epochs = 3;
  fit_options.batch_size = 97;
  fit_options.seed = seed;
  const ModelFitReport fit = models.fit(data, fit_options);
  out.add("fit validation loss", fit.validation_loss);
  out.add("fit train loss", fit.train_loss);
  out.add("model parameters", models.parameters());

  // Imagined rollouts before and after the inner step, advantages, and the inner step itself.
  const RolloutDims d{3, 11, 37, spec.obs_dim, spec.act_dim};
  const PolicyLayout layout(spec.obs_dim, spec.act_dim, {32, 32});
  const std::int64_t P = layout.parameter_count();
  const auto theta0 = initial_policy_parameters(layout, seed, 1.0);
  Tensor<float> theta = Tensor<float>::from_host(backend, {P}, theta0);
  std::vector<float> tiled_host;
  for (int t = 0; t < d.tasks; ++t) tiled_host.insert(tiled_host.end(), theta0.begin(), theta0.end());
  const auto tiled = Tensor<float>::from_host(backend, {d.tasks, P}, tiled_host);
  const auto start = Tensor<float>::from_host(backend, {d.tasks, d.rollouts, d.obs_dim},
                                              sample_start_states(mujoco, int(d.rows()), seed, 0));
  RolloutOptions rollout;
  rollout.seed = seed;
  Trajectories pre(backend, d), post(backend, d);
  imagined_rollout(context, spec.id, models, layout, tiled, start, rollout, pre);
  AdvantageOptions advantage;
  Advantages pre_adv(backend, d), post_adv(backend, d);
  compute_advantages(context, pre, advantage, pre_adv);
  Tensor<float> adapted(backend, {d.tasks, P});
  inner_step(context, layout, theta, pre, pre_adv, 0.05, adapted);
  rollout.draw = 1;
  imagined_rollout(context, spec.id, models, layout, adapted, start, rollout, post);
  compute_advantages(context, post, advantage, post_adv);
  for (const auto* t : {&pre, &post}) {
    const std::string which = t == &pre ? "pre " : "post ";
    out.add(which + "obs", t->obs.to_host());
    out.add(which + "act", t->act.to_host());
    out.add(which + "reward", t->reward.to_host());
    out.add(which + "valid", t->valid.to_host());
    out.add(which + "logp", t->logp.to_host());
  }
  for (const auto* a : {&pre_adv, &post_adv}) {
    const std::string which = a == &pre_adv ? "pre " : "post ";
    out.add(which + "advantages", a->advantages.to_host());
    out.add(which + "returns", a->returns.to_host());
    out.add(which + "valid count", a->valid_count.to_host());
    out.add(which + "baseline", a->baseline.to_host());
  }
  out.add("adapted", adapted.to_host());

  // The batched policy operations on their own.
  const std::int64_t N = std::int64_t(d.rollouts) * d.horizon;
  Tensor<float> per_sample(backend, {d.tasks, N}), grad(backend, {d.tasks, P});
  policy_log_probs(context, layout, adapted, post.obs_by_task(), post.act_by_task(), per_sample);
  out.add("log probs", per_sample.to_host());
  policy_kl(context, layout, tiled, adapted, post.obs_by_task(), per_sample);
  out.add("kl", per_sample.to_host());
  weighted_log_prob_gradient(context, layout, adapted, post.obs_by_task(), post.act_by_task(),
                             post_adv.by_task(), grad);
  out.add("weighted gradient", grad.to_host());

  // The meta-objective's products, CG on them, and the whole meta-update.
  MetaUpdateOptions meta;
  meta.inner_lr = 0.05;
  meta.fisher_subsample = 0.7;
  meta.seed = seed;
  {
    MetaObjective objective(context, layout, theta, adapted, pre, pre_adv, post, post_adv, meta);
    Tensor<float> g(backend, {P}), x(backend, {P});
    objective.gradient(g);
    out.add("meta gradient", g.to_host());
    objective.curvature(g, x);
    out.add("curvature product", x.to_host());
    const auto value = objective.evaluate(g);
    out.add("surrogate", value.surrogate);
    out.add("kl at g", value.kl);
    ConjugateGradientOptions cg;
    const auto report = conjugate_gradient(
        context, [&](const float* p, float* ap) {
          objective.curvature(TensorView<const float>{backend, p, {P}}, TensorView<float>{backend, ap, {P}});
        },
        TensorView<const float>{backend, g.data(), {1, P}}, TensorView<float>{backend, x.data(), {1, P}}, cg);
    out.add("cg solution", x.to_host());
    out.add("cg residual", report.residual_norm);
  }
  const MetaUpdateReport report = meta_update(context, layout, theta, adapted, pre, pre_adv, post, post_adv, meta);
  out.add("meta-update theta", theta.to_host());
  out.add("meta-update accepted", double(report.accepted));
  out.add("meta-update backtracks", double(report.backtracks));
  out.add("meta-update kl", report.kl);
  out.add("meta-update surrogate", report.surrogate_after);
  return out;
}

class Determinism : public test::BackendTest {};

TEST_P(Determinism, EveryOperationGivesTheSameBitsTwice) {
  const std::uint64_t seed = test_seed();
  std::printf("MBMPO_TEST_SEED=%llu\n", static_cast<unsigned long long>(seed));
  const Outputs first = run_once(backend(), seed), second = run_once(backend(), seed);
  ASSERT_EQ(first.items.size(), second.items.size());
  for (std::size_t i = 0; i < first.items.size(); ++i) {
    EXPECT_EQ(first.items[i].second, second.items[i].second) << first.items[i].first << " differs between two runs";
  }
  // The case exercises what it should: trajectories end early, and the line search takes a step.
  const auto valid = first.get<float>("pre valid");
  EXPECT_NE(std::count(valid.begin(), valid.end(), 0.f), 0) << "no imagined trajectory ended";
  EXPECT_EQ(first.get<double>("meta-update accepted").at(0), 1.0) << "the meta-update took no step";
}

MBMPO_INSTANTIATE_BACKEND_TESTS(Determinism);

}  // namespace
}  // namespace mbmpo
