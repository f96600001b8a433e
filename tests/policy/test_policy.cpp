// The Gaussian policy, imagined rollouts, advantages and the inner step: the per-sample math
// against finite differences in double (CPU reference), every batched operation on each backend
// against a plain double reference, and the CUDA rollout with and without a CUDA graph.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>

#include "backend_test.hpp"
#include "host/core/memory.hpp"
#include "host/envs/environment.hpp"
#include "host/envs/sampler.hpp"
#include "host/envs/task.hpp"
#include "host/models/dynamics_ensemble.hpp"
#include "host/models/ensemble_stack.hpp"
#include "host/policy/advantages.hpp"
#include "host/policy/gaussian_policy.hpp"
#include "host/policy/imagined_rollout.hpp"
#include "host/policy/inner_step.hpp"

namespace mbmpo {
namespace {

using test::cast;
using test::random_vector;
using test::test_seed;


// ---- per-sample math in double -------------------------------------------------------------------

struct SmallPolicy {
  PolicyLayout layout{5, 3, {7, 6}};
  PolicyShape shape = policy_shape(layout);
  std::vector<double> theta;
  explicit SmallPolicy(std::uint64_t seed) {
    theta = random_vector<double>(layout.parameter_count(), seed, -0.7, 0.7);
  }
  double log_prob(const std::vector<double>& params, const double* obs, const double* act) const {
    PolicyActivations<double> a;
    policy_forward(shape, params.data(), obs, a);
    return gaussian_log_prob(shape, params.data(), policy_mean(shape, a), act);
  }
};

TEST(GaussianPolicyMath, LogProbMatchesTheDensity) {
  SmallPolicy p(test_seed());
  const auto obs = random_vector<double>(5, test_seed() + 1, -1, 1);
  const auto act = random_vector<double>(3, test_seed() + 2, -1, 1);
  PolicyActivations<double> a;
  policy_forward(p.shape, p.theta.data(), obs.data(), a);
  double expected = 0;
  for (int j = 0; j < 3; ++j) {
    const double sigma = std::exp(p.theta[p.layout.log_std_offset() + j]);
    const double z = (act[j] - a.h[2][j]) / sigma;
    expected += std::log(std::exp(-0.5 * z * z) / (sigma * std::sqrt(2 * M_PI)));
  }
  EXPECT_NEAR(p.log_prob(p.theta, obs.data(), act.data()), expected, 1e-12);
}

TEST(GaussianPolicyMath, LogProbGradientMatchesFiniteDifferences) {
  SmallPolicy p(test_seed());
  const int n = 4;
  const auto obs = random_vector<double>(n * 5, test_seed() + 1, -1.5, 1.5);
  const auto act = random_vector<double>(n * 3, test_seed() + 2, -1.5, 1.5);
  const auto weight = random_vector<double>(n, test_seed() + 3, -2, 2);
  std::vector<double> grad(p.theta.size(), 0.0);
  cpu::weighted_log_prob_gradient(p.shape, 1, n, p.theta.data(), false, obs.data(), act.data(),
                                  weight.data(), grad.data());
  auto objective = [&](const std::vector<double>& params) {
    double total = 0;
    for (int i = 0; i < n; ++i) total += weight[i] * p.log_prob(params, &obs[i * 5], &act[i * 3]);
    return total;
  };
  for (std::size_t i = 0; i < p.theta.size(); ++i) {
    auto plus = p.theta, minus = p.theta;
    plus[i] += 1e-6;
    minus[i] -= 1e-6;
    const double numeric = (objective(plus) - objective(minus)) / 2e-6;
    ASSERT_NEAR(grad[i], numeric, 1e-6 * (1 + std::abs(numeric))) << "parameter " << i;
  }
}

TEST(GaussianPolicyMath, KlMatchesMonteCarloAndVanishesToSecondOrder) {
  SmallPolicy p(test_seed());
  auto other = p.theta;
  for (auto& x : other) x += 0.1 * std::sin(7.0 * (&x - other.data()));
  const auto obs = random_vector<double>(5, test_seed() + 1, -1, 1);
  auto kl = [&](const std::vector<double>& a, const std::vector<double>& b) {
    PolicyActivations<double> fa, fb;
    policy_forward(p.shape, a.data(), obs.data(), fa);
    policy_forward(p.shape, b.data(), obs.data(), fb);
    return gaussian_kl(p.shape, a.data(), policy_mean(p.shape, fa), b.data(), policy_mean(p.shape, fb));
  };
  // Monte Carlo: E_{a ~ old}[log old(a) - log new(a)].
  PolicyActivations<double> f;
  policy_forward(p.shape, p.theta.data(), obs.data(), f);
  std::mt19937_64 rng(test_seed());
  std::normal_distribution<double> normal;
  double sum = 0, sum_sq = 0;
  const int draws = 200000;
  for (int i = 0; i < draws; ++i) {
    double a[3];
    for (int j = 0; j < 3; ++j) a[j] = f.h[2][j] + std::exp(p.theta[p.layout.log_std_offset() + j]) * normal(rng);
    const double x = p.log_prob(p.theta, obs.data(), a) - p.log_prob(other, obs.data(), a);
    sum += x;
    sum_sq += x * x;
  }
  const double mean = sum / draws, stderr_ = std::sqrt((sum_sq / draws - mean * mean) / draws);
  EXPECT_NEAR(kl(p.theta, other), mean, 5 * stderr_);
  EXPECT_EQ(kl(p.theta, p.theta), 0.0);
  // Zero gradient at equality: KL(theta, theta + e v) = O(e^2).
  auto step = p.theta;
  for (std::size_t i = 0; i < step.size(); ++i) step[i] += 1e-4 * std::cos(double(i));
  EXPECT_LT(kl(p.theta, step), 1e-6);
  EXPECT_GT(kl(p.theta, step), 0.0);
}

TEST(GaussianPolicyMath, StdIsFlooredAtOneMillionth) {
  SmallPolicy p(test_seed());
  const auto obs = random_vector<double>(5, test_seed() + 1, -1, 1);
  const auto act = random_vector<double>(3, test_seed() + 2, -1e-7, 1e-7);
  auto below = p.theta, at = p.theta;
  below[p.layout.log_std_offset()] = -30.0;
  at[p.layout.log_std_offset()] = std::log(1e-6);
  EXPECT_NEAR(p.log_prob(below, obs.data(), act.data()), p.log_prob(at, obs.data(), act.data()), 1e-9);
  std::vector<double> grad(p.theta.size(), 0.0);
  const double weight = 1.0;
  cpu::weighted_log_prob_gradient(p.shape, 1, 1, below.data(), false, obs.data(), act.data(), &weight, grad.data());
  EXPECT_EQ(grad[p.layout.log_std_offset()], 0.0);
  EXPECT_NE(grad[p.layout.log_std_offset() + 1], 0.0);
}

TEST(GaussianPolicyMath, InitialParametersAndEntropy) {
  const PolicyLayout layout(17, 6, {32, 32});
  const auto params = initial_policy_parameters(layout, 3, 1.0);
  EXPECT_EQ(layout.parameter_count(), 17 * 32 + 32 + 32 * 32 + 32 + 32 * 6 + 6 + 6);
  for (int j = 0; j < 6; ++j) EXPECT_EQ(params[layout.log_std_offset() + j], 0.f);
  for (const auto& l : layout.layers()) {
    const float limit = std::sqrt(6.f / float(l.in + l.out));
    for (int i = 0; i < l.out; ++i) EXPECT_EQ(params[l.b_offset + i], 0.f);
    for (int i = 0; i < l.in * l.out; ++i) EXPECT_LE(std::abs(params[l.w_offset + i]), limit);
  }
  EXPECT_NEAR(policy_entropy(layout, params), 6 * 0.5 * std::log(2 * M_PI * M_E), 1e-6);
  EXPECT_THROW(PolicyLayout(17, 6, {32, kMaxPolicyWidth + 1}), InputError);
}

// A (256, 256) policy on a 45-dimensional observation: the batched gradient and Hessian-vector
// product (the forms both backends compute) against central differences in double.
TEST(GaussianPolicyMath, WidePolicyGradientAndHessianVectorMatchFiniteDifferences) {
  const PolicyLayout layout(45, 8, {256, 256});
  const PolicyShape s = policy_shape(layout);
  const std::int64_t P = layout.parameter_count();
  std::vector<double> theta = cast<double>(initial_policy_parameters(layout, test_seed(), 1.0));
  const auto noise = random_vector<double>(P, test_seed() + 9, -0.05, 0.05);
  for (std::int64_t i = 0; i < P; ++i) theta[i] += noise[i];  // biases and log-stds away from 0
  const int n = 3;
  const auto obs = random_vector<double>(n * 45, test_seed() + 1, -1.5, 1.5);
  const auto act = random_vector<double>(n * 8, test_seed() + 2, -1.5, 1.5);
  const auto weight = random_vector<double>(n, test_seed() + 3, 0.5, 2);
  auto gradient = [&](const std::vector<double>& params) {
    std::vector<double> g(P);
    cpu::weighted_log_prob_gradient(s, 1, n, params.data(), false, obs.data(), act.data(), weight.data(), g.data());
    return g;
  };
  auto objective = [&](const std::vector<double>& params) {
    double total = 0;
    for (int i = 0; i < n; ++i) {
      PolicyActivations<double> a;
      policy_forward(s, params.data(), &obs[i * 45], a);
      total += weight[i] * gaussian_log_prob(s, params.data(), policy_mean(s, a), &act[i * 8]);
    }
    return total;
  };
  const std::vector<double> grad = gradient(theta);
  // Every block's first and last parameter, then a spread of the rest.
  std::vector<std::int64_t> checked;
  for (const auto& l : layout.layers()) {
    checked.insert(checked.end(), {l.w_offset, l.b_offset - 1, l.b_offset, l.b_offset + l.out - 1});
  }
  checked.insert(checked.end(), {layout.log_std_offset(), P - 1});
  for (std::int64_t i = 7; i < P; i += 397) checked.push_back(i);
  double largest = 0;
  for (std::int64_t i : checked) {
    auto plus = theta, minus = theta;
    plus[i] += 1e-6;
    minus[i] -= 1e-6;
    const double numeric = (objective(plus) - objective(minus)) / 2e-6;
    largest = std::max(largest, std::abs(numeric));
    ASSERT_NEAR(grad[i], numeric, 1e-6 * (1 + std::abs(numeric))) << "parameter " << i;
  }
  EXPECT_GT(largest, 1e-2);  // the checked entries are not all trivially zero

  // H v against the gradient's central difference along v.
  const auto v = random_vector<double>(P, test_seed() + 4, -1, 1);
  std::vector<double> hv(P);
  cpu::log_prob_hessian_vector(s, 1, n, theta.data(), false, v.data(), obs.data(), act.data(), weight.data(),
                               hv.data());
  const double eps = 1e-5;
  auto plus = theta, minus = theta;
  for (std::int64_t i = 0; i < P; ++i) {
    plus[i] += eps * v[i];
    minus[i] -= eps * v[i];
  }
  const std::vector<double> g_plus = gradient(plus), g_minus = gradient(minus);
  double scale = 0;
  for (std::int64_t i = 0; i < P; ++i) scale = std::max(scale, std::abs(hv[i]));
  ASSERT_GT(scale, 1e-3);
  for (std::int64_t i = 0; i < P; ++i) {
    const double numeric = (g_plus[i] - g_minus[i]) / (2 * eps);
    ASSERT_NEAR(hv[i], numeric, 1e-5 * (1 + scale)) << "parameter " << i;
  }
}

// ---- batched operations on each backend ------------------------------------------------------------

class PolicyBackends : public test::BackendTest {
 protected:
  void SetUp() override {
    test::BackendTest::SetUp();
    std::printf("MBMPO_TEST_SEED=%llu\n", static_cast<unsigned long long>(test_seed()));
  }
};

// Random, smooth, fixed models: small gains so that the imagined dynamics neither explode nor
// amplify float rounding much over the horizon.
DynamicsEnsemble smooth_models(Context& context, int obs_dim, int act_dim, std::uint64_t seed) {
  DynamicsEnsembleConfig config;
  config.models = 3;
  config.hidden = {37, 29};
  config.activation = Activation::tanh;
  DynamicsEnsemble models(context, obs_dim, act_dim, config, seed);
  auto params = models.parameters();
  for (const auto& layer : models.layout().layers()) {
    for (std::int64_t i = 0; i < 3 * layer.out; ++i) {
      params[layer.g_offset + i] = 0.4f;
      params[layer.b_offset + i] = 0.05f * std::sin(float(i));
    }
  }
  models.set_parameters(params);
  return models;
}

// The same rollout as imagined_rollout, written as plain loops in double.
struct ReferenceRollout {
  std::vector<double> obs, act, reward, valid, logp;
};
ReferenceRollout reference_rollout(TaskId task, const DynamicsEnsemble& models, const PolicyLayout& layout,
                                   const std::vector<float>& params, const std::vector<float>& start,
                                   const RolloutDims& d, std::uint64_t seed, std::uint64_t draw) {
  const PolicyShape s = policy_shape(layout);
  const std::vector<double> theta = cast<double>(params);
  const std::vector<double> model_params = cast<double>(models.parameters());
  const std::vector<double> norm = cast<double>(models.normalization());
  const int in = d.obs_dim + d.act_dim;
  const double limit = task_constants(task).action_limit;
  ReferenceRollout r;
  r.obs.assign(d.samples() * d.obs_dim, 0);
  r.act.assign(d.samples() * d.act_dim, 0);
  r.reward.assign(d.samples(), 0);
  r.valid.assign(d.samples(), 0);
  r.logp.assign(d.samples(), 0);
  for (std::int64_t row = 0; row < d.rows(); ++row) {
    const int t = int(row / d.rollouts);
    const int k = t % models.models();
    std::vector<double> state(start.begin() + row * d.obs_dim, start.begin() + (row + 1) * d.obs_dim);
    for (int h = 0; h < d.horizon; ++h) {
      const std::int64_t i = row * d.horizon + h;
      std::copy(state.begin(), state.end(), r.obs.begin() + i * d.obs_dim);
      r.valid[i] = 1;
      PolicyActivations<double> f;
      const double* th = theta.data() + t * s.parameter_count;
      policy_forward(s, th, state.data(), f);
      std::vector<double> a(d.act_dim), a_env(d.act_dim), x(in);
      for (int j = 0; j < d.act_dim; ++j) {
        a[j] = policy_mean(s, f)[j] + std::exp(th[s.log_std_offset + j]) * action_noise(seed, draw, d, row, h, j);
        a_env[j] = std::clamp(a[j], -limit, limit);
        r.act[i * d.act_dim + j] = a[j];
      }
      r.logp[i] = gaussian_log_prob(s, th, policy_mean(s, f), a.data());
      for (int j = 0; j < in; ++j) {
        const double raw = j < d.obs_dim ? state[j] : a_env[j - d.obs_dim];
        x[j] = (raw - norm[j]) / (norm[in + j] + 1e-10);
      }
      // All K models on this row; keep model k's output (the layout runs every model).
      std::vector<double> xs;
      for (int m = 0; m < models.models(); ++m) xs.insert(xs.end(), x.begin(), x.end());
      cpu::MlpActivations<double> acts;
      cpu::mlp_forward(models.layout(), model_params.data(), xs.data(), 1, acts);
      std::vector<double> next(d.obs_dim);
      for (int j = 0; j < d.obs_dim; ++j) {
        const double delta = acts.out.back()[k * d.obs_dim + j] * (norm[2 * in + d.obs_dim + j] + 1e-10) + norm[2 * in + j];
        next[j] = std::clamp(state[j] + delta, -1000.0, 1000.0);
      }
      r.reward[i] = task_reward(task, state.data(), a_env.data(), next.data());
      state = next;
      if (task_done(task, next.data())) break;
    }
  }
  return r;
}

void expect_close(const std::vector<float>& actual, const std::vector<double>& expected, double tol,
                  const char* what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], tol * (1 + std::abs(expected[i]))) << what << " element " << i;
  }
}

