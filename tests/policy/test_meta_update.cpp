// The outer meta-update: Hessian-vector and Fisher-vector products and the whole meta-gradient
// against finite differences in double, batched conjugate gradient against dense solves, the
// TRPO step's guarantees, and CPU/CUDA parity of the operators and of one whole update.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <random>
#include <vector>

#include "backend_test.hpp"
#include "host/core/error.hpp"
#include "host/models/dynamics_ensemble.hpp"
#include "host/optim/conjugate_gradient.hpp"
#include "host/policy/advantages.hpp"
#include "host/policy/gaussian_policy.hpp"
#include "host/policy/imagined_rollout.hpp"
#include "host/policy/inner_step.hpp"
#include "host/policy/meta_objective_cpu.hpp"
#include "host/policy/meta_update.hpp"

#ifdef MBMPO_WITH_CUDA
#include <cublas_v2.h>

#include "host/core/cuda_check.hpp"
#include "host/core/cuda_context.hpp"
#include "kernels/policy/policy_ops_cuda.hpp"
#endif

namespace mbmpo {
namespace {

using test::cast;
using test::random_vector;
using test::test_seed;

void print_seed() { std::printf("MBMPO_TEST_SEED=%llu\n", static_cast<unsigned long long>(test_seed())); }

// Parameters of a small policy with log-stds well above the floor.
std::vector<double> random_theta(const PolicyLayout& layout, std::uint64_t seed) {
  auto theta = cast<double>(initial_policy_parameters(layout, seed, 1.0));
  std::mt19937_64 rng(seed + 7);
  std::uniform_real_distribution<double> bias(-0.3, 0.3), log_std(-0.4, 0.3);
  for (const auto& l : layout.layers()) {
    for (int i = 0; i < l.out; ++i) theta[l.b_offset + i] = bias(rng);
  }
  for (int j = 0; j < layout.act_dim(); ++j) theta[layout.log_std_offset() + j] = log_std(rng);
  return theta;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// ---- per-sample products in double ------------------------------------------------------------------

TEST(MetaMath, HessianVectorMatchesFiniteDifferencesOfTheGradient) {
  print_seed();
  const PolicyLayout layout(3, 2, {5, 4});
  const PolicyShape s = policy_shape(layout);
  const int P = s.parameter_count, tasks = 2;
  const std::int64_t n = 9;
  const auto theta = random_theta(layout, test_seed());
  const auto obs = random_vector<double>(tasks * n * 3, test_seed() + 1, -1.5, 1.5);
  const auto act = random_vector<double>(tasks * n * 2, test_seed() + 2, -2, 2);
  auto weight = random_vector<double>(tasks * n, test_seed() + 3, -1, 1);
  weight[4] = 0;  // an ended step
  const auto v = random_vector<double>(tasks * P, test_seed() + 4, -1, 1);
  std::vector<double> hv(tasks * P);
  cpu::log_prob_hessian_vector(s, tasks, n, theta.data(), false, v.data(), obs.data(), act.data(),
                               weight.data(), hv.data());
  const double eps = 1e-5;
  for (int t = 0; t < tasks; ++t) {
    std::vector<double> plus(theta), minus(theta), gp(tasks * P), gm(tasks * P);
    for (int p = 0; p < P; ++p) {
      plus[p] += eps * v[t * P + p];
      minus[p] -= eps * v[t * P + p];
    }
    cpu::weighted_log_prob_gradient(s, tasks, n, plus.data(), false, obs.data(), act.data(), weight.data(), gp.data());
    cpu::weighted_log_prob_gradient(s, tasks, n, minus.data(), false, obs.data(), act.data(), weight.data(), gm.data());
    for (int p = 0; p < P; ++p) {
      const double expected = (gp[t * P + p] - gm[t * P + p]) / (2 * eps);
      ASSERT_NEAR(hv[t * P + p], expected, 1e-6 * (1 + std::abs(expected))) << "task " << t << " p " << p;
    }
  }
  EXPECT_GT(max_abs(hv), 1e-2);
}

TEST(MetaMath, FisherVectorMatchesTheHessianOfTheKl) {
  print_seed();
  const PolicyLayout layout(4, 3, {6});
  const PolicyShape s = policy_shape(layout);
  const int P = s.parameter_count;
  const std::int64_t n = 7;
  const auto theta = random_theta(layout, test_seed());
  const auto obs = random_vector<double>(n * 4, test_seed() + 1, -1.5, 1.5);
  auto weight = random_vector<double>(n, test_seed() + 2, 0.2, 1.0);
  weight[2] = 0;
  const auto v = random_vector<double>(P, test_seed() + 3, -1, 1);
  std::vector<double> fv(P);
  cpu::fisher_vector_product(s, 1, n, theta.data(), false, v.data(), obs.data(), weight.data(), fv.data());
  // e_p . F v = d^2/(da db) sum_n w_n KL(theta || theta + a e_p + b v) at 0, by four points.
  auto kl_sum = [&](const std::vector<double>& other) {
    std::vector<double> kl(n);
    cpu::kl_divergences(s, 1, n, theta.data(), false, other.data(), false, obs.data(), kl.data());
    double sum = 0;
    for (std::int64_t i = 0; i < n; ++i) sum += weight[i] * kl[i];
    return sum;
  };
  const double eps = 1e-4;
  for (int p = 0; p < P; ++p) {
    double value[2][2];
    for (int a = 0; a < 2; ++a) {
      for (int b = 0; b < 2; ++b) {
        std::vector<double> other(theta);
        other[p] += (a ? eps : -eps);
        for (int q = 0; q < P; ++q) other[q] += (b ? eps : -eps) * v[q];
        value[a][b] = kl_sum(other);
      }
    }
    const double expected = (value[1][1] - value[1][0] - value[0][1] + value[0][0]) / (4 * eps * eps);
    ASSERT_NEAR(fv[p], expected, 1e-5 * (1 + std::abs(expected))) << "p " << p;
  }
}

// The CPU ops run the policy as matrix products over a task's samples; the GPU runs the per-sample
// functions of gaussian_policy.cuh. Here those per-sample functions, run on the host in double,
// must give the same sums, so the device's math is checked on machines without a GPU too.
TEST(MetaMath, PerSampleDeviceMathMatchesTheBatchedCpuOps) {
  print_seed();
  const PolicyLayout layout(5, 3, {7, 6});
  const PolicyShape s = policy_shape(layout);
  const int P = s.parameter_count, tasks = 3;
  const std::int64_t n = 11;
  std::vector<double> params;
  for (int t = 0; t < tasks; ++t) {
    const auto theta = random_theta(layout, test_seed() + 10 * t);
    params.insert(params.end(), theta.begin(), theta.end());
  }
  params[P + s.log_std_offset + 1] = -20;  // one log-std below the floor
  const auto obs = random_vector<double>(tasks * n * s.obs_dim, test_seed() + 1, -1.5, 1.5);
  const auto act = random_vector<double>(tasks * n * s.act_dim, test_seed() + 2, -2, 2);
  auto weight = random_vector<double>(tasks * n, test_seed() + 3, -1, 1);
  weight[3] = weight[n + 5] = 0;  // ended steps
  const auto v = random_vector<double>(tasks * P, test_seed() + 4, -1, 1);

  std::vector<double> grad(tasks * P), hv(tasks * P), fv(tasks * P), logp(tasks * n), kl(tasks * n);
  cpu::weighted_log_prob_gradient(s, tasks, n, params.data(), true, obs.data(), act.data(), weight.data(), grad.data());
  cpu::log_prob_hessian_vector(s, tasks, n, params.data(), true, v.data(), obs.data(), act.data(), weight.data(),
                               hv.data());
  cpu::fisher_vector_product(s, tasks, n, params.data(), true, v.data(), obs.data(), weight.data(), fv.data());
  cpu::log_probs(s, tasks, n, params.data(), true, obs.data(), act.data(), logp.data());
  cpu::kl_divergences(s, tasks, n, params.data(), true, params.data() + P, false, obs.data(), kl.data());

  for (int t = 0; t < tasks; ++t) {
    const double* theta = params.data() + t * P;
    const double* vt = v.data() + t * P;
    std::vector<double> g(P, 0.0), h(P, 0.0), f(P, 0.0);
    for (std::int64_t k = 0; k < n; ++k) {
      const std::int64_t i = t * n + k;
      const double* o = obs.data() + i * s.obs_dim;
      const double* a = act.data() + i * s.act_dim;
      PolicyActivations<double> acts, tangent, other;
      policy_forward(s, theta, o, acts);
      policy_forward_tangent(s, theta, vt, o, acts, tangent);
      // (relative: the floored std makes some log-probs and KLs ~1e12)
      const double log_prob = gaussian_log_prob(s, theta, policy_mean(s, acts), a);
      EXPECT_NEAR(logp[i], log_prob, 1e-12 * (1 + std::abs(log_prob))) << "sample " << i;
      policy_forward(s, params.data() + P, o, other);
      const double divergence = gaussian_kl(s, theta, policy_mean(s, acts), params.data() + P, policy_mean(s, other));
      EXPECT_NEAR(kl[i], divergence, 1e-12 * (1 + std::abs(divergence))) << "sample " << i;
      if (weight[i] == 0) continue;
      log_prob_backward(s, theta, o, a, acts, weight[i], [&](int p, double x) { g[p] += x; });
      log_prob_hessian_vector(s, theta, vt, o, a, acts, tangent, weight[i], [&](int p, double x) { h[p] += x; });
      fisher_vector(s, theta, vt, o, acts, tangent, weight[i], [&](int p, double x) { f[p] += x; });
    }
    for (int p = 0; p < P; ++p) {
      ASSERT_NEAR(grad[t * P + p], g[p], 1e-10 * (1 + std::abs(g[p]))) << "gradient, task " << t << " p " << p;
      ASSERT_NEAR(hv[t * P + p], h[p], 1e-10 * (1 + std::abs(h[p]))) << "Hessian-vector, task " << t << " p " << p;
      ASSERT_NEAR(fv[t * P + p], f[p], 1e-10 * (1 + std::abs(f[p]))) << "Fisher-vector, task " << t << " p " << p;
    }
  }
  EXPECT_EQ(grad[P + s.log_std_offset + 1], 0.0) << "no gradient below the log-std floor";
  EXPECT_GT(max_abs(hv), 1e-2);
  EXPECT_GT(max_abs(fv), 1e-2);
}

// The CPU ops give bit-identical results wherever their buffers sit in memory: vectorised code
// that peels unaligned heads would otherwise round differently (FMA in the vector body, separate
// multiply and add in the scalar head) when the heap hands out other addresses, and a resumed
// run would no longer reproduce an uninterrupted one (test_train checks that).
TEST(MetaMath, CpuOpsDoNotDependOnBufferAlignment) {
  for (int act_dim : {1, 3}) {
    const PolicyLayout layout(5, act_dim, {9, 1});  // a width-1 layer too: matrix-vector products
    const PolicyShape s = policy_shape(layout);
    const int P = s.parameter_count, tasks = 2;
    const std::int64_t n = 37;
    const auto params = cast<float>(random_theta(layout, test_seed()));
    const auto obs = random_vector<float>(tasks * n * s.obs_dim, test_seed() + 1, -1.5, 1.5);
    const auto act = random_vector<float>(tasks * n * act_dim, test_seed() + 2, -2, 2);
    const auto weight = random_vector<float>(tasks * n, test_seed() + 3, -1, 1);
    const auto v = random_vector<float>(tasks * P, test_seed() + 4, -1, 1);
    auto run = [&](int shift) {
      test::ShiftedCopy<float> th(params, shift), o(obs, shift), a(act, shift), w(weight, shift), vv(v, shift),
          grad({}, shift, tasks * P), hv({}, shift, tasks * P), fv({}, shift, tasks * P), logp({}, shift, tasks * n),
          kl({}, shift, tasks * n);
      cpu::weighted_log_prob_gradient(s, tasks, n, th.data(), false, o.data(), a.data(), w.data(), grad.data());
      cpu::log_prob_hessian_vector(s, tasks, n, th.data(), false, vv.data(), o.data(), a.data(), w.data(), hv.data());
      cpu::fisher_vector_product(s, tasks, n, th.data(), false, vv.data(), o.data(), w.data(), fv.data());
      cpu::log_probs(s, tasks, n, th.data(), false, o.data(), a.data(), logp.data());
      cpu::kl_divergences(s, tasks, n, th.data(), false, vv.data(), true, o.data(), kl.data());
      std::vector<float> all;
      for (auto* out : {&grad, &hv, &fv}) {
        const auto values = out->values(tasks * P);
        all.insert(all.end(), values.begin(), values.end());
      }
      for (auto* out : {&logp, &kl}) {
        const auto values = out->values(tasks * n);
        all.insert(all.end(), values.begin(), values.end());
      }
      return all;
    };
    const auto expected = run(0);
    for (int shift = 1; shift < 16; ++shift) {
      const auto got = run(shift);
      for (std::size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i], expected[i]) << "act_dim " << act_dim << ", shift " << shift << ", output " << i;
      }
    }
  }
}

// ---- the whole meta-objective in double --------------------------------------------------------------

// Random pre/post samples for T tasks with some ended steps; adapted_old = theta'(theta0) and the
// post log-probs under it, as a sampler would have produced them.
struct DoubleProblem {
  PolicyLayout layout;
  std::vector<double> theta, pre_obs, pre_act, pre_adv, pre_count, post_obs, post_act, post_adv,
      post_valid, post_count, logp_old, adapted;
  MetaProblem<double> m;

