// One sample of the Gaussian policy, written once for host and device (templated on the scalar so
// the CPU reference runs in double in tests): the mean MLP (tanh hidden layers, linear output),
// log-probabilities, and the backward pass of a weighted log-probability, which hands every
// parameter's gradient contribution to a caller-supplied `add(index, value)` — on the CPU a plain
// accumulation, on the GPU a warp reduction (every lane calls it in the same order).
#pragma once

#include <cmath>

#include "host/policy/policy_layout.hpp"
#include "kernels/core/host_device.cuh"

namespace mbmpo {

constexpr double kHalfLog2Pi = 0.91893853320467274178;
// The policy's std never goes below 1e-6 (the authors' min_std): the log-std parameter is used
// as max(parameter, log 1e-6), and below the floor it gets no gradient.
constexpr double kMinLogStd = -13.815510557964274;

template <class T>
MBMPO_HD_INLINE T effective_log_std(const PolicyShape& s, const T* theta, int j) {
  const T raw = theta[s.log_std_offset + j];
  return raw > T(kMinLogStd) ? raw : T(kMinLogStd);
}

// Outputs of every layer for one sample; h[layers - 1] is the mean.
template <class T>
struct PolicyActivations {
  T h[kMaxPolicyLayers][kMaxPolicyWidth];
};

template <class T>
MBMPO_HD_INLINE void policy_forward(const PolicyShape& s, const T* theta, const T* obs,
                                    PolicyActivations<T>& a) {
  using std::tanh;
  for (int l = 0; l < s.layers; ++l) {
    const T* x = l == 0 ? obs : a.h[l - 1];
    const T* w = theta + s.w_offset[l];
    const T* b = theta + s.b_offset[l];
    const bool hidden = l + 1 < s.layers;
    for (int i = 0; i < s.out[l]; ++i) {
      T sum = b[i];
      for (int k = 0; k < s.in[l]; ++k) sum += w[i * s.in[l] + k] * x[k];
      a.h[l][i] = hidden ? tanh(sum) : sum;
    }
  }
}

template <class T>
MBMPO_HD_INLINE const T* policy_mean(const PolicyShape& s, const PolicyActivations<T>& a) {
  return a.h[s.layers - 1];
}

// log N(act; mean, diag(exp(log_std))^2)
template <class T>
MBMPO_HD_INLINE T gaussian_log_prob(const PolicyShape& s, const T* theta, const T* mean, const T* act) {
  using std::exp;
  T total = T(0);
  for (int j = 0; j < s.act_dim; ++j) {
    const T log_std = effective_log_std(s, theta, j);
    const T z = (act[j] - mean[j]) * exp(-log_std);
    total += T(-0.5) * z * z - log_std - T(kHalfLog2Pi);
  }
  return total;
}

// KL(N(mean_old, std_old) || N(mean_new, std_new)) for one state.
template <class T>
MBMPO_HD_INLINE T gaussian_kl(const PolicyShape& s, const T* theta_old, const T* mean_old,
                              const T* theta_new, const T* mean_new) {
  using std::exp;
  T total = T(0);
  for (int j = 0; j < s.act_dim; ++j) {
    const T lo = effective_log_std(s, theta_old, j), ln = effective_log_std(s, theta_new, j);
    const T var_old = exp(T(2) * lo), var_new = exp(T(2) * ln);
    const T diff = mean_old[j] - mean_new[j];
    total += ln - lo + (var_old + diff * diff) / (T(2) * var_new) - T(0.5);
  }
  return total;
}

// d/dtheta [weight * log pi(act | obs)], handed to add(index, value) for every parameter in a
// fixed order. `a` must hold this sample's forward pass.
template <class T, class Add>
MBMPO_HD_INLINE void log_prob_backward(const PolicyShape& s, const T* theta, const T* obs,
                                       const T* act, const PolicyActivations<T>& a, T weight,
                                       Add&& add) {
  using std::exp;
  T g[kMaxPolicyWidth], g_prev[kMaxPolicyWidth];
  const T* mean = a.h[s.layers - 1];
  for (int j = 0; j < s.act_dim; ++j) {
    const T log_std = effective_log_std(s, theta, j);
    const T inv_var = exp(T(-2) * log_std);
    const T diff = act[j] - mean[j];
    g[j] = weight * diff * inv_var;  // d/d mean
    const bool floored = theta[s.log_std_offset + j] <= T(kMinLogStd);
    add(s.log_std_offset + j, floored ? T(0) : weight * (diff * diff * inv_var - T(1)));  // d/d log_std
  }
  for (int l = s.layers - 1; l >= 0; --l) {
    const T* x = l == 0 ? obs : a.h[l - 1];
    const T* w = theta + s.w_offset[l];
    const int in = s.in[l], out = s.out[l];
    for (int i = 0; i < out; ++i) {
      add(s.b_offset[l] + i, g[i]);
      for (int k = 0; k < in; ++k) add(s.w_offset[l] + i * in + k, g[i] * x[k]);
    }
    if (l == 0) break;
    for (int k = 0; k < in; ++k) {
      T sum = T(0);
      for (int i = 0; i < out; ++i) sum += w[i * in + k] * g[i];
      g_prev[k] = sum * (T(1) - x[k] * x[k]);  // x = tanh(pre) of the layer below
    }
    for (int k = 0; k < in; ++k) g[k] = g_prev[k];
  }
}

}  // namespace mbmpo