struct RolloutCase {
  const char* task;
  int tasks, rollouts, horizon;
  std::vector<int> policy_hidden = {32, 32};
};

void check_rollout_against_reference(Context& context, const RolloutCase& c, bool cuda_graph) {
  const TaskSpec& spec = task_spec(c.task);
  const RolloutDims d{c.tasks, c.rollouts, c.horizon, spec.obs_dim, spec.act_dim};
  DynamicsEnsemble models = smooth_models(context, d.obs_dim, d.act_dim, test_seed());
  const PolicyLayout layout(d.obs_dim, d.act_dim, c.policy_hidden);
  std::vector<float> params;
  for (int t = 0; t < d.tasks; ++t) {
    auto p = initial_policy_parameters(layout, test_seed() + t, 0.5);
    params.insert(params.end(), p.begin(), p.end());
  }
  const auto start = sample_start_states(MujocoModel::load(spec), int(d.rows()), test_seed(), 0);
  const Backend backend = context.backend();
  const auto params_t = Tensor<float>::from_host(backend, {d.tasks, layout.parameter_count()}, params);
  const auto start_t = Tensor<float>::from_host(backend, {d.tasks, d.rollouts, d.obs_dim}, start);
  Trajectories out(backend, d);
  for (Tensor<float>* t : {&out.obs, &out.act, &out.reward, &out.valid, &out.logp}) t->poison();
  RolloutOptions options;
  options.seed = test_seed() + 11;
  options.draw = 3;
  options.cuda_graph = cuda_graph;
  imagined_rollout(context, spec.id, models, layout, params_t, start_t, options, out);
  const ReferenceRollout r = reference_rollout(spec.id, models, layout, params, start, d, options.seed, options.draw);
  // Validity must agree exactly; values to float rounding grown over the horizon.
  const auto valid = out.valid.to_host();
  int ended = 0;
  for (std::size_t i = 0; i < valid.size(); ++i) {
    ASSERT_EQ(valid[i], float(r.valid[i])) << "sample " << i;
    ended += valid[i] == 0.f;
  }
  expect_close(out.obs.to_host(), r.obs, 2e-3, "obs");
  expect_close(out.act.to_host(), r.act, 2e-3, "act");
  expect_close(out.reward.to_host(), r.reward, 2e-3, "reward");
  expect_close(out.logp.to_host(), r.logp, 2e-3, "logp");
  std::printf("%s: %d of %lld samples after an ending\n", c.task, ended, static_cast<long long>(d.samples()));

  // The stored log-probs are those of the policy that acted.
  Tensor<float> logp(backend, {d.tasks, std::int64_t(d.rollouts) * d.horizon});
  logp.poison();
  policy_log_probs(context, layout, params_t, out.obs_by_task(), out.act_by_task(), logp);
  const auto recomputed = logp.to_host(), stored = out.logp.to_host();
  for (std::size_t i = 0; i < stored.size(); ++i) {
    if (valid[i] != 0.f) {
      ASSERT_NEAR(recomputed[i], stored[i], 1e-4 * (1 + std::abs(stored[i])));
    }
  }
}