  DoubleProblem(int tasks, std::int64_t n_pre, std::int64_t n_post, double alpha, std::uint64_t seed)
      : layout(3, 2, {5, 4}) {
    theta = random_theta(layout, seed);
    const int P = int(layout.parameter_count());
    pre_obs = random_vector<double>(tasks * n_pre * 3, seed + 1, -1.5, 1.5);
    pre_act = random_vector<double>(tasks * n_pre * 2, seed + 2, -2, 2);
    pre_adv = random_vector<double>(tasks * n_pre, seed + 3, -1.5, 1.5);
    post_obs = random_vector<double>(tasks * n_post * 3, seed + 4, -1.5, 1.5);
    post_act = random_vector<double>(tasks * n_post * 2, seed + 5, -2, 2);
    post_adv = random_vector<double>(tasks * n_post, seed + 6, -1.5, 1.5);
    post_valid.assign(tasks * n_post, 1.0);
    pre_count.assign(tasks, double(n_pre));
    post_count.assign(tasks, double(n_post));
    for (int t = 0; t < tasks; ++t) {  // the last two steps of every task ended
      for (std::int64_t i = n_pre - 2; i < n_pre; ++i) pre_adv[t * n_pre + i] = 0;
      for (std::int64_t i = n_post - 2; i < n_post; ++i) post_adv[t * n_post + i] = post_valid[t * n_post + i] = 0;
      pre_count[t] -= 2;
      post_count[t] -= 2;
    }
    m.shape = policy_shape(layout);
    m.tasks = tasks;
    m.alpha = alpha;
    m.pre_per_task = n_pre;
    m.pre_obs = pre_obs.data();
    m.pre_act = pre_act.data();
    m.pre_advantage = pre_adv.data();
    m.pre_count = pre_count.data();
    m.post_per_task = n_post;
    m.post_obs = post_obs.data();
    m.post_act = post_act.data();
    m.post_advantage = post_adv.data();
    m.post_valid = post_valid.data();
    m.post_count = post_count.data();
    m.fisher_weight = post_valid.data();
    m.fisher_count = post_count.data();
    adapted.resize(std::size_t(tasks) * P);
    cpu::adapt_parameters(m, theta.data(), adapted.data());
    logp_old.resize(tasks * n_post);
    cpu::log_probs(m.shape, tasks, n_post, adapted.data(), true, post_obs.data(), post_act.data(), logp_old.data());
    m.post_logp_old = logp_old.data();
  }
  int P() const { return int(layout.parameter_count()); }
};

TEST(MetaMath, MetaGradientMatchesFiniteDifferencesThroughTheInnerStep) {
  print_seed();
  // A large inner step so that the second-order term is far above the tolerance.
  DoubleProblem d(3, 11, 13, 0.1, test_seed());
  const int P = d.P();
  std::vector<double> g(P), g_first(P);
  cpu::meta_gradient(d.m, d.theta.data(), d.adapted.data(), g.data());
  MetaProblem<double> first = d.m;
  first.first_order = true;
  cpu::meta_gradient(first, d.theta.data(), d.adapted.data(), g_first.data());
  // Central differences with Richardson extrapolation: the large inner step makes the third
  // derivative big enough that a plain central difference is off by ~1e-6 at any usable eps.
  auto central = [&](int p, double eps) {
    std::vector<double> plus(d.theta), minus(d.theta);
    plus[p] += eps;
    minus[p] -= eps;
    return (cpu::surrogate_and_kl(d.m, plus.data(), d.adapted.data()).surrogate -
            cpu::surrogate_and_kl(d.m, minus.data(), d.adapted.data()).surrogate) / (2 * eps);
  };
  double first_order_error = 0;
  for (int p = 0; p < P; ++p) {
    const double expected = (4 * central(p, 5e-5) - central(p, 1e-4)) / 3;
    ASSERT_NEAR(g[p], expected, 1e-6 * (1 + std::abs(expected))) << "p " << p;
    first_order_error = std::max(first_order_error, std::abs(g_first[p] - expected));
  }
  // The first-order gradient misses the inner step's Hessian: visibly different here.
  EXPECT_GT(first_order_error, 1e-3);
  // At theta_old the surrogate is the mean advantage and the KL is 0.
  const auto at_old = cpu::surrogate_and_kl(d.m, d.theta.data(), d.adapted.data());
  EXPECT_NEAR(at_old.kl, 0.0, 1e-14);
}

TEST(MetaMath, CurvatureIsTheHessianOfTheKlThroughTheInnerStep) {
  print_seed();
  DoubleProblem d(2, 9, 10, 0.1, test_seed());
  const int P = d.P();
  const auto v = random_vector<double>(P, test_seed() + 11, -1, 1);
  std::vector<double> av(P);
  cpu::curvature_vector(d.m, d.theta.data(), d.adapted.data(), 0.0, v.data(), av.data());
  auto kl = [&](const std::vector<double>& theta) {
    return cpu::surrogate_and_kl(d.m, theta.data(), d.adapted.data()).kl;
  };
  // e_p . A v = d^2 KL / (da db) along e_p and v: four points, Richardson-extrapolated.
  auto mixed = [&](int p, double eps) {
    double value[2][2];
    for (int a = 0; a < 2; ++a) {
      for (int b = 0; b < 2; ++b) {
        std::vector<double> theta(d.theta);
        theta[p] += (a ? eps : -eps);
        for (int q = 0; q < P; ++q) theta[q] += (b ? eps : -eps) * v[q];
        value[a][b] = kl(theta);
      }
    }
    return (value[1][1] - value[1][0] - value[0][1] + value[0][0]) / (4 * eps * eps);
  };
  for (int p = 0; p < P; ++p) {
    const double expected = (4 * mixed(p, 1e-4) - mixed(p, 2e-4)) / 3;
    ASSERT_NEAR(av[p], expected, 2e-5 * (1 + std::abs(expected))) << "p " << p;
  }
  // Damping adds lambda v.
  std::vector<double> damped(P);
  cpu::curvature_vector(d.m, d.theta.data(), d.adapted.data(), 0.25, v.data(), damped.data());
  for (int p = 0; p < P; ++p) EXPECT_NEAR(damped[p], av[p] + 0.25 * v[p], 1e-12);
}

// Task `first`..`first + tasks - 1` of a problem as a problem of their own (one seed).
MetaProblem<double> slice_problem(const MetaProblem<double>& m, int first, int tasks) {
  MetaProblem<double> s = m;
  const std::int64_t pre = std::int64_t(first) * m.pre_per_task, post = std::int64_t(first) * m.post_per_task;
  s.tasks = tasks;
  s.seeds = 1;
  s.pre_obs += pre * m.shape.obs_dim;
  s.pre_act += pre * m.shape.act_dim;
  s.pre_advantage += pre;
  s.pre_count += first;
  s.post_obs += post * m.shape.obs_dim;
  s.post_act += post * m.shape.act_dim;
  s.post_advantage += post;
  s.post_valid += post;
  s.post_count += first;
  s.post_logp_old += post;
  s.fisher_weight += post;
  s.fisher_count += first;
  return s;
}

// With B seeds, every result of seed g is bit for bit that of a one-seed problem holding the
// seed's tasks alone: the adapted parameters, the meta-gradient, the curvature products and the
// surrogate and KL, in double, second and first order.
TEST(MetaMath, SeedsEqualPerSeedProblems) {
  print_seed();
  const int B = 3, per_seed = 2;
  DoubleProblem d(B * per_seed, 9, 10, 0.1, test_seed());
  const int P = d.P();
  std::vector<double> theta;
  for (int g = 0; g < B; ++g) {
    const auto row = random_theta(d.layout, test_seed() + 100 * g);
    theta.insert(theta.end(), row.begin(), row.end());
  }
  MetaProblem<double> m = d.m;
  m.seeds = B;
  // The post-update samples' log-probs under the seeds' own adapted parameters.
  std::vector<double> adapted(std::size_t(B) * per_seed * P), logp_old(d.logp_old.size());
  cpu::adapt_parameters(m, theta.data(), adapted.data());
  cpu::log_probs(m.shape, m.tasks, m.post_per_task, adapted.data(), true, m.post_obs, m.post_act, logp_old.data());
  m.post_logp_old = logp_old.data();
  const auto v = random_vector<double>(B * P, test_seed() + 5, -1, 1);
  std::vector<double> candidate(theta);
  for (std::size_t i = 0; i < candidate.size(); ++i) candidate[i] += 0.01 * v[i];

  for (bool first_order : {false, true}) {
    m.first_order = first_order;
    std::vector<double> grad(B * P), av(B * P);
    cpu::meta_gradient(m, theta.data(), adapted.data(), grad.data());
    cpu::curvature_vector(m, theta.data(), adapted.data(), 1e-3, v.data(), av.data());
    const auto values = cpu::surrogate_and_kl_per_seed(m, candidate.data(), adapted.data());
    ASSERT_EQ(values.size(), std::size_t(B));
    for (int g = 0; g < B; ++g) {
      const MetaProblem<double> one = slice_problem(m, g * per_seed, per_seed);
      const double* theta_g = theta.data() + g * P;
      const double* adapted_g = adapted.data() + std::size_t(g) * per_seed * P;
      std::vector<double> adapted_one(std::size_t(per_seed) * P), grad_one(P), av_one(P);
      cpu::adapt_parameters(one, theta_g, adapted_one.data());
      cpu::meta_gradient(one, theta_g, adapted_g, grad_one.data());
      cpu::curvature_vector(one, theta_g, adapted_g, 1e-3, v.data() + g * P, av_one.data());
      const auto value = cpu::surrogate_and_kl(one, candidate.data() + g * P, adapted_g);
      for (int i = 0; i < per_seed * P; ++i) ASSERT_EQ(adapted[std::size_t(g) * per_seed * P + i], adapted_one[i]);
      for (int p = 0; p < P; ++p) {
        ASSERT_EQ(grad[g * P + p], grad_one[p]) << "seed " << g << " p " << p << " first order " << first_order;
        ASSERT_EQ(av[g * P + p], av_one[p]) << "seed " << g << " p " << p << " first order " << first_order;
      }
      EXPECT_EQ(values[g].surrogate, value.surrogate) << "seed " << g;
      EXPECT_EQ(values[g].kl, value.kl) << "seed " << g;
      EXPECT_GT(value.kl, 0.0);
    }
  }
}

// ---- conjugate gradient ------------------------------------------------------------------------------

// B random SPD matrices (well conditioned), the last right-hand side zero.
struct SpdSystems {
  int B;
  int n;
  std::vector<double> a, b;  // [B][n][n], [B][n]
  SpdSystems(int systems, int size, std::uint64_t seed) : B(systems), n(size) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    for (int s = 0; s < B; ++s) {
      Eigen::MatrixXd q(n, n);
      for (int i = 0; i < n * n; ++i) q.data()[i] = normal(rng);
      const Eigen::MatrixXd m = q * q.transpose() / n + 0.5 * Eigen::MatrixXd::Identity(n, n);
      a.insert(a.end(), m.data(), m.data() + n * n);
      for (int i = 0; i < n; ++i) b.push_back(s + 1 == B ? 0.0 : normal(rng));
    }
  }
  std::vector<double> dense_solution() const {
    std::vector<double> x;
    for (int s = 0; s < B; ++s) {
      const Eigen::Map<const Eigen::MatrixXd> m(a.data() + std::size_t(s) * n * n, n, n);
      const Eigen::Map<const Eigen::VectorXd> rhs(b.data() + std::size_t(s) * n, n);
      const Eigen::VectorXd sol = m.llt().solve(rhs);
      x.insert(x.end(), sol.data(), sol.data() + n);
    }
    return x;
  }
};

