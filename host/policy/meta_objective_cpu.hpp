// The MAML-TRPO meta-objective on the CPU, templated on the scalar so tests run it in double
// (DESIGN.md, "The meta-gradient and the TRPO step"). For a meta-policy theta and T tasks:
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
// the same contracts (kernels/policy/meta_objective.cu).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "host/policy/policy_ops_cpu.hpp"

namespace mbmpo {

// Every sample set the meta-objective reads, on one backend. Weights are 0 on ended steps.
template <class T>
struct MetaProblem {
  PolicyShape shape;
  int tasks = 0;
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

// out[t] = theta + alpha * grad L_in_t(theta): the adapted parameters [T][P].
template <class T>
void adapt_parameters(const MetaProblem<T>& m, const T* theta, T* out) {
  const int P = m.shape.parameter_count;
  weighted_log_prob_gradient(m.shape, m.tasks, m.pre_per_task, theta, false, m.pre_obs, m.pre_act,
                             m.pre_advantage, out);
  for (int t = 0; t < m.tasks; ++t) {
    const T scale = m.alpha * safe_inverse(m.pre_count[t]);
    for (int p = 0; p < P; ++p) out[t * P + p] = theta[p] + scale * out[t * P + p];
  }
}

// out[t] = J_t v[t] = v[t] + alpha H_t v[t] at theta (vectors [T][P]); v[t] itself when first order.
template <class T>
void jacobian_vector(const MetaProblem<T>& m, const T* theta, const T* v, T* out) {
  const std::int64_t size = std::int64_t(m.tasks) * m.shape.parameter_count;
  if (m.first_order) {
    std::copy_n(v, size, out);
    return;
  }
  log_prob_hessian_vector(m.shape, m.tasks, m.pre_per_task, theta, false, v, m.pre_obs, m.pre_act,
                          m.pre_advantage, out);
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

// out = (1/T) sum_t rows[t] + damping * v  (rows [T][P]).
template <class T>
void task_mean_plus(const MetaProblem<T>& m, const T* rows, T damping, const T* v, T* out) {
  const int P = m.shape.parameter_count;
  for (int p = 0; p < P; ++p) {
    T sum = T(0);
    for (int t = 0; t < m.tasks; ++t) sum += rows[t * P + p];
    out[p] = sum / T(m.tasks) + (v ? damping * v[p] : T(0));
  }
}

// out = A v = (1/T) sum_t J_t F_t J_t v + damping v, the curvature of the KL constraint at theta.
template <class T>
void curvature_vector(const MetaProblem<T>& m, const T* theta, const T* adapted, T damping,
                      const T* v, T* out) {
  const int P = m.shape.parameter_count;
  std::vector<T> tiled(std::size_t(m.tasks) * P), a(tiled.size()), b(tiled.size());
  for (int t = 0; t < m.tasks; ++t) std::copy_n(v, P, tiled.data() + std::int64_t(t) * P);
  jacobian_vector(m, theta, tiled.data(), a.data());
  fisher_vector(m, adapted, a.data(), b.data());
  jacobian_vector(m, theta, b.data(), a.data());
  task_mean_plus(m, a.data(), damping, v, out);
}

// out = grad L at theta_old = (1/T) sum_t J_t g_t, g_t = (1/N'_t) sum A' grad log pi_adapted[t].
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

// L(theta) and KL(theta) against the adapted parameters the post-update samples were drawn with.
template <class T>
SurrogateAndKl surrogate_and_kl(const MetaProblem<T>& m, const T* theta, const T* adapted_old) {
  const int P = m.shape.parameter_count;
  const std::int64_t N = m.post_per_task;
  std::vector<T> adapted(std::size_t(m.tasks) * P), logp(std::size_t(m.tasks) * N), kl(logp.size());
  adapt_parameters(m, theta, adapted.data());
  log_probs(m.shape, m.tasks, N, adapted.data(), true, m.post_obs, m.post_act, logp.data());
  kl_divergences(m.shape, m.tasks, N, adapted_old, true, adapted.data(), true, m.post_obs, kl.data());
  SurrogateAndKl result;
  for (int t = 0; t < m.tasks; ++t) {
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
  result.surrogate /= m.tasks;
  result.kl /= m.tasks;
  return result;
}

}  // namespace cpu
}  // namespace mbmpo