TEST_P(PolicyBackends, HalfCheetahRolloutOfHorizon200MatchesDoubleReference) {
  check_rollout_against_reference(context(), {"half_cheetah", 4, 13, 200}, true);
}

TEST_P(PolicyBackends, HopperRolloutWithTerminationsMatchesDoubleReference) {
  check_rollout_against_reference(context(), {"hopper", 5, 37, 40}, true);
}

// The policy step as batched products with layers four times wider than a per-thread MLP could
// hold; 3 tasks of 7 rollouts, so no product is a multiple of a tile.
TEST_P(PolicyBackends, WidePolicyRolloutMatchesDoubleReference) {
  check_rollout_against_reference(context(), {"half_cheetah", 3, 7, 40, {256, 256}}, true);
}

TEST_P(PolicyBackends, RolloutWithoutCudaGraphIsTheSame) {
  check_rollout_against_reference(context(), {"hopper", 3, 9, 25}, false);
}

// A rollout runner kept between calls (as the trainer keeps it) gives the same bits as a fresh
// rollout, allocates nothing after its first call and, on CUDA, records its graph again without
// instantiating a new one (the update in place takes the new draw and parameters).
TEST_P(PolicyBackends, KeptRolloutRunnerMatchesAndReusesItsBuffersAndGraph) {
  const TaskSpec& spec = task_spec("hopper");
  const RolloutDims d{3, 7, 19, spec.obs_dim, spec.act_dim};
  DynamicsEnsemble models = smooth_models(context(), d.obs_dim, d.act_dim, test_seed());
  const PolicyLayout layout(d.obs_dim, d.act_dim, {32, 32});
  std::vector<float> params;
  for (int t = 0; t < d.tasks; ++t) {
    auto p = initial_policy_parameters(layout, test_seed() + t, 0.7);
    params.insert(params.end(), p.begin(), p.end());
  }
  const auto params_t = Tensor<float>::from_host(backend(), {d.tasks, layout.parameter_count()}, params);
  const auto start = Tensor<float>::from_host(backend(), {d.tasks, d.rollouts, d.obs_dim},
                                              sample_start_states(MujocoModel::load(spec), int(d.rows()), test_seed(), 0));
  ImaginedRollout runner(context(), d);
  Trajectories kept(backend(), d), fresh(backend(), d);
  std::int64_t allocations = 0;
  for (std::uint64_t draw = 0; draw < 3; ++draw) {
    RolloutOptions options;
    options.seed = test_seed();
    options.draw = draw;
    for (Tensor<float>* t : {&kept.obs, &kept.act, &kept.reward, &kept.valid, &kept.logp}) t->poison();
    if (draw == 2) allocations = memory::allocation_count(backend());
    runner.run(spec.id, models, layout, params_t, start, options, kept);
    if (draw == 2) {
      EXPECT_EQ(memory::allocation_count(backend()), allocations) << "the kept runner allocated";
    }
    imagined_rollout(context(), spec.id, models, layout, params_t, start, options, fresh);
    EXPECT_EQ(kept.obs.to_host(), fresh.obs.to_host()) << "draw " << draw;
    EXPECT_EQ(kept.act.to_host(), fresh.act.to_host()) << "draw " << draw;
    EXPECT_EQ(kept.reward.to_host(), fresh.reward.to_host()) << "draw " << draw;
    EXPECT_EQ(kept.valid.to_host(), fresh.valid.to_host()) << "draw " << draw;
    EXPECT_EQ(kept.logp.to_host(), fresh.logp.to_host()) << "draw " << draw;
  }
  EXPECT_EQ(runner.graph_instantiations(), backend() == Backend::cuda ? 1 : 0);
}