TEST(ConjugateGradientMath, SolvesBatchedSpdSystemsInDouble) {
  print_seed();
  const SpdSystems sys(3, 23, test_seed());
  std::function<void(const double*, double*)> apply = [&](const double* p, double* ap) {
    for (int s = 0; s < sys.B; ++s) {
      for (int i = 0; i < sys.n; ++i) {
        double sum = 0;
        for (int k = 0; k < sys.n; ++k) sum += sys.a[(std::size_t(s) * sys.n + k) * sys.n + i] * p[s * sys.n + k];
        ap[s * sys.n + i] = sum;
      }
    }
  };
  std::vector<double> x(sys.B * sys.n, std::nan(""));
  ConjugateGradientOptions options;
  options.iterations = sys.n;  // exact in n steps up to rounding
  options.residual_tolerance = 1e-24;
  const auto report = cpu::conjugate_gradient<double>(sys.B, sys.n, apply, sys.b.data(), x.data(), options);
  const auto expected = sys.dense_solution();
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], expected[i], 1e-9) << i;
  EXPECT_LT(report.residual_norm[0], 1e-9 * report.rhs_norm[0]);
  EXPECT_EQ(report.rhs_norm[2], 0.0);  // the zero system stopped at once
}

class CgBackends : public test::BackendTest {
 protected:
  void SetUp() override {
    test::BackendTest::SetUp();
    print_seed();
  }
};

