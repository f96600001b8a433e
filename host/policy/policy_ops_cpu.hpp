// CPU reference of the policy-side operations of a meta-step, templated on the scalar so tests run
// it in double; kernels/policy/policy_ops.cu implements the same contracts on the GPU.
//
// Sample layout: T tasks x M rollouts x H steps, row-major [T][M][H][...]; "N" = M*H samples per
// task. valid[t][m][h] is 1 while trajectory (t, m) runs and 0 after it ended.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/core/philox.cuh"
#include "kernels/envs/task_functions.cuh"
#include "host/core/openmp.hpp"
#include "host/core/seed_limit.hpp"
#include "host/policy/policy_batch_cpu.hpp"
#include "kernels/policy/gaussian_policy.cuh"


namespace mbmpo {

struct RolloutDims {
  int tasks = 0, rollouts = 0, horizon = 0, obs_dim = 0, act_dim = 0;
  // The tasks are this many seeds' equal consecutive blocks (`mbmpo train --seeds`); on CUDA each
  // seed's products are its own run's calls (kernels/core/seed_gemm.cu).
  int seeds = 1;
  MBMPO_HD_INLINE std::int64_t rows() const { return std::int64_t(tasks) * rollouts; }
  MBMPO_HD_INLINE std::int64_t samples() const { return rows() * horizon; }
};

// The policy noise of action element j at step h of trajectory (task, rollout): the same on both
// backends, so CPU and GPU rollouts agree.
MBMPO_HD_INLINE float action_noise(std::uint64_t seed, std::uint64_t draw, const RolloutDims& d,
                                   std::int64_t row, int h, int j) {
  return normal_at(seed, draw, std::uint64_t((row * d.horizon + h) * d.act_dim + j));
}

// The seeds that key a rollout's noise when it holds several seeds' tasks (`mbmpo train --seeds`):
// the tasks split into `count` equal consecutive blocks, seed g's block keyed by seed[g] with its
// rows counted from the block's start, so each seed draws exactly the noise of a rollout of its own.
struct NoiseSeeds {
  int count = 1;
  std::uint64_t seed[kMaxSeedsTogether] = {};
};

MBMPO_HD_INLINE float action_noise(const NoiseSeeds& seeds, std::uint64_t draw, const RolloutDims& d,
                                   std::int64_t row, int h, int j) {
  const std::int64_t rows_per_seed = d.rows() / seeds.count;
  const int g = static_cast<int>(row / rows_per_seed);
  return action_noise(seeds.seed[g], draw, d, row - g * rows_per_seed, h, j);
}

// Features of the linear baseline for one sample (rllab's LinearFeatureBaseline): obs clipped,
// its square, t/100 and its powers 2 and 3, and a constant. F = 2*obs_dim + 4.
inline int baseline_features(int obs_dim) { return 2 * obs_dim + 4; }
template <class T, class Out>
MBMPO_HD_INLINE void baseline_feature_row(const float* obs, int obs_dim, int h, float obs_clip, Out* f) {
  for (int i = 0; i < obs_dim; ++i) {
    const T o = T(obs[i] < -obs_clip ? -obs_clip : (obs[i] > obs_clip ? obs_clip : obs[i]));
    f[i] = Out(o);
    f[obs_dim + i] = Out(o * o);
  }
  const T s = T(h) / T(100);
  f[2 * obs_dim] = Out(s);
  f[2 * obs_dim + 1] = Out(s * s);
  f[2 * obs_dim + 2] = Out(s * s * s);
  f[2 * obs_dim + 3] = Out(1);
}

namespace cpu {

// Step h for every trajectory: sample a ~ pi_task(.|s), record (s, a, log pi, valid), and write
// the action the model sees (clipped to the task's range) to act_env [rows][act_dim]. One task per
// thread; a task's means come from one batched forward pass over its rollouts.
template <class T>
void policy_act_step(const PolicyShape& s, const RolloutDims& d, int h, const T* params,
                     const T* state, const T* alive, const NoiseSeeds& seeds, std::uint64_t draw,
                     T action_limit, T* obs_out, T* act_out, T* logp_out, T* valid_out, T* act_env) {
  MBMPO_PARALLEL_FOR
  for (int task = 0; task < d.tasks; ++task) {
    const T* theta = params + std::int64_t(task) * s.parameter_count;
    const std::int64_t first_row = std::int64_t(task) * d.rollouts;
    const RowMatrix<T> means = batch::means(s, theta, state, first_row, d.rollouts);
    for (std::int64_t row = first_row; row < first_row + d.rollouts; ++row) {
      const std::int64_t sample = row * d.horizon + h;
      valid_out[sample] = alive[row];
      T* a = act_out + sample * d.act_dim;
      if (alive[row] == T(0)) {  // an ended trajectory: zeros, so stale states never look like data
        std::fill_n(obs_out + sample * d.obs_dim, d.obs_dim, T(0));
        std::fill_n(a, d.act_dim, T(0));
        std::fill_n(act_env + row * d.act_dim, d.act_dim, T(0));
        logp_out[sample] = T(0);
        continue;
      }
      std::copy_n(state + row * d.obs_dim, d.obs_dim, obs_out + sample * d.obs_dim);
      const T* mean = means.data() + (row - first_row) * d.act_dim;
      for (int j = 0; j < d.act_dim; ++j) {
        a[j] = mean[j] + std::exp(effective_log_std(s, theta, j)) * T(action_noise(seeds, draw, d, row, h, j));
        act_env[row * d.act_dim + j] = std::clamp(a[j], -action_limit, action_limit);
      }
      logp_out[sample] = gaussian_log_prob(s, theta, mean, a);
    }
  }
}

// Reward of step h and termination from the predicted next state; trajectories that end stop.
template <class T>
void reward_done_step(TaskId task, const RolloutDims& d, int h, const T* state, const T* act_env,
                      const T* next_state, T* alive, T* reward_out) {
  for (std::int64_t row = 0; row < d.rows(); ++row) {
    const std::int64_t sample = row * d.horizon + h;
    if (alive[row] == T(0)) {
      reward_out[sample] = T(0);
      continue;
    }
    const T* next = next_state + row * d.obs_dim;
    reward_out[sample] = task_reward(task, state + row * d.obs_dim, act_env + row * d.act_dim, next);
    if (task_done(task, next)) alive[row] = T(0);
  }
}

// Discounted reward-to-go per trajectory (zero past the end).
template <class T>
void discounted_returns(const RolloutDims& d, const T* reward, const T* valid, T discount, T* returns) {
  for (std::int64_t row = 0; row < d.rows(); ++row) {
    T running = T(0);
    for (int h = d.horizon - 1; h >= 0; --h) {
      const std::int64_t i = row * d.horizon + h;
      running = valid[i] != T(0) ? reward[i] + discount * running : T(0);
      returns[i] = running;
    }
  }
}

// Per task: least squares of returns on the baseline features over the valid samples,
// (X^T X + ridge I) w = X^T y in double; like rllab, the ridge grows 10x (up to 5 tries) while
// the solve fails. coefficients: [T][F].
template <class T>
void fit_linear_baseline(const RolloutDims& d, const float* obs, const T* returns, const T* valid,
                         double ridge, float obs_clip, double* coefficients) {
  const int F = baseline_features(d.obs_dim);
  const std::int64_t per_task = std::int64_t(d.rollouts) * d.horizon;
  std::vector<double> f(F);
  for (int t = 0; t < d.tasks; ++t) {
    Eigen::MatrixXd xtx = Eigen::MatrixXd::Zero(F, F);
    Eigen::VectorXd xty = Eigen::VectorXd::Zero(F);
    for (std::int64_t n = 0; n < per_task; ++n) {
      const std::int64_t i = t * per_task + n;
      if (valid[i] == T(0)) continue;
      baseline_feature_row<double>(obs + i * d.obs_dim, d.obs_dim, int(n % d.horizon), obs_clip, f.data());
      const Eigen::Map<const Eigen::VectorXd> x(f.data(), F);
      xtx.selfadjointView<Eigen::Lower>().rankUpdate(x);
      xty += double(returns[i]) * x;
    }
    xtx.triangularView<Eigen::StrictlyUpper>() = xtx.transpose();
    Eigen::Map<Eigen::VectorXd> w(coefficients + std::int64_t(t) * F, F);
    double reg = ridge;
    for (int attempt = 0; attempt < 5; ++attempt, reg *= 10) {
      Eigen::LLT<Eigen::MatrixXd> llt(xtx + reg * Eigen::MatrixXd::Identity(F, F));
      if (llt.info() != Eigen::Success) continue;
      w = llt.solve(xty);
      if (w.allFinite()) break;
    }
    if (!w.allFinite()) w.setZero();
  }
}

// GAE(gamma, lambda) with the baseline V = features . w; V is 0 past a trajectory's end. Then,
// when normalize is set, advantages are standardised per task over its valid samples. Invalid
// samples get advantage 0. valid_count[t] = number of valid samples of task t.
template <class T>
void gae_advantages(const RolloutDims& d, const float* obs, const T* reward, const T* valid,
                    const double* coefficients, T discount, T gae_lambda, float obs_clip,
                    bool normalize, T* advantages, T* valid_count) {
  const int F = baseline_features(d.obs_dim);
  std::vector<double> f(F);
  for (std::int64_t row = 0; row < d.rows(); ++row) {
    const int task = static_cast<int>(row / d.rollouts);
    const double* w = coefficients + std::int64_t(task) * F;
    T next_value = T(0), running = T(0);
    for (int h = d.horizon - 1; h >= 0; --h) {
      const std::int64_t i = row * d.horizon + h;
      if (valid[i] == T(0)) {
        advantages[i] = T(0);
        next_value = running = T(0);
        continue;
      }
      baseline_feature_row<double>(obs + i * d.obs_dim, d.obs_dim, h, obs_clip, f.data());
      double v = 0;
      for (int k = 0; k < F; ++k) v += f[k] * w[k];
      const T value = T(v);
      const T delta = reward[i] + discount * next_value - value;
      running = delta + discount * gae_lambda * running;
      advantages[i] = running;
      next_value = value;
    }
  }
  const std::int64_t per_task = std::int64_t(d.rollouts) * d.horizon;
  for (int t = 0; t < d.tasks; ++t) {
    T count = T(0), sum = T(0), sum_sq = T(0);
    for (std::int64_t i = t * per_task; i < (t + 1) * per_task; ++i) {
      if (valid[i] == T(0)) continue;
      count += T(1);
      sum += advantages[i];
    }
    valid_count[t] = count;
    if (!normalize || count == T(0)) continue;
    const T mean = sum / count;
    for (std::int64_t i = t * per_task; i < (t + 1) * per_task; ++i) {
      if (valid[i] != T(0)) sum_sq += (advantages[i] - mean) * (advantages[i] - mean);
    }
    const T std = std::sqrt(sum_sq / count);
    for (std::int64_t i = t * per_task; i < (t + 1) * per_task; ++i) {
      if (valid[i] != T(0)) advantages[i] = (advantages[i] - mean) / (std + T(1e-8));
    }
  }
}

// The per-task sums below run one task per thread; each task's samples with weight != 0 go
// through the policy as matrices (policy_batch_cpu.hpp). params [T or 1][P] (one row shared by
// all tasks when params_per_task is false), vectors and outputs [T][P].
template <class T, class TaskSum>
void per_task_parameter_sum(const PolicyShape& s, int tasks, std::int64_t per_task, const T* params,
                            bool params_per_task, const T* obs, const T* act, const T* weight, T* out,
                            const TaskSum& task_sum) {
  // Tasks are independent: one per thread, each with its own output row (deterministic).
  MBMPO_PARALLEL_FOR
  for (int t = 0; t < tasks; ++t) {
    const T* theta = params + (params_per_task ? std::int64_t(t) * s.parameter_count : 0);
    T* o = out + std::int64_t(t) * s.parameter_count;
    std::fill_n(o, s.parameter_count, T(0));
    task_sum(t, theta, batch::gather_weighted(s, t * per_task, per_task, obs, act, weight), o);
  }
}

// grad[t] = sum_n weight[t][n] * d/dtheta log pi_{theta_t}(act | obs) over task t's samples.
template <class T>
void weighted_log_prob_gradient(const PolicyShape& s, int tasks, std::int64_t per_task,
                                const T* params, bool params_per_task, const T* obs, const T* act,
                                const T* weight, T* grad) {
  per_task_parameter_sum(s, tasks, per_task, params, params_per_task, obs, act, weight, grad,
                         [&](int, const T* theta, const batch::WeightedSamples<T>& x, T* g) {
                           batch::log_prob_gradient(s, theta, x, g);
                         });
}

// out[t] = sum_n weight[t][n] * (d^2 log pi_{theta_t}(act | obs) / dtheta^2) v[t]  (Pearlmutter's
// R-operator); vectors [T][P].
template <class T>
void log_prob_hessian_vector(const PolicyShape& s, int tasks, std::int64_t per_task, const T* params,
                             bool params_per_task, const T* vectors, const T* obs, const T* act,
                             const T* weight, T* out) {
  per_task_parameter_sum(s, tasks, per_task, params, params_per_task, obs, act, weight, out,
                         [&](int t, const T* theta, const batch::WeightedSamples<T>& x, T* o) {
                           const T* v = vectors + std::int64_t(t) * s.parameter_count;
                           batch::log_prob_hessian_vector(s, theta, v, x, o);
                         });
}

// out[t] = sum_n weight[t][n] * F_{theta_t}(obs_n) v[t], the Fisher-vector product per state;
// vectors [T][P].
template <class T>
void fisher_vector_product(const PolicyShape& s, int tasks, std::int64_t per_task, const T* params,
                           bool params_per_task, const T* vectors, const T* obs, const T* weight,
                           T* out) {
  per_task_parameter_sum(s, tasks, per_task, params, params_per_task, obs, static_cast<const T*>(nullptr),
                         weight, out, [&](int t, const T* theta, const batch::WeightedSamples<T>& x, T* o) {
                           batch::fisher_vector(s, theta, vectors + std::int64_t(t) * s.parameter_count, x, o);
                         });
}

// act[n][j] = policy_action at obs[n] of one parameter vector theta, with noise normal_at(seed, n,
// j) when `sample` (else the clipped mean); obs [rows][obs_dim], act [rows][act_dim].
template <class T>
void actions(const PolicyShape& s, std::int64_t rows, const T* theta, const T* obs, bool sample,
             std::uint64_t seed, T limit, T* act) {
  if (rows == 0) return;
  const RowMatrix<T> mean = batch::means(s, theta, obs, 0, rows);
  for (std::int64_t n = 0; n < rows; ++n) {
    for (int j = 0; j < s.act_dim; ++j) {
      const T noise = sample ? T(normal_at(seed, std::uint64_t(n), std::uint64_t(j))) : T(0);
      act[n * s.act_dim + j] = policy_action(s, theta, j, mean(n, j), noise, limit);
    }
  }
}

// out[t][n] = log pi_{theta_t}(act | obs).
template <class T>
void log_probs(const PolicyShape& s, int tasks, std::int64_t per_task, const T* params,
               bool params_per_task, const T* obs, const T* act, T* out) {
  // Tasks are independent: one per thread.
  MBMPO_PARALLEL_FOR
  for (int t = 0; t < tasks; ++t) {
    const T* theta = params + (params_per_task ? std::int64_t(t) * s.parameter_count : 0);
    const RowMatrix<T> mean = batch::means(s, theta, obs, t * per_task, per_task);
    for (std::int64_t n = 0; n < per_task; ++n) {
      const std::int64_t i = t * per_task + n;
      out[i] = gaussian_log_prob(s, theta, mean.data() + n * s.act_dim, act + i * s.act_dim);
    }
  }
}

// out[t][n] = KL(pi_old_t(.|obs) || pi_new_t(.|obs)); old/new params [T or 1][P] each.
template <class T>
void kl_divergences(const PolicyShape& s, int tasks, std::int64_t per_task, const T* old_params,
                    bool old_per_task, const T* new_params, bool new_per_task, const T* obs, T* out) {
  // Tasks are independent: one per thread.
  MBMPO_PARALLEL_FOR
  for (int t = 0; t < tasks; ++t) {
    const T* a = old_params + (old_per_task ? std::int64_t(t) * s.parameter_count : 0);
    const T* b = new_params + (new_per_task ? std::int64_t(t) * s.parameter_count : 0);
    const RowMatrix<T> mean_a = batch::means(s, a, obs, t * per_task, per_task);
    const RowMatrix<T> mean_b = batch::means(s, b, obs, t * per_task, per_task);
    for (std::int64_t n = 0; n < per_task; ++n) {
      out[t * per_task + n] = gaussian_kl(s, a, mean_a.data() + n * s.act_dim, b, mean_b.data() + n * s.act_dim);
    }
  }
}

}  // namespace cpu
}  // namespace mbmpo