// Several seeds' tasks in one rollout (`mbmpo train --seeds`): a stack of their ensembles, each
// with its own weights and normalisation, and the noise keyed per seed give every seed bit for bit
// the trajectories of a rollout of its own. Hopper (endings), 4 tasks on 3 models per seed (so
// models get unequal row counts and the assignment pads).
TEST_P(PolicyBackends, SeedsInOneRolloutEqualRolloutsOfTheirOwn) {
  const TaskSpec& spec = task_spec("hopper");
  const int B = 3, tasks = 4;
  const RolloutDims one{tasks, 7, 23, spec.obs_dim, spec.act_dim};
  const RolloutDims all{B * tasks, one.rollouts, one.horizon, one.obs_dim, one.act_dim};
  const PolicyLayout layout(one.obs_dim, one.act_dim, {32, 32});
  const std::int64_t P = layout.parameter_count();
  std::vector<std::unique_ptr<DynamicsEnsemble>> ensembles;
  std::vector<DynamicsEnsemble*> ensemble_ptrs;
  std::vector<std::uint64_t> seed_keys;
  std::vector<float> params, start;
  for (int g = 0; g < B; ++g) {
    ensembles.push_back(std::make_unique<DynamicsEnsemble>(
        smooth_models(context(), one.obs_dim, one.act_dim, test_seed() + 100 * g)));
    DatasetStats stats;  // statistics of its own per seed
    std::mt19937_64 rng(test_seed() + g);
    std::uniform_real_distribution<double> mean(-0.2, 0.2), std(0.5, 1.5);
    for (FeatureStats* f : {&stats.obs, &stats.act, &stats.delta}) {
      const int n = f == &stats.act ? one.act_dim : one.obs_dim;
      for (int i = 0; i < n; ++i) {
        f->mean.push_back(mean(rng));
        f->std.push_back(std(rng));
      }
    }
    ensembles.back()->set_normalization(stats);
    ensemble_ptrs.push_back(ensembles.back().get());
    seed_keys.push_back(test_seed() * 7 + 1000 * g);
    for (int t = 0; t < tasks; ++t) {
      const auto p = initial_policy_parameters(layout, test_seed() + 10 * g + t, 0.6);
      params.insert(params.end(), p.begin(), p.end());
    }
    const auto s = sample_start_states(MujocoModel::load(spec), int(one.rows()), seed_keys.back(), 0);
    start.insert(start.end(), s.begin(), s.end());
  }
  EnsembleStack stack(context(), one.obs_dim, one.act_dim, ensemble_ptrs.front()->config(), B);
  stack.gather(ensemble_ptrs);
  EXPECT_EQ(stack.ensemble().seeds(), B);

  const auto params_t = Tensor<float>::from_host(backend(), {all.tasks, P}, params);
  const auto start_t = Tensor<float>::from_host(backend(), {all.tasks, all.rollouts, all.obs_dim}, start);
  Trajectories together(backend(), all);
  for (Tensor<float>* t : {&together.obs, &together.act, &together.reward, &together.valid, &together.logp}) {
    t->poison();
  }
  RolloutOptions options;
  options.draw = 5;
  options.seeds = seed_keys;
  imagined_rollout(context(), spec.id, stack.ensemble(), layout, params_t, start_t, options, together);
  int ended = 0;
  for (int g = 0; g < B; ++g) {
    const std::int64_t params_per_seed = tasks * P, starts_per_seed = one.rows() * one.obs_dim;
    const auto own_params = Tensor<float>::from_host(
        backend(), {tasks, P}, std::vector<float>(params.begin() + g * params_per_seed, params.begin() + (g + 1) * params_per_seed));
    const auto own_start = Tensor<float>::from_host(
        backend(), {tasks, one.rollouts, one.obs_dim},
        std::vector<float>(start.begin() + g * starts_per_seed, start.begin() + (g + 1) * starts_per_seed));
    Trajectories alone(backend(), one);
    RolloutOptions own = options;
    own.seeds.clear();
    own.seed = seed_keys[g];
    imagined_rollout(context(), spec.id, *ensemble_ptrs[g], layout, own_params, own_start, own, alone);
    auto slice = [&](const Tensor<float>& t) {
      const auto host = t.to_host();
      const std::size_t per_seed = host.size() / B;
      return std::vector<float>(host.begin() + g * per_seed, host.begin() + (g + 1) * per_seed);
    };
    EXPECT_EQ(slice(together.obs), alone.obs.to_host()) << "seed " << g;
    EXPECT_EQ(slice(together.act), alone.act.to_host()) << "seed " << g;
    EXPECT_EQ(slice(together.reward), alone.reward.to_host()) << "seed " << g;
    EXPECT_EQ(slice(together.valid), alone.valid.to_host()) << "seed " << g;
    EXPECT_EQ(slice(together.logp), alone.logp.to_host()) << "seed " << g;
    for (float v : alone.valid.to_host()) ended += v == 0.f;
  }
  std::printf("%d samples after an ending\n", ended);

  // Seeds that do not match the stack are named.
  RolloutOptions two = options;
  two.seeds.pop_back();
  EXPECT_THROW(imagined_rollout(context(), spec.id, stack.ensemble(), layout, params_t, start_t, two, together), Error);
}