// The operator p -> A p on the backend: plain loops on the CPU, one strided-batched cuBLAS GEMV
// on CUDA (the matrices are symmetric, so their storage order does not matter).
LinearOperator dense_operator(Context& context, const Tensor<float>& matrices, int B, int n) {
  if (context.backend() == Backend::cpu) {
    return [&matrices, B, n](const float* p, float* ap) {
      const float* a = matrices.data();
      for (int s = 0; s < B; ++s) {
        for (int i = 0; i < n; ++i) {
          float sum = 0;
          for (int k = 0; k < n; ++k) sum += a[(std::size_t(s) * n + k) * n + i] * p[s * n + k];
          ap[s * n + i] = sum;
        }
      }
    };
  }
#ifdef MBMPO_WITH_CUDA
  return [&context, &matrices, B, n](const float* p, float* ap) {
    const float one = 1.f, zero = 0.f;
    MBMPO_CUBLAS_CHECK(cublasSgemvStridedBatched(context.cuda().cublas, CUBLAS_OP_N, n, n, &one,
                                                 matrices.data(), n, std::int64_t(n) * n, p, 1, n,
                                                 &zero, ap, 1, n, B));
  };
#else
  return {};
#endif
}

void check_batched_cg(Context& context, bool cuda_graph) {
  const int B = 4, n = 45;
  const SpdSystems sys(B, n, test_seed());
  const auto matrices = Tensor<float>::from_host(context.backend(), {B, n, n}, cast<float>(sys.a));
  const auto b = Tensor<float>::from_host(context.backend(), {B, n}, cast<float>(sys.b));
  Tensor<float> x(context.backend(), {B, n});
  x.poison();
  ConjugateGradientOptions options;
  options.iterations = 20;
  options.cuda_graph = cuda_graph;
  const auto report = conjugate_gradient(context, dense_operator(context, matrices, B, n), b, x, options);
  const auto expected = sys.dense_solution();
  const auto actual = x.to_host();
  for (std::size_t i = 0; i < actual.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], 2e-4 * (1 + std::abs(expected[i]))) << i;
  }
  ASSERT_EQ(report.residual_norm.size(), std::size_t(B));
  for (int s = 0; s + 1 < B; ++s) EXPECT_LT(report.residual_norm[s], 1e-4 * report.rhs_norm[s]) << s;
  EXPECT_EQ(report.rhs_norm[B - 1], 0.0);
  EXPECT_EQ(report.residual_norm[B - 1], 0.0);
  // The same solve in double by the reference agrees.
  std::vector<double> x_double(B * n);
  std::function<void(const double*, double*)> apply = [&](const double* p, double* ap) {
    for (int s = 0; s < B; ++s)
      for (int i = 0; i < n; ++i) {
        double sum = 0;
        for (int k = 0; k < n; ++k) sum += sys.a[(std::size_t(s) * n + k) * n + i] * p[s * n + k];
        ap[s * n + i] = sum;
      }
  };
  cpu::conjugate_gradient<double>(B, n, apply, sys.b.data(), x_double.data(), options);
  for (std::size_t i = 0; i < actual.size(); ++i) {
    ASSERT_NEAR(actual[i], x_double[i], 2e-4 * (1 + std::abs(x_double[i]))) << i;
  }
}

TEST_P(CgBackends, BatchedSolveMatchesDenseSolve) { check_batched_cg(context(), true); }
TEST_P(CgBackends, BatchedSolveWithoutCudaGraphIsTheSame) { check_batched_cg(context(), false); }

MBMPO_INSTANTIATE_BACKEND_TESTS(CgBackends);

// ---- the meta-update on each backend -----------------------------------------------------------------

// Pre- and post-update imagined samples of a small half_cheetah-shaped problem, made on the CPU
// the way a meta-step makes them: rollouts through fixed random models, advantages, inner step.
struct MetaCase {
  RolloutDims pre_dims{5, 6, 17, 17, 6};
  PolicyLayout layout{17, 6, {13, 11}};
  double alpha = 0.05;
  std::vector<float> theta;
  Trajectories pre, post;
  Advantages pre_adv, post_adv;
  Tensor<float> adapted;
};

