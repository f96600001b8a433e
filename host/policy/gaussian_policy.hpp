// The Gaussian policy's parameters and batched evaluations on either backend: initialisation,
// log-probabilities, entropy, and the weighted log-likelihood gradient (the inner step's and the
// meta-gradient's building block). Per-sample math: kernels/policy/gaussian_policy.cuh.
#pragma once

#include <cstdint>
#include <vector>

#include "host/core/context.hpp"
#include "host/core/tensor.hpp"
#include "host/policy/policy_layout.hpp"

namespace mbmpo {

// Xavier-uniform weights (Philox(seed)), zero biases, log-std = log(init_std).
std::vector<float> initial_policy_parameters(const PolicyLayout& layout, std::uint64_t seed,
                                             double init_std = 1.0);

// Entropy of the action distribution (state-independent: it depends on log-std only).
double policy_entropy(const PolicyLayout& layout, const std::vector<float>& params);

// params: [T][P] (one policy per task) or [P] (shared by every task); obs [T][N][obs_dim],
// act [T][N][act_dim]; out [T][N] = log pi(act | obs).
void policy_log_probs(Context& context, const PolicyLayout& layout, TensorView<const float> params,
                      TensorView<const float> obs, TensorView<const float> act,
                      TensorView<float> out);

// act [N][act_dim] = the policy's action at obs [N][obs_dim], one parameter vector params [P]:
// the mean, or with `sample` mean + std * normal_at(seed, n, j); clipped to +-action_limit.
void policy_actions(Context& context, const PolicyLayout& layout, TensorView<const float> params,
                    TensorView<const float> obs, bool sample, std::uint64_t seed, float action_limit,
                    TensorView<float> act);

// out [T][N] = KL(pi_old(.|obs) || pi_new(.|obs)) per state; old/new params [T][P] or [P].
void policy_kl(Context& context, const PolicyLayout& layout, TensorView<const float> old_params,
               TensorView<const float> new_params, TensorView<const float> obs, TensorView<float> out);

// grad [T][P] = sum_n weight[t][n] * d/dtheta log pi_theta_t(act | obs); weight [T][N].
void weighted_log_prob_gradient(Context& context, const PolicyLayout& layout,
                                TensorView<const float> params, TensorView<const float> obs,
                                TensorView<const float> act, TensorView<const float> weight,
                                TensorView<float> grad);

}  // namespace mbmpo
