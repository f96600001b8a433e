// The MAML-TRPO meta-objective on the CPU, templated on the scalar so tests run it in double
// (docs/algorithm.md, "3e. The meta-gradient and the TRPO step"). For a meta-policy theta and T tasks:
//
//   theta'_t(theta) = theta + alpha * grad L_in_t(theta),  L_in_t = (1/N_t) sum A log pi_theta(a|s)
//                     over task t's pre-update samples;
//   L(theta)        = (1/T) sum_t (1/N'_t) sum A' exp(log pi_theta'_t(theta)(a'|s') - log pi_old(a'|s'))
//                     over task t's post-update samples (drawn with theta'_t(theta_old));
//   KL(theta)       = (1/T) sum_t mean over valid post-update states of KL(pi_theta'_t(old) || pi_theta'_t(theta)).
//
// At theta = theta_old: grad L = (1/T) sum_t J_t g_t with J_t = I + alpha H_t (H_t the Hessian of
// L_in_t) and g_t the post-update policy gradient; the Hessian of KL is (1/T) sum_t J_t F_t J_t,
// F_t the Fisher of the adapted policy over the post-update states. The CUDA backend implements
// the same contracts (host/policy/meta_update.cpp over kernels/policy/policy_sums.cu and
// policy_ops.cu).
//
// Seeds: the T tasks may split into B equal consecutive blocks (B seeds trained in one process),
// block g = tasks [g T/B, (g+1) T/B) with its own meta-policy theta[g]; theta is then [B][P] and
// every mean over tasks above is over the seed's tasks only. Each seed's results are bit for bit
// those of a B = 1 problem holding its tasks alone: per-task work never depends on other tasks, and
// every per-seed sum runs over its tasks in task order, as the B = 1 code does.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "host/core/error.hpp"
#include "host/policy/policy_ops_cpu.hpp"