// Trajectories with random contents and endings, built on the host.
Trajectories random_trajectories(Backend backend, const RolloutDims& d, std::uint64_t seed) {
  Trajectories t(backend, d);
  auto obs = random_vector<float>(d.samples() * d.obs_dim, seed, -12, 12);  // some beyond the clip
  auto act = random_vector<float>(d.samples() * d.act_dim, seed + 1, -2, 2);
  auto reward = random_vector<float>(d.samples(), seed + 2, -1, 2);
  std::vector<float> valid(d.samples(), 1.f), logp(d.samples(), 0.f);
  std::mt19937_64 rng(seed + 3);
  for (std::int64_t row = 0; row < d.rows(); ++row) {
    const int length = rng() % 3 == 0 ? int(rng() % d.horizon) : d.horizon;  // a third end early
    for (int h = length; h < d.horizon; ++h) valid[row * d.horizon + h] = reward[row * d.horizon + h] = 0.f;
  }
  t.obs.copy_from_host(obs);
  t.act.copy_from_host(act);
  t.reward.copy_from_host(reward);
  t.valid.copy_from_host(valid);
  t.logp.copy_from_host(logp);
  return t;
}

TEST_P(PolicyBackends, BaselineAndGaeMatchDenseLeastSquaresAndPlainLoops) {
  const RolloutDims d{3, 17, 23, 5, 2};
  const Trajectories t = random_trajectories(backend(), d, test_seed());
  Advantages adv(backend(), d);
  adv.advantages.poison();
  adv.returns.poison();
  adv.valid_count.poison();
  AdvantageOptions options;
  options.discount = 0.97;
  options.gae_lambda = 0.9;
  options.normalize = false;
  compute_advantages(context(), t, options, adv);

  const auto obs = t.obs.to_host(), reward = t.reward.to_host(), valid = t.valid.to_host();
  const auto returns = adv.returns.to_host(), advantages = adv.advantages.to_host();
  const auto coefficients = adv.baseline.to_host();
  const auto count = adv.valid_count.to_host();
  const int F = baseline_features(d.obs_dim);
  const std::int64_t per_task = std::int64_t(d.rollouts) * d.horizon;
  auto features = [&](std::int64_t i) {
    Eigen::VectorXd f(F);
    baseline_feature_row<double>(&obs[i * d.obs_dim], d.obs_dim, int(i % d.horizon), 10.f, f.data());
    return f;
  };
  for (int task = 0; task < d.tasks; ++task) {
    // Returns by a plain loop.
    for (std::int64_t row = task * d.rollouts; row < (task + 1) * d.rollouts; ++row) {
      double running = 0;
      for (int h = d.horizon - 1; h >= 0; --h) {
        const std::int64_t i = row * d.horizon + h;
        running = valid[i] ? reward[i] + 0.97 * running : 0.0;
        ASSERT_NEAR(returns[i], running, 1e-4 * (1 + std::abs(running)));
      }
    }
    // Ridge least squares as a dense augmented system [X; sqrt(ridge) I] w = [y; 0].
    std::vector<std::int64_t> rows;
    for (std::int64_t n = 0; n < per_task; ++n)
      if (valid[task * per_task + n]) rows.push_back(task * per_task + n);
    EXPECT_EQ(count[task], float(rows.size()));
    Eigen::MatrixXd X = Eigen::MatrixXd::Zero(rows.size() + F, F);
    Eigen::VectorXd y = Eigen::VectorXd::Zero(rows.size() + F);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      X.row(r) = features(rows[r]).transpose();
      y[r] = returns[rows[r]];
    }
    X.bottomRows(F) = std::sqrt(1e-5) * Eigen::MatrixXd::Identity(F, F);
    const Eigen::VectorXd w = X.colPivHouseholderQr().solve(y);
    const Eigen::Map<const Eigen::VectorXd> fitted(&coefficients[task * F], F);
    // Compare the fitted values (the coefficients themselves are ill-conditioned).
    const Eigen::VectorXd ours = X.topRows(rows.size()) * fitted, dense = X.topRows(rows.size()) * w;
    EXPECT_LT((ours - dense).norm(), 1e-3 * (1 + dense.norm())) << "task " << task;

    // GAE by a plain loop with the fitted baseline.
    for (std::int64_t row = task * d.rollouts; row < (task + 1) * d.rollouts; ++row) {
      double next_value = 0, running = 0;
      for (int h = d.horizon - 1; h >= 0; --h) {
        const std::int64_t i = row * d.horizon + h;
        if (!valid[i]) {
          ASSERT_EQ(advantages[i], 0.f);
          next_value = running = 0;
          continue;
        }
        const double value = features(i).dot(fitted);
        running = reward[i] + 0.97 * next_value - value + 0.97 * 0.9 * running;
        next_value = value;
        ASSERT_NEAR(advantages[i], running, 1e-3 * (1 + std::abs(running))) << "sample " << i;
      }
    }
  }

  // Normalised: mean 0 and std 1 over each task's valid samples; 0 elsewhere.
  options.normalize = true;
  compute_advantages(context(), t, options, adv);
  const auto normalized = adv.advantages.to_host();
  for (int task = 0; task < d.tasks; ++task) {
    double n = 0, sum = 0, sum_sq = 0;
    for (std::int64_t i = task * per_task; i < (task + 1) * per_task; ++i) {
      if (!valid[i]) {
        EXPECT_EQ(normalized[i], 0.f);
        continue;
      }
      n += 1;
      sum += normalized[i];
      sum_sq += normalized[i] * normalized[i];
    }
    EXPECT_NEAR(sum / n, 0.0, 1e-4);
    EXPECT_NEAR(sum_sq / n, 1.0, 1e-3);
  }
}