MetaCase make_case(std::uint64_t seed, bool zero_advantages = false, int tasks = 5) {
  Context cpu_context(Backend::cpu);
  MetaCase c;
  c.pre_dims.tasks = tasks;
  const RolloutDims& d = c.pre_dims;
  DynamicsEnsembleConfig config;
  config.models = 2;
  config.hidden = {23};
  config.activation = Activation::tanh;
  DynamicsEnsemble models(cpu_context, d.obs_dim, d.act_dim, config, seed);
  c.theta = initial_policy_parameters(c.layout, seed, 0.7);
  const std::int64_t P = c.layout.parameter_count();
  std::vector<float> tiled;
  for (int t = 0; t < d.tasks; ++t) tiled.insert(tiled.end(), c.theta.begin(), c.theta.end());
  const auto params = Tensor<float>::from_host(Backend::cpu, {d.tasks, P}, tiled);
  const auto start = Tensor<float>::from_host(Backend::cpu, {d.tasks, d.rollouts, d.obs_dim},
                                              random_vector<float>(d.tasks * d.rollouts * d.obs_dim, seed + 1, -0.2, 0.2));
  RolloutOptions rollout;
  rollout.seed = seed;
  c.pre = Trajectories(Backend::cpu, d);
  imagined_rollout(cpu_context, TaskId::half_cheetah, models, c.layout, params, start, rollout, c.pre);
  c.pre_adv = Advantages(Backend::cpu, d);
  compute_advantages(cpu_context, c.pre, {}, c.pre_adv);
  const auto theta = Tensor<float>::from_host(Backend::cpu, {P}, c.theta);
  c.adapted = Tensor<float>(Backend::cpu, {d.tasks, P});
  inner_step(cpu_context, c.layout, theta, c.pre, c.pre_adv, c.alpha, c.adapted);
  rollout.draw = 1;
  c.post = Trajectories(Backend::cpu, d);
  imagined_rollout(cpu_context, TaskId::half_cheetah, models, c.layout, c.adapted, start, rollout, c.post);
  c.post_adv = Advantages(Backend::cpu, d);
  compute_advantages(cpu_context, c.post, {}, c.post_adv);
  if (zero_advantages) c.post_adv.advantages.fill_zero();
  return c;
}

template <class T>
Tensor<T> on(Backend backend, const Tensor<T>& host) {
  Tensor<T> copy(backend, host.shape());
  copy.copy_from(host);
  return copy;
}
Trajectories on(Backend backend, const Trajectories& t) {
  Trajectories copy(backend, t.dims);
  copy.obs.copy_from(t.obs);
  copy.act.copy_from(t.act);
  copy.reward.copy_from(t.reward);
  copy.valid.copy_from(t.valid);
  copy.logp.copy_from(t.logp);
  return copy;
}
Advantages on(Backend backend, const Advantages& a, const RolloutDims& d) {
  Advantages copy(backend, d);
  copy.advantages.copy_from(a.advantages);
  copy.returns.copy_from(a.returns);
  copy.valid_count.copy_from(a.valid_count);
  copy.baseline.copy_from(a.baseline);
  return copy;
}

// The case's samples on one backend.
struct OnBackend {
  Trajectories pre, post;
  Advantages pre_adv, post_adv;
  Tensor<float> adapted, theta;
  OnBackend(Backend b, const MetaCase& c)
      : pre(on(b, c.pre)),
        post(on(b, c.post)),
        pre_adv(on(b, c.pre_adv, c.pre_dims)),
        post_adv(on(b, c.post_adv, c.pre_dims)),
        adapted(on(b, c.adapted)),
        theta(Tensor<float>::from_host(b, {std::int64_t(c.theta.size())}, c.theta)) {}
};

class MetaBackends : public test::BackendTest {
 protected:
  void SetUp() override {
    test::BackendTest::SetUp();
    print_seed();
  }
};

// The mean over tasks of per-task means over valid post-update states, recomputed from the
// public batched operations (not the meta-objective's own code).
struct Recomputed {
  double surrogate = 0, kl = 0;
};
Recomputed recompute(Context& context, const MetaCase& c, const OnBackend& s, const Tensor<float>& theta) {
  const RolloutDims& d = c.pre_dims;
  const std::int64_t P = c.layout.parameter_count(), N = std::int64_t(d.rollouts) * d.horizon;
  Tensor<float> adapted(context.backend(), {d.tasks, P}), logp(context.backend(), {d.tasks, N}),
      logp_old(context.backend(), {d.tasks, N}), kl(context.backend(), {d.tasks, N});
  inner_step(context, c.layout, theta, s.pre, s.pre_adv, c.alpha, adapted);
  policy_log_probs(context, c.layout, adapted, s.post.obs_by_task(), s.post.act_by_task(), logp);
  policy_log_probs(context, c.layout, s.adapted, s.post.obs_by_task(), s.post.act_by_task(), logp_old);
  policy_kl(context, c.layout, s.adapted, adapted, s.post.obs_by_task(), kl);
  const auto lp = logp.to_host(), lo = logp_old.to_host(), k = kl.to_host(), a = c.post_adv.advantages.to_host(),
             valid = c.post.valid.to_host(), count = c.post_adv.valid_count.to_host();
  Recomputed r;
  for (int t = 0; t < d.tasks; ++t) {
    double surrogate = 0, divergence = 0;
    for (std::int64_t n = 0; n < N; ++n) {
      const std::int64_t i = t * N + n;
      if (!valid[i]) continue;
      surrogate += a[i] * std::exp(double(lp[i]) - lo[i]);
      divergence += k[i];
    }
    r.surrogate += surrogate / count[t] / d.tasks;
    r.kl += divergence / count[t] / d.tasks;
  }
  return r;
}

// One meta-update of the case's samples from theta_0 (the case's own inner step size).
MetaUpdateReport update(Context& context, const MetaCase& c, const OnBackend& s, MetaUpdateOptions options,
                        Tensor<float>& theta) {
  options.inner_lr = c.alpha;
  theta = on(context.backend(), s.theta);
  return meta_update(context, c.layout, theta, s.adapted, s.pre, s.pre_adv, s.post, s.post_adv, options);
}

TEST_P(MetaBackends, StepStaysInTheTrustRegionAndImprovesTheSurrogate) {
  const MetaCase c = make_case(test_seed());
  const OnBackend s(backend(), c);
  const MetaUpdateOptions options;
  Tensor<float> theta;
  const MetaUpdateReport report = update(context(), c, s, options, theta);
  ASSERT_TRUE(report.accepted);
  EXPECT_GT(report.gradient_norm, 0);
  EXPECT_GT(report.surrogate_after, report.surrogate_before);
  EXPECT_LE(report.kl, options.max_kl);
  EXPECT_GT(report.kl, 0.05 * options.max_kl);  // a real step, not a tiny one
  EXPECT_TRUE(std::isfinite(report.cg_residual));
  EXPECT_GE(report.backtracks, 1);
  EXPECT_NEAR(report.step_fraction, std::pow(0.8, report.backtracks - 1), 1e-12);
  // The values reported are those of the new theta, recomputed independently.
  const Recomputed before = recompute(context(), c, s, s.theta), after = recompute(context(), c, s, theta);
  EXPECT_NEAR(before.surrogate, report.surrogate_before, 1e-5);
  EXPECT_NEAR(before.kl, 0.0, 1e-6);
  EXPECT_NEAR(after.surrogate, report.surrogate_after, 1e-5);
  EXPECT_NEAR(after.kl, report.kl, 1e-3 * options.max_kl);
  EXPECT_LE(after.kl, options.max_kl * 1.001);
}