namespace mbmpo {

// Every sample set the meta-objective reads, on one backend. Weights are 0 on ended steps.
template <class T>
struct MetaProblem {
  PolicyShape shape;
  int tasks = 0;
  int seeds = 1;            // B: tasks split into B equal blocks, one meta-policy each
  T alpha = T(0);            // inner step size
  bool first_order = false;  // J_t = I
  // Pre-update samples [T][N]: advantages as weights, valid counts [T].
  std::int64_t pre_per_task = 0;
  const T *pre_obs = nullptr, *pre_act = nullptr, *pre_advantage = nullptr, *pre_count = nullptr;
  // Post-update samples [T][N']: advantages, valid mask and counts, the sampling log-probs, and
  // the states the Fisher products use (all valid ones, or a subsample) with their counts.
  std::int64_t post_per_task = 0;
  const T *post_obs = nullptr, *post_act = nullptr, *post_advantage = nullptr;
  const T *post_valid = nullptr, *post_count = nullptr, *post_logp_old = nullptr;
  const T *fisher_weight = nullptr, *fisher_count = nullptr;
};

namespace cpu {

template <class T>
T safe_inverse(T count) { return count > T(0) ? T(1) / count : T(0); }

// Tasks per seed, T / B (checks that B divides T).
template <class T>
int tasks_per_seed(const MetaProblem<T>& m) {
  MBMPO_CHECK(m.seeds >= 1 && m.tasks % m.seeds == 0, "meta-objective: ", m.seeds,
              " seeds do not split ", m.tasks, " tasks evenly");
  return m.tasks / m.seeds;
}

// rows [B][P] tiled to one row per task [T][P]: row g repeated for each of its seed's tasks.
template <class T>
std::vector<T> tile_seeds(const MetaProblem<T>& m, const T* rows) {
  const int P = m.shape.parameter_count, per_seed = tasks_per_seed(m);
  std::vector<T> tiled(std::size_t(m.tasks) * P);
  for (int t = 0; t < m.tasks; ++t) {
    std::copy_n(rows + std::int64_t(t / per_seed) * P, P, tiled.data() + std::int64_t(t) * P);
  }
  return tiled;
}

// The parameters theta [B][P] as the per-task sums take them: one shared row when B = 1, else tiled
// to [T][P] (the CPU ops give the same bits either way, wherever the rows sit).
template <class T>
struct TaskParams {
  TaskParams(const MetaProblem<T>& m, const T* theta) : shared(theta) {
    if (m.seeds != 1) tiled = tile_seeds(m, theta);
    else tasks_per_seed(m);
  }
  const T* data() const { return tiled.empty() ? shared : tiled.data(); }
  bool per_task() const { return !tiled.empty(); }
  const T* row(int t, int P) const { return per_task() ? tiled.data() + std::int64_t(t) * P : shared; }
  const T* shared;
  std::vector<T> tiled;
};

// out[t] = theta[g(t)] + alpha * grad L_in_t(theta[g(t)]): the adapted parameters [T][P].
template <class T>
void adapt_parameters(const MetaProblem<T>& m, const T* theta, T* out) {
  const int P = m.shape.parameter_count;
  const TaskParams<T> params(m, theta);
  weighted_log_prob_gradient(m.shape, m.tasks, m.pre_per_task, params.data(), params.per_task(), m.pre_obs,
                             m.pre_act, m.pre_advantage, out);
  for (int t = 0; t < m.tasks; ++t) {
    const T scale = m.alpha * safe_inverse(m.pre_count[t]);
    const T* row = params.row(t, P);
    for (int p = 0; p < P; ++p) out[t * P + p] = row[p] + scale * out[t * P + p];
  }
}

// out[t] = J_t v[t] = v[t] + alpha H_t v[t] at theta[g(t)] (theta [B][P], vectors [T][P]); v[t]
// itself when first order.
template <class T>
void jacobian_vector(const MetaProblem<T>& m, const T* theta, const T* v, T* out) {
  const std::int64_t size = std::int64_t(m.tasks) * m.shape.parameter_count;
  if (m.first_order) {
    std::copy_n(v, size, out);
    return;
  }
  const TaskParams<T> params(m, theta);
  log_prob_hessian_vector(m.shape, m.tasks, m.pre_per_task, params.data(), params.per_task(), v, m.pre_obs,
                          m.pre_act, m.pre_advantage, out);
  const int P = m.shape.parameter_count;
  for (int t = 0; t < m.tasks; ++t) {
    const T scale = m.alpha * safe_inverse(m.pre_count[t]);
    for (int p = 0; p < P; ++p) out[t * P + p] = v[t * P + p] + scale * out[t * P + p];
  }
}

// out[t] = F_t u[t], the Fisher of pi_adapted[t] averaged over task t's Fisher states.
template <class T>
void fisher_vector(const MetaProblem<T>& m, const T* adapted, const T* u, T* out) {
  fisher_vector_product(m.shape, m.tasks, m.post_per_task, adapted, true, u, m.post_obs,
                        m.fisher_weight, out);
  const int P = m.shape.parameter_count;
  for (int t = 0; t < m.tasks; ++t) {
    const T scale = safe_inverse(m.fisher_count[t]);
    for (int p = 0; p < P; ++p) out[t * P + p] *= scale;
  }
}

// out[g] = (1/Tb) sum_{t in g} rows[t] + damping * v[g]  (rows [T][P], v and out [B][P]; the
// seed's tasks summed in order).
template <class T>
void task_mean_plus(const MetaProblem<T>& m, const T* rows, T damping, const T* v, T* out) {
  const int P = m.shape.parameter_count, per_seed = tasks_per_seed(m);
  for (int g = 0; g < m.seeds; ++g) {
    const T* seed_rows = rows + std::int64_t(g) * per_seed * P;
    for (int p = 0; p < P; ++p) {
      T sum = T(0);
      for (int t = 0; t < per_seed; ++t) sum += seed_rows[t * P + p];
      out[g * P + p] = sum / T(per_seed) + (v ? damping * v[g * P + p] : T(0));
    }
  }
}

// out[g] = A_g v[g] = (1/Tb) sum_{t in g} J_t F_t J_t v[g] + damping v[g], the curvature of seed
// g's KL constraint at theta[g] (theta, v, out [B][P]).
template <class T>
void curvature_vector(const MetaProblem<T>& m, const T* theta, const T* adapted, T damping,
                      const T* v, T* out) {
  std::vector<T> tiled = tile_seeds(m, v), a(tiled.size()), b(tiled.size());
  jacobian_vector(m, theta, tiled.data(), a.data());
  fisher_vector(m, adapted, a.data(), b.data());
  jacobian_vector(m, theta, b.data(), a.data());
  task_mean_plus(m, a.data(), damping, v, out);
}

// out[g] = grad L_g at theta_old[g] = (1/Tb) sum_{t in g} J_t g_t, g_t = (1/N'_t) sum A' grad log
// pi_adapted[t] (theta, out [B][P]).
template <class T>
void meta_gradient(const MetaProblem<T>& m, const T* theta, const T* adapted, T* out) {
  const int P = m.shape.parameter_count;
  std::vector<T> g(std::size_t(m.tasks) * P), jg(g.size());
  weighted_log_prob_gradient(m.shape, m.tasks, m.post_per_task, adapted, true, m.post_obs,
                             m.post_act, m.post_advantage, g.data());
  for (int t = 0; t < m.tasks; ++t) {
    const T scale = safe_inverse(m.post_count[t]);
    for (int p = 0; p < P; ++p) g[t * P + p] *= scale;
  }
  jacobian_vector(m, theta, g.data(), jg.data());
  task_mean_plus(m, jg.data(), T(0), static_cast<const T*>(nullptr), out);
}

struct SurrogateAndKl {
  double surrogate = 0, kl = 0;
};

// Per seed g: L_g(theta[g]) and KL_g(theta[g]) (means over the seed's tasks) against the adapted
// parameters the post-update samples were drawn with; theta [B][P].
template <class T>
std::vector<SurrogateAndKl> surrogate_and_kl_per_seed(const MetaProblem<T>& m, const T* theta, const T* adapted_old) {
  const int P = m.shape.parameter_count, per_seed = tasks_per_seed(m);
  const std::int64_t N = m.post_per_task;
  std::vector<T> adapted(std::size_t(m.tasks) * P), logp(std::size_t(m.tasks) * N), kl(logp.size());
  adapt_parameters(m, theta, adapted.data());
  log_probs(m.shape, m.tasks, N, adapted.data(), true, m.post_obs, m.post_act, logp.data());
  kl_divergences(m.shape, m.tasks, N, adapted_old, true, adapted.data(), true, m.post_obs, kl.data());
  std::vector<SurrogateAndKl> results(std::size_t(m.seeds));
  for (int t = 0; t < m.tasks; ++t) {
    SurrogateAndKl& result = results[std::size_t(t / per_seed)];
    double surrogate = 0, divergence = 0;
    for (std::int64_t n = 0; n < N; ++n) {
      const std::int64_t i = t * N + n;
      if (m.post_advantage[i] != T(0)) {
        surrogate += double(m.post_advantage[i]) * std::exp(double(logp[i]) - double(m.post_logp_old[i]));
      }
      if (m.post_valid[i] != T(0)) divergence += double(kl[i]);
    }
    result.surrogate += surrogate * double(safe_inverse(m.post_count[t]));
    result.kl += divergence * double(safe_inverse(m.post_count[t]));
  }
  for (SurrogateAndKl& result : results) {
    result.surrogate /= per_seed;
    result.kl /= per_seed;
  }
  return results;
}

// L(theta) and KL(theta) of a one-seed problem (theta [P]).
template <class T>
SurrogateAndKl surrogate_and_kl(const MetaProblem<T>& m, const T* theta, const T* adapted_old) {
  MBMPO_CHECK(m.seeds == 1, "surrogate_and_kl: the problem has ", m.seeds,
              " seeds; use surrogate_and_kl_per_seed");
  return surrogate_and_kl_per_seed(m, theta, adapted_old)[0];
}

}  // namespace cpu
}  // namespace mbmpo