// Normalisation when most of a task's samples have ended: in task 0 only the first step or three
// of each trajectory is valid (most threads of a CUDA block see no valid sample), task 1 has no
// valid sample at all, task 2 is full. Every block-wide sum must reach every thread, or the
// kernel's branches diverge around its barriers (undefined results or a hang).
TEST_P(PolicyBackends, NormalisationWithSparseAndEmptyTasks) {
  const RolloutDims d{3, 40, 50, 4, 2};  // 2000 samples per task, more than a block's threads
  Trajectories t = random_trajectories(backend(), d, test_seed());
  auto valid = t.valid.to_host(), reward = t.reward.to_host();
  std::mt19937_64 rng(test_seed() + 7);
  std::vector<float> expected_count(d.tasks, 0.f);
  for (std::int64_t row = 0; row < d.rows(); ++row) {
    const int task = int(row / d.rollouts);
    const int length = task == 0 ? 1 + int(rng() % 3) : task == 1 ? 0 : d.horizon;
    for (int h = 0; h < d.horizon; ++h) {
      const std::int64_t i = row * d.horizon + h;
      valid[i] = h < length ? 1.f : 0.f;
      if (h >= length) reward[i] = 0.f;
    }
    expected_count[task] += float(length);
  }
  t.valid.copy_from_host(valid);
  t.reward.copy_from_host(reward);
  AdvantageOptions options;
  Advantages adv(backend(), d);
  adv.advantages.poison();
  adv.valid_count.poison();
  compute_advantages(context(), t, options, adv);
  const auto advantages = adv.advantages.to_host(), count = adv.valid_count.to_host();
  EXPECT_EQ(count, expected_count);
  const std::int64_t per_task = std::int64_t(d.rollouts) * d.horizon;
  for (int task = 0; task < d.tasks; ++task) {
    double n = 0, sum = 0, sum_sq = 0;
    for (std::int64_t i = task * per_task; i < (task + 1) * per_task; ++i) {
      ASSERT_TRUE(std::isfinite(advantages[i])) << "sample " << i;
      if (!valid[i]) {
        ASSERT_EQ(advantages[i], 0.f) << "sample " << i;
        continue;
      }
      n += 1;
      sum += advantages[i];
      sum_sq += double(advantages[i]) * advantages[i];
    }
    if (task == 1) continue;
    EXPECT_NEAR(sum / n, 0.0, 1e-4) << "task " << task;
    EXPECT_NEAR(sum_sq / n, 1.0, 1e-3) << "task " << task;
  }
  if (backend() == Backend::cuda) {  // and the same values as the CPU reference
    Context cpu_context(Backend::cpu);
    Trajectories on_cpu = random_trajectories(Backend::cpu, d, test_seed());
    on_cpu.valid.copy_from_host(valid);
    on_cpu.reward.copy_from_host(reward);
    Advantages cpu_adv(Backend::cpu, d);
    compute_advantages(cpu_context, on_cpu, options, cpu_adv);
    const auto expected = cpu_adv.advantages.to_host();
    for (std::size_t i = 0; i < expected.size(); ++i) {
      ASSERT_NEAR(advantages[i], expected[i], 1e-3 * (1 + std::abs(expected[i]))) << "sample " << i;
    }
  }
}