TEST_P(MetaBackends, FirstOrderAndSubsampledFisherAlsoStayInTheTrustRegion) {
  const MetaCase c = make_case(test_seed());
  const OnBackend s(backend(), c);
  MetaUpdateOptions options;
  options.first_order = true;
  options.fisher_subsample = 0.5;
  options.seed = test_seed();
  Tensor<float> theta;
  const MetaUpdateReport report = update(context(), c, s, options, theta);
  if (report.accepted) {
    EXPECT_GT(report.surrogate_after, report.surrogate_before);
    EXPECT_LE(recompute(context(), c, s, theta).kl, options.max_kl * 1.001);
  } else {
    EXPECT_EQ(theta.to_host(), c.theta);
  }
}

TEST_P(MetaBackends, ZeroGradientKeepsTheta) {
  const MetaCase c = make_case(test_seed(), true);
  const OnBackend s(backend(), c);
  Tensor<float> theta;
  const MetaUpdateReport report = update(context(), c, s, {}, theta);
  EXPECT_FALSE(report.accepted);
  EXPECT_EQ(report.step_fraction, 0.0);
  EXPECT_EQ(report.surrogate_after, report.surrogate_before);
  EXPECT_EQ(theta.to_host(), c.theta);
}

TEST_P(MetaBackends, OperatorsMatchTheDoubleReference) {
  const MetaCase c = make_case(test_seed());
  const OnBackend s(backend(), c);
  MetaUpdateOptions options;
  options.inner_lr = c.alpha;
  MetaObjective objective(context(), c.layout, s.theta, s.adapted, s.pre, s.pre_adv, s.post, s.post_adv, options);
  const std::int64_t P = c.layout.parameter_count();
  // The reference in double on the same (float) samples.
  const RolloutDims& d = c.pre_dims;
  const auto pre_obs = cast<double>(c.pre.obs.to_host()), pre_act = cast<double>(c.pre.act.to_host()),
             pre_adv = cast<double>(c.pre_adv.advantages.to_host()), pre_count = cast<double>(c.pre_adv.valid_count.to_host()),
             post_obs = cast<double>(c.post.obs.to_host()), post_act = cast<double>(c.post.act.to_host()),
             post_adv = cast<double>(c.post_adv.advantages.to_host()), post_valid = cast<double>(c.post.valid.to_host()),
             post_count = cast<double>(c.post_adv.valid_count.to_host()), theta = cast<double>(c.theta),
             adapted = cast<double>(c.adapted.to_host());
  MetaProblem<double> m;
  m.shape = policy_shape(c.layout);
  m.tasks = d.tasks;
  m.alpha = c.alpha;
  m.pre_per_task = m.post_per_task = std::int64_t(d.rollouts) * d.horizon;
  m.pre_obs = pre_obs.data();
  m.pre_act = pre_act.data();
  m.pre_advantage = pre_adv.data();
  m.pre_count = pre_count.data();
  m.post_obs = post_obs.data();
  m.post_act = post_act.data();
  m.post_advantage = post_adv.data();
  m.post_valid = m.fisher_weight = post_valid.data();
  m.post_count = m.fisher_count = post_count.data();

  Tensor<float> g(backend(), {P});
  g.poison();
  objective.gradient(g);
  std::vector<double> g_ref(P);
  cpu::meta_gradient(m, theta.data(), adapted.data(), g_ref.data());
  const auto g_actual = g.to_host();
  const double g_scale = max_abs(g_ref);
  for (std::int64_t p = 0; p < P; ++p) ASSERT_NEAR(g_actual[p], g_ref[p], 1e-4 * g_scale) << "gradient p " << p;

  const auto v_host = random_vector<float>(P, test_seed() + 5, -1, 1);
  const auto v = Tensor<float>::from_host(backend(), {P}, v_host);
  Tensor<float> av(backend(), {P});
  av.poison();
  objective.curvature(v, av);
  std::vector<double> av_ref(P);
  cpu::curvature_vector(m, theta.data(), adapted.data(), options.damping, cast<double>(v_host).data(), av_ref.data());
  const auto av_actual = av.to_host();
  const double av_scale = max_abs(av_ref);
  for (std::int64_t p = 0; p < P; ++p) ASSERT_NEAR(av_actual[p], av_ref[p], 1e-4 * av_scale) << "A v p " << p;
}

// The sample sets of the Jacobian and Fisher products alone (pre and post share the states).
template <class T>
MetaProblem<T> curvature_problem(const PolicyLayout& layout, int tasks, float alpha, std::int64_t n,
                                 const std::vector<T>& obs, const std::vector<T>& act,
                                 const std::vector<T>& advantage, const std::vector<T>& count,
                                 const std::vector<T>& fisher_weight, const std::vector<T>& fisher_count) {
  MetaProblem<T> m;
  m.shape = policy_shape(layout);
  m.tasks = tasks;
  m.alpha = T(alpha);
  m.pre_per_task = m.post_per_task = n;
  m.pre_obs = m.post_obs = obs.data();
  m.pre_act = act.data();
  m.pre_advantage = advantage.data();
  m.pre_count = count.data();
  m.fisher_weight = fisher_weight.data();
  m.fisher_count = fisher_count.data();
  return m;
}

// The inner step's Jacobian products J_t v_t and the Fisher products F_t u_t on their own, over
// more samples per task than one chunk of the GPU's batched sums (16,384), with a floored
// log-std, zero weights and per-task adapted parameters, against the double reference.
TEST_P(MetaBackends, CurvatureProductsOverSeveralChunksMatchTheDoubleReference) {
  const PolicyLayout layout(11, 3, {23, 19});
  const int tasks = 2, P = int(layout.parameter_count());
  const std::int64_t n = 16384 + 517;
  auto theta = initial_policy_parameters(layout, test_seed(), 0.7);
  theta[layout.log_std_offset() + 1] = -20.f;  // below the floor: no gradient, no tangent
  std::vector<float> adapted;
  for (int t = 0; t < tasks; ++t) {
    for (int p = 0; p < P; ++p) adapted.push_back(theta[p] + 0.03f * std::sin(float(p * (t + 2))));
  }
  const auto obs = random_vector<float>(tasks * n * 11, test_seed() + 1, -2, 2);
  const auto act = random_vector<float>(tasks * n * 3, test_seed() + 2, -2, 2);
  auto advantage = random_vector<float>(tasks * n, test_seed() + 3, -1, 1);
  for (std::int64_t i = 0; i < 300; ++i) advantage[i] = 0.f;  // a stretch of ended steps
  auto fisher_weight = random_vector<float>(tasks * n, test_seed() + 4, 0, 1);
  std::vector<float> count(tasks, float(n)), fisher_count(tasks, 0.f);
  for (std::int64_t i = 0; i < tasks * n; ++i) {
    fisher_weight[i] = fisher_weight[i] < 0.7f ? 1.f : 0.f;
    fisher_count[i / n] += fisher_weight[i];
  }
  const auto v = random_vector<float>(tasks * P, test_seed() + 5, -1, 1);
  const float alpha = 0.05f;

  // The double reference.
  const auto o = cast<double>(obs), a = cast<double>(act), adv = cast<double>(advantage),
             fw = cast<double>(fisher_weight), c = cast<double>(count), fc = cast<double>(fisher_count),
             th = cast<double>(theta), ad = cast<double>(adapted), vd = cast<double>(v);
  const MetaProblem<double> m = curvature_problem(layout, tasks, alpha, n, o, a, adv, c, fw, fc);
  std::vector<double> jv_ref(tasks * P), fu_ref(tasks * P);
  cpu::jacobian_vector(m, th.data(), vd.data(), jv_ref.data());
  cpu::fisher_vector(m, ad.data(), vd.data(), fu_ref.data());

  std::vector<float> jv, fu;
  if (backend() == Backend::cpu) {
    const MetaProblem<float> mf =
        curvature_problem(layout, tasks, alpha, n, obs, act, advantage, count, fisher_weight, fisher_count);
    jv.assign(tasks * P, std::nanf(""));
    fu.assign(tasks * P, std::nanf(""));
    cpu::jacobian_vector(mf, theta.data(), v.data(), jv.data());
    cpu::fisher_vector(mf, adapted.data(), v.data(), fu.data());
  } else {
#ifdef MBMPO_WITH_CUDA
    const Backend b = Backend::cuda;
    const auto d_theta = Tensor<float>::from_host(b, {P}, theta);
    const auto d_adapted = Tensor<float>::from_host(b, {tasks, P}, adapted);
    const auto d_obs = Tensor<float>::from_host(b, {tasks, n, 11}, obs);
    const auto d_act = Tensor<float>::from_host(b, {tasks, n, 3}, act);
    const auto d_adv = Tensor<float>::from_host(b, {tasks, n}, advantage);
    const auto d_fw = Tensor<float>::from_host(b, {tasks, n}, fisher_weight);
    const auto d_count = Tensor<float>::from_host(b, {tasks}, count);
    const auto d_fc = Tensor<float>::from_host(b, {tasks}, fisher_count);
    const auto d_v = Tensor<float>::from_host(b, {tasks, P}, v);
    Tensor<float> d_jv(b, {tasks, P}), d_fu(b, {tasks, P});
    d_jv.poison();
    d_fu.poison();
    CudaResources& cuda = context().cuda();
    cuda::jacobian_vector(cuda, m.shape, tasks, 1, n, d_theta.data(), false, d_v.data(), d_obs.data(), d_act.data(),
                          d_adv.data(), d_count.data(), alpha, d_jv.data());
    cuda::fisher_vector_product(cuda, m.shape, tasks, 1, n, d_adapted.data(), d_v.data(), d_obs.data(), d_fw.data(),
                                d_fc.data(), d_fu.data());
    jv = d_jv.to_host();
    fu = d_fu.to_host();
#endif
  }
  const double jv_scale = max_abs(jv_ref), fu_scale = max_abs(fu_ref);
  for (int i = 0; i < tasks * P; ++i) {
    ASSERT_NEAR(jv[i], jv_ref[i], 2e-4 * jv_scale) << "J v [" << i / P << "][" << i % P << "]";
    ASSERT_NEAR(fu[i], fu_ref[i], 2e-4 * fu_scale) << "F u [" << i / P << "][" << i % P << "]";
  }
  // The floored log-std: J v keeps v there, F u gets nothing.
  const int floored = int(layout.log_std_offset()) + 1;
  EXPECT_EQ(fu[floored], 0.f);
  EXPECT_NEAR(jv[floored], v[floored], 1e-6);
}