TEST_P(PolicyBackends, InnerStepMatchesDoubleReference) {
  const RolloutDims d{4, 11, 29, 17, 6};
  Trajectories t = random_trajectories(backend(), d, test_seed());
  const PolicyLayout layout(17, 6, {32, 32});
  auto theta = initial_policy_parameters(layout, test_seed(), 0.8);
  theta[layout.log_std_offset() + 2] = -0.3f;
  Advantages adv(backend(), d);
  compute_advantages(context(), t, {}, adv);
  const auto theta_t = Tensor<float>::from_host(backend(), {layout.parameter_count()}, theta);
  Tensor<float> adapted(backend(), {d.tasks, layout.parameter_count()});
  adapted.poison();
  const double alpha = 0.05;
  inner_step(context(), layout, theta_t, t, adv, alpha, adapted);

  const auto obs = cast<double>(t.obs.to_host()), act = cast<double>(t.act.to_host());
  const auto a = cast<double>(adv.advantages.to_host());
  const auto count = adv.valid_count.to_host();
  const auto th = cast<double>(theta);
  std::vector<double> grad(std::size_t(d.tasks) * layout.parameter_count());
  cpu::weighted_log_prob_gradient(policy_shape(layout), d.tasks, std::int64_t(d.rollouts) * d.horizon, th.data(),
                                  false, obs.data(), act.data(), a.data(), grad.data());
  const auto actual = adapted.to_host();
  double moved = 0;
  for (int task = 0; task < d.tasks; ++task) {
    for (std::int64_t p = 0; p < layout.parameter_count(); ++p) {
      const std::size_t i = task * layout.parameter_count() + p;
      const double expected = th[p] + alpha * grad[i] / count[task];
      moved = std::max(moved, std::abs(expected - th[p]));
      ASSERT_NEAR(actual[i], expected, 1e-5 + 1e-4 * std::abs(expected - th[p])) << "task " << task << " p " << p;
    }
  }
  EXPECT_GT(moved, 1e-3);
}

TEST_P(PolicyBackends, WeightedGradientPerTaskParametersMatchesReference) {
  const PolicyLayout layout(11, 3, {23, 19});
  const int tasks = 3;
  const std::int64_t n = 1300;  // awkward: not a multiple of a warp or of a GEMM tile
  std::vector<float> params;
  for (int t = 0; t < tasks; ++t) {
    auto p = initial_policy_parameters(layout, test_seed() + t, 0.7);
    params.insert(params.end(), p.begin(), p.end());
  }
  const auto obs = random_vector<float>(tasks * n * 11, test_seed(), -2, 2);
  const auto act = random_vector<float>(tasks * n * 3, test_seed() + 1, -2, 2);
  auto weight = random_vector<float>(tasks * n, test_seed() + 2, -1, 1);
  for (std::int64_t i = 0; i < 100; ++i) weight[i] = 0.f;  // a whole warp of zero weights
  const Backend b = backend();
  Tensor<float> grad(b, {tasks, layout.parameter_count()});
  grad.poison();
  weighted_log_prob_gradient(context(), layout, Tensor<float>::from_host(b, {tasks, layout.parameter_count()}, params),
                             Tensor<float>::from_host(b, {tasks, n, 11}, obs), Tensor<float>::from_host(b, {tasks, n, 3}, act),
                             Tensor<float>::from_host(b, {tasks, n}, weight), grad);
  std::vector<double> expected(grad.numel());
  const auto p = cast<double>(params), o = cast<double>(obs), a = cast<double>(act), w = cast<double>(weight);
  cpu::weighted_log_prob_gradient(policy_shape(layout), tasks, n, p.data(), true, o.data(), a.data(), w.data(),
                                  expected.data());
  expect_close(grad.to_host(), expected, 1e-3, "gradient");
}

TEST_P(PolicyBackends, KlBetweenParameterVectorsMatchesReference) {
  const PolicyLayout layout(11, 3, {23, 19});
  const int tasks = 2;
  const std::int64_t n = 301;
  const auto old_params = initial_policy_parameters(layout, test_seed(), 0.7);
  std::vector<float> new_params;
  for (int t = 0; t < tasks; ++t) {
    auto p = old_params;
    for (std::size_t i = 0; i < p.size(); ++i) p[i] += 0.05f * std::sin(float(i * (t + 1)));
    new_params.insert(new_params.end(), p.begin(), p.end());
  }
  const auto obs = random_vector<float>(tasks * n * 11, test_seed() + 1, -2, 2);
  const Backend b = backend();
  Tensor<float> out(b, {tasks, n});
  out.poison();
  policy_kl(context(), layout, Tensor<float>::from_host(b, {layout.parameter_count()}, old_params),
            Tensor<float>::from_host(b, {tasks, layout.parameter_count()}, new_params),
            Tensor<float>::from_host(b, {tasks, n, 11}, obs), out);
  std::vector<double> expected(out.numel());
  const auto po = cast<double>(old_params), pn = cast<double>(new_params), o = cast<double>(obs);
  cpu::kl_divergences(policy_shape(layout), tasks, n, po.data(), false, pn.data(), true, o.data(), expected.data());
  expect_close(out.to_host(), expected, 1e-3, "kl");
  for (double kl : expected) EXPECT_GT(kl, 0.0);
}