TEST_P(MetaBackends, WholeUpdateMatchesTheCpuBackend) {
  if (backend() == Backend::cpu) GTEST_SKIP() << "compares the CUDA backend with the CPU one";
  const MetaCase c = make_case(test_seed());
  const MetaUpdateOptions options;
  Context cpu_context(Backend::cpu);
  const OnBackend on_cpu(Backend::cpu, c), on_gpu(backend(), c);
  Tensor<float> theta_cpu, theta_gpu;
  const auto r_cpu = update(cpu_context, c, on_cpu, options, theta_cpu);
  const auto r_gpu = update(context(), c, on_gpu, options, theta_gpu);
  ASSERT_EQ(r_cpu.accepted, r_gpu.accepted);
  EXPECT_EQ(r_cpu.backtracks, r_gpu.backtracks);
  EXPECT_NEAR(r_gpu.surrogate_before, r_cpu.surrogate_before, 1e-5);
  EXPECT_NEAR(r_gpu.surrogate_after, r_cpu.surrogate_after, 1e-4);
  EXPECT_NEAR(r_gpu.kl, r_cpu.kl, 1e-3 * options.max_kl);
  EXPECT_NEAR(r_gpu.gradient_norm, r_cpu.gradient_norm, 1e-4 * r_cpu.gradient_norm);
  const auto a = theta_cpu.to_host(), b = theta_gpu.to_host();
  double step = 0;
  for (std::size_t p = 0; p < a.size(); ++p) step = std::max(step, std::abs(double(a[p]) - c.theta[p]));
  for (std::size_t p = 0; p < a.size(); ++p) ASSERT_NEAR(b[p], a[p], 1e-3 * step + 1e-6) << "p " << p;
}

// B cases of `per_seed` tasks each stacked along the task axis, on the CPU: one problem of B
// seeds; theta [B * P] holds the seeds' meta-policies.
MetaCase stack_cases(const std::vector<MetaCase>& cases) {
  MetaCase all;
  all.pre_dims = cases[0].pre_dims;
  all.pre_dims.tasks = 0;
  for (const MetaCase& c : cases) {
    all.pre_dims.tasks += c.pre_dims.tasks;
    all.theta.insert(all.theta.end(), c.theta.begin(), c.theta.end());
  }
  auto stack = [&](auto member) {
    using Element = typename decltype(member(cases[0]).to_host())::value_type;
    std::vector<Element> values;
    std::vector<std::int64_t> shape;
    for (const MetaCase& c : cases) {
      const auto& tensor = member(c);
      const auto host = tensor.to_host();
      values.insert(values.end(), host.begin(), host.end());
      if (shape.empty()) {
        shape.assign(tensor.shape().begin(), tensor.shape().end());
        shape[0] = 0;
      }
      shape[0] += tensor.dim(0);
    }
    return Tensor<Element>::from_host(Backend::cpu, Shape(shape.begin(), shape.end()), values);
  };
  auto stack_trajectories = [&](auto which) {
    Trajectories t(Backend::cpu, all.pre_dims);
    t.obs = stack([&](const MetaCase& c) -> const Tensor<float>& { return which(c).obs; });
    t.act = stack([&](const MetaCase& c) -> const Tensor<float>& { return which(c).act; });
    t.reward = stack([&](const MetaCase& c) -> const Tensor<float>& { return which(c).reward; });
    t.valid = stack([&](const MetaCase& c) -> const Tensor<float>& { return which(c).valid; });
    t.logp = stack([&](const MetaCase& c) -> const Tensor<float>& { return which(c).logp; });
    return t;
  };
  auto stack_advantages = [&](auto which) {
    Advantages a(Backend::cpu, all.pre_dims);
    a.advantages = stack([&](const MetaCase& c) -> const Tensor<float>& { return which(c).advantages; });
    a.returns = stack([&](const MetaCase& c) -> const Tensor<float>& { return which(c).returns; });
    a.valid_count = stack([&](const MetaCase& c) -> const Tensor<float>& { return which(c).valid_count; });
    a.baseline = stack([&](const MetaCase& c) -> const Tensor<double>& { return which(c).baseline; });
    return a;
  };
  all.pre = stack_trajectories([](const MetaCase& c) -> const Trajectories& { return c.pre; });
  all.post = stack_trajectories([](const MetaCase& c) -> const Trajectories& { return c.post; });
  all.pre_adv = stack_advantages([](const MetaCase& c) -> const Advantages& { return c.pre_adv; });
  all.post_adv = stack_advantages([](const MetaCase& c) -> const Advantages& { return c.post_adv; });
  all.adapted = stack([](const MetaCase& c) -> const Tensor<float>& { return c.adapted; });
  return all;
}

// Bit for bit, on both backends: the property `mbmpo train --seeds` promises. (On CUDA it rests on
// cuBLAS choosing the same kernels for a batch of B*T tasks as for T; a GPU run checks it.)
void expect_same_values(const std::vector<float>& together, const std::vector<float>& alone, const std::string& what) {
  ASSERT_EQ(together.size(), alone.size()) << what;
  for (std::size_t i = 0; i < alone.size(); ++i) {
    ASSERT_EQ(std::memcmp(&together[i], &alone[i], sizeof(float)), 0)
        << what << " [" << i << "]: " << together[i] << " together, " << alone[i] << " alone";
  }
}

void expect_same_report(const MetaUpdateReport& together, const MetaUpdateReport& alone, const std::string& what) {
  EXPECT_EQ(together.accepted, alone.accepted) << what;
  EXPECT_EQ(together.backtracks, alone.backtracks) << what;
  EXPECT_EQ(together.step_fraction, alone.step_fraction) << what;
  EXPECT_EQ(together.surrogate_before, alone.surrogate_before) << what;
  EXPECT_EQ(together.surrogate_after, alone.surrogate_after) << what;
  EXPECT_EQ(together.kl, alone.kl) << what;
  EXPECT_EQ(together.gradient_norm, alone.gradient_norm) << what;
  EXPECT_EQ(together.cg_residual, alone.cg_residual) << what;
  EXPECT_EQ(together.step_scale, alone.step_scale) << what;
}

// B seeds' meta-updates through one together inner step and one together MetaObjective equal B
// separate ones: adapted parameters, gradient, curvature products, surrogate/KL, new theta and every
// report field. Seeds of 3 tasks with different meta-policies; the middle seed has zero
// advantages (a zero gradient: it never accepts while the others search).
TEST_P(MetaBackends, SeedsEqualSeparateUpdates) {
  const int B = 3, per_seed = 3;
  std::vector<MetaCase> cases;
  for (int g = 0; g < B; ++g) cases.push_back(make_case(test_seed() + 1000 * g, g == 1, per_seed));
  const MetaCase all = stack_cases(cases);
  const double alpha = all.alpha;
  const std::int64_t P = all.layout.parameter_count();
  const int T = B * per_seed;
  const OnBackend s_all(backend(), all);
  const auto theta_all = Tensor<float>::from_host(backend(), {B, P}, all.theta);
  const std::vector<std::uint64_t> seeds = {test_seed() + 11, test_seed() + 22, test_seed() + 33};
  const auto v_host = random_vector<float>(B * P, test_seed() + 5, -1, 1);
  const auto v_all = Tensor<float>::from_host(backend(), {B, P}, v_host);

  // The together inner step against one per seed.
  Tensor<float> adapted_all(backend(), {T, P});
  adapted_all.poison();
  inner_step(context(), all.layout, theta_all, s_all.pre, s_all.pre_adv, alpha, adapted_all);
  const auto adapted_all_host = adapted_all.to_host();
  // And the seeds must split the tasks evenly.
  Tensor<float> two_rows(backend(), {2, P}), bad_adapted(backend(), {T, P});
  EXPECT_THROW(inner_step(context(), all.layout, two_rows, s_all.pre, s_all.pre_adv, alpha, bad_adapted), Error);

  struct Variant {
    double fisher_subsample;
    bool first_order;
  };
  int accepted_elsewhere = 0;
  for (const Variant variant : {Variant{1.0, false}, Variant{0.6, false}, Variant{0.6, true}}) {
    const std::string name = "fisher_subsample " + std::to_string(variant.fisher_subsample) +
                             (variant.first_order ? ", first order" : "");
    MetaUpdateOptions options;
    options.inner_lr = alpha;
    options.fisher_subsample = variant.fisher_subsample;
    options.first_order = variant.first_order;
    options.draw = 3;
    MetaUpdateOptions together_options = options;
    together_options.seeds = seeds;
    MetaObjective together(context(), all.layout, theta_all, s_all.adapted, s_all.pre, s_all.pre_adv, s_all.post,
                          s_all.post_adv, together_options);
    ASSERT_EQ(together.seeds(), B);
    EXPECT_THROW(together.update(Tensor<float>(backend(), {B, P})), Error) << "update is for one seed";
    Tensor<float> gradient(backend(), {B, P}), av(backend(), {B, P});
    gradient.poison();
    av.poison();
    together.gradient(gradient);
    together.curvature(v_all, av);
    const auto values = together.evaluate_per_seed(theta_all);
    Tensor<float> theta(backend(), {B, P});
    theta.poison();
    const std::vector<MetaUpdateReport> reports = together.update_per_seed(theta);
    ASSERT_EQ(reports.size(), std::size_t(B));
    const auto gradient_host = gradient.to_host(), av_host = av.to_host(), theta_host = theta.to_host();

    for (int g = 0; g < B; ++g) {
      const std::string what = name + ", seed " + std::to_string(g);
      auto rows = [&](const std::vector<float>& v, std::int64_t first, std::int64_t count) {
        return std::vector<float>(v.begin() + first * P, v.begin() + (first + count) * P);
      };
      const MetaCase& c = cases[g];
      const OnBackend s(backend(), c);
      Tensor<float> adapted(backend(), {per_seed, P});
      inner_step(context(), c.layout, s.theta, s.pre, s.pre_adv, alpha, adapted);
      expect_same_values(rows(adapted_all_host, g * per_seed, per_seed), adapted.to_host(),
                         what + ", inner step");

      MetaUpdateOptions alone_options = options;
      alone_options.seed = seeds[g];
      MetaObjective alone(context(), c.layout, s.theta, s.adapted, s.pre, s.pre_adv, s.post, s.post_adv,
                          alone_options);
      EXPECT_EQ(alone.seeds(), 1);
      Tensor<float> gradient_one(backend(), {P}), av_one(backend(), {P});
      alone.gradient(gradient_one);
      const auto v_one = Tensor<float>::from_host(backend(), {P}, rows(v_host, g, 1));
      alone.curvature(v_one, av_one);
      expect_same_values(rows(gradient_host, g, 1), gradient_one.to_host(), what + ", gradient");
      expect_same_values(rows(av_host, g, 1), av_one.to_host(), what + ", curvature");
      const cpu::SurrogateAndKl value = alone.evaluate(s.theta);
      EXPECT_EQ(values[g].surrogate, value.surrogate) << what;
      EXPECT_EQ(values[g].kl, value.kl) << what;
      Tensor<float> theta_one(backend(), {P});
      theta_one.poison();
      const MetaUpdateReport report = alone.update(theta_one);
      expect_same_report(reports[g], report, what);
      expect_same_values(rows(theta_host, g, 1), theta_one.to_host(), what + ", new theta");
      if (g == 1) {
        EXPECT_FALSE(report.accepted) << what;
        EXPECT_EQ(report.gradient_norm, 0.0) << what;
        EXPECT_EQ(report.backtracks, 0) << what;
      } else {
        accepted_elsewhere += report.accepted;
      }
      std::printf("%s: accepted %d after %d candidates\n", what.c_str(), int(report.accepted), report.backtracks);
    }
  }
  EXPECT_GT(accepted_elsewhere, 0) << "no seed took a step: the line searches ran alone in nothing";
}

TEST(MetaUpdateOptions, BadValuesAreNamed) {
  auto expect_bad = [](auto change, const char* name) {
    MetaUpdateOptions o;
    change(o);
    try {
      validate(o);
      ADD_FAILURE() << "accepted bad " << name;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  };
  expect_bad([](MetaUpdateOptions& o) { o.max_kl = 0; }, "max_kl");
  expect_bad([](MetaUpdateOptions& o) { o.backtrack_ratio = 1; }, "backtrack_ratio");
  expect_bad([](MetaUpdateOptions& o) { o.cg_iterations = 0; }, "cg_iterations");
  expect_bad([](MetaUpdateOptions& o) { o.fisher_subsample = 1.5; }, "fisher_subsample");
  expect_bad([](MetaUpdateOptions& o) { o.damping = -1; }, "cg_damping");
  expect_bad([](MetaUpdateOptions& o) { o.max_backtracks = 0; }, "max_backtracks");
  validate(MetaUpdateOptions{});
}

MBMPO_INSTANTIATE_BACKEND_TESTS(MetaBackends);

}  // namespace
}  // namespace mbmpo