// mbmpo.Policy.predict's operation: the clipped mean, and a sample with Philox noise, on the
// backend against the per-sample reference in double; 1,037 rows (no tile's multiple), one log-std
// below its floor, outputs NaN-poisoned.
TEST_P(PolicyBackends, ActionsMatchThePerSampleDoubleReference) {
  const PolicyLayout layout(13, 5, {37, 29});
  const std::int64_t n = 1037, P = layout.parameter_count();
  auto params = initial_policy_parameters(layout, test_seed(), 0.6);
  params[layout.log_std_offset() + 1] = -20.f;  // acts with the floor's std
  const auto obs = random_vector<float>(n * 13, test_seed() + 1, -2, 2);
  const float limit = 0.9f;
  const std::uint64_t noise_seed = test_seed() + 2;
  const Backend b = backend();
  const PolicyShape s = policy_shape(layout);
  const auto p = cast<double>(params), o = cast<double>(obs);
  for (const bool sample : {false, true}) {
    Tensor<float> act(b, {n, 5});
    act.poison();
    policy_actions(context(), layout, Tensor<float>::from_host(b, {P}, params), Tensor<float>::from_host(b, {n, 13}, obs),
                   sample, noise_seed, limit, act);
    std::vector<double> expected(std::size_t(n) * 5);
    int clipped = 0;
    for (std::int64_t r = 0; r < n; ++r) {
      PolicyActivations<double> acts;
      policy_forward(s, p.data(), o.data() + r * 13, acts);
      const double* mean = policy_mean(s, acts);
      for (int j = 0; j < 5; ++j) {
        const double noise = sample ? double(normal_at(noise_seed, std::uint64_t(r), std::uint64_t(j))) : 0.0;
        expected[r * 5 + j] = policy_action(s, p.data(), j, mean[j], noise, double(limit));
        clipped += std::abs(expected[r * 5 + j]) == double(limit);
      }
    }
    expect_close(act.to_host(), expected, 1e-4, sample ? "sampled actions" : "mean actions");
    EXPECT_GT(clipped, 0) << "no action reached the limit: the clip went untested";
  }
}

// A (256, 256) policy on a 45-dimensional observation, 3 tasks of 1,031 samples (no tile's
// multiple): log-probabilities, KL and the weighted gradient on the backend against the double
// reference; on CUDA, the batched forward and sums with wide layers.
TEST_P(PolicyBackends, WidePolicyOperationsMatchDoubleReference) {
  const PolicyLayout layout(45, 8, {256, 256});
  const std::int64_t P = layout.parameter_count();
  const int tasks = 3;
  const std::int64_t n = 1031;
  std::vector<float> params, new_params;
  for (int t = 0; t < tasks; ++t) {
    auto p = initial_policy_parameters(layout, test_seed() + t, 0.7);
    params.insert(params.end(), p.begin(), p.end());
    for (std::size_t i = 0; i < p.size(); ++i) p[i] += 0.02f * std::sin(float(i * (t + 2)));
    new_params.insert(new_params.end(), p.begin(), p.end());
  }
  const auto obs = random_vector<float>(tasks * n * 45, test_seed() + 1, -2, 2);
  const auto act = random_vector<float>(tasks * n * 8, test_seed() + 2, -2, 2);
  const auto weight = random_vector<float>(tasks * n, test_seed() + 3, -1, 1);
  const Backend b = backend();
  const auto params_t = Tensor<float>::from_host(b, {tasks, P}, params);
  const auto new_t = Tensor<float>::from_host(b, {tasks, P}, new_params);
  const auto obs_t = Tensor<float>::from_host(b, {tasks, n, 45}, obs);
  const auto act_t = Tensor<float>::from_host(b, {tasks, n, 8}, act);
  Tensor<float> logp(b, {tasks, n}), kl(b, {tasks, n}), grad(b, {tasks, P});
  for (Tensor<float>* t : {&logp, &kl, &grad}) t->poison();
  policy_log_probs(context(), layout, params_t, obs_t, act_t, logp);
  policy_kl(context(), layout, params_t, new_t, obs_t, kl);
  weighted_log_prob_gradient(context(), layout, params_t, obs_t, act_t, Tensor<float>::from_host(b, {tasks, n}, weight),
                             grad);

  const PolicyShape s = policy_shape(layout);
  const auto p = cast<double>(params), pn = cast<double>(new_params), o = cast<double>(obs), a = cast<double>(act),
             w = cast<double>(weight);
  std::vector<double> expected_logp(tasks * n), expected_kl(tasks * n), expected_grad(tasks * P);
  cpu::log_probs(s, tasks, n, p.data(), true, o.data(), a.data(), expected_logp.data());
  cpu::kl_divergences(s, tasks, n, p.data(), true, pn.data(), true, o.data(), expected_kl.data());
  cpu::weighted_log_prob_gradient(s, tasks, n, p.data(), true, o.data(), a.data(), w.data(), expected_grad.data());
  expect_close(logp.to_host(), expected_logp, 1e-4, "log-probs");
  expect_close(kl.to_host(), expected_kl, 1e-3, "kl");
  expect_close(grad.to_host(), expected_grad, 2e-3, "gradient");
  for (double value : expected_kl) EXPECT_GT(value, 0.0);
}

MBMPO_INSTANTIATE_BACKEND_TESTS(PolicyBackends);

}  // namespace
}  // namespace mbmpo
