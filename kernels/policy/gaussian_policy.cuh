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

// Action element j of one sample as mbmpo.Policy.predict gives it: mean + exp(effective log-std)
// * noise (noise 0: the mean), clipped to +-limit as the environment would.
template <class T>
MBMPO_HD_INLINE T policy_action(const PolicyShape& s, const T* theta, int j, T mean, T noise, T limit) {
  using std::exp;
  const T a = mean + exp(effective_log_std(s, theta, j)) * noise;
  return a < -limit ? -limit : (a > limit ? limit : a);
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

// ---- Per-element terms, shared by the per-sample functions below and the GPU's batched sums
// (kernels/policy/policy_sums.cu), which run them one thread per element ----------------------

// What action element j of one sample contributes at the output layer: g = d/d mean_j, rg its
// R-operator (Hessian-vector products only), log_std = the term for log-std parameter j (zero
// when the log-std sits at its floor, which is constant in theta).
template <class T>
struct OutputTerms {
  T g = T(0), rg = T(0), log_std = T(0);
};

template <class T>
MBMPO_HD_INLINE bool log_std_at_floor(const PolicyShape& s, const T* theta, int j) {
  return theta[s.log_std_offset + j] <= T(kMinLogStd);
}

// weight * d log pi / d(mean_j, log_std_j).
template <class T>
MBMPO_HD_INLINE OutputTerms<T> log_prob_gradient_terms(const PolicyShape& s, const T* theta, int j, T act,
                                                       T mean, T weight) {
  using std::exp;
  const T inv_var = exp(T(-2) * effective_log_std(s, theta, j));
  const T diff = act - mean;
  OutputTerms<T> t;
  t.g = weight * diff * inv_var;
  t.log_std = log_std_at_floor(s, theta, j) ? T(0) : weight * (diff * diff * inv_var - T(1));
  return t;
}

// The R-operator of log_prob_gradient_terms along v; r_mean = R{mean_j}.
template <class T>
MBMPO_HD_INLINE OutputTerms<T> hessian_vector_terms(const PolicyShape& s, const T* theta, const T* v, int j,
                                                    T act, T mean, T r_mean, T weight) {
  using std::exp;
  const T inv_var = exp(T(-2) * effective_log_std(s, theta, j));
  const T diff = act - mean;
  const bool floored = log_std_at_floor(s, theta, j);
  const T v_log_std = floored ? T(0) : v[s.log_std_offset + j];  // the floor is constant in theta
  OutputTerms<T> t;
  t.g = weight * diff * inv_var;
  // R{diff * inv_var} = -R{mean} inv_var - 2 diff inv_var R{log_std}
  t.rg = weight * inv_var * (-r_mean - T(2) * diff * v_log_std);
  // R{diff^2 inv_var - 1} = -2 diff inv_var R{mean} - 2 diff^2 inv_var R{log_std}
  t.log_std = floored ? T(0) : weight * T(-2) * diff * inv_var * (r_mean + diff * v_log_std);
  return t;
}

// weight * F v at the output: diag(1/std^2) R{mean} on the mean, 2 v on each log-std.
template <class T>
MBMPO_HD_INLINE OutputTerms<T> fisher_vector_terms(const PolicyShape& s, const T* theta, const T* v, int j,
                                                   T r_mean, T weight) {
  using std::exp;
  OutputTerms<T> t;
  t.g = weight * exp(T(-2) * effective_log_std(s, theta, j)) * r_mean;
  t.log_std = log_std_at_floor(s, theta, j) ? T(0) : weight * T(2) * v[s.log_std_offset + j];
  return t;
}

// Through a tanh layer backwards: back = (W^T g)_k reaches the layer below's output x = tanh(pre).
template <class T>
MBMPO_HD_INLINE T tanh_backward(T back, T x) {
  return back * (T(1) - x * x);
}
// Its R-operator: r_back = R{W^T g}_k, rx = R{x}; R{1 - x^2} = -2 x R{x}.
template <class T>
MBMPO_HD_INLINE T tanh_backward_tangent(T back, T r_back, T x, T rx) {
  return r_back * (T(1) - x * x) - T(2) * back * x * rx;
}
// Forward tangent through tanh: R{tanh(pre)} = (1 - x^2) R{pre}, x = tanh(pre).
template <class T>
MBMPO_HD_INLINE T tanh_tangent(T x, T r_pre) {
  return (T(1) - x * x) * r_pre;
}

// Backpropagation of an output gradient g (d/d mean, overwritten as scratch) through the mean
// MLP: every weight and bias gradient is handed to add(index, value) in a fixed order. `a` must
// hold this sample's forward pass.
template <class T, class Add>
MBMPO_HD_INLINE void mean_backward(const PolicyShape& s, const T* theta, const T* obs,
                                   const PolicyActivations<T>& a, T* g, Add&& add) {
  T g_prev[kMaxPolicyWidth];
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
      g_prev[k] = tanh_backward(sum, x[k]);  // x = tanh(pre) of the layer below
    }
    for (int k = 0; k < in; ++k) g[k] = g_prev[k];
  }
}

// d/dtheta [weight * log pi(act | obs)], handed to add(index, value) for every parameter in a
// fixed order. `a` must hold this sample's forward pass.
template <class T, class Add>
MBMPO_HD_INLINE void log_prob_backward(const PolicyShape& s, const T* theta, const T* obs,
                                       const T* act, const PolicyActivations<T>& a, T weight,
                                       Add&& add) {
  using std::exp;
  T g[kMaxPolicyWidth];
  const T* mean = a.h[s.layers - 1];
  for (int j = 0; j < s.act_dim; ++j) {
    const OutputTerms<T> t = log_prob_gradient_terms(s, theta, j, act[j], mean[j], weight);
    g[j] = t.g;
    add(s.log_std_offset + j, t.log_std);
  }
  mean_backward(s, theta, obs, a, g, add);
}

// Forward-mode derivative of every layer's output along the parameter direction v (Pearlmutter's
// R-operator): r.h[l] = d h_l(theta + e v) / de at e = 0. The observation does not depend on v.
template <class T>
MBMPO_HD_INLINE void policy_forward_tangent(const PolicyShape& s, const T* theta, const T* v,
                                            const T* obs, const PolicyActivations<T>& a,
                                            PolicyActivations<T>& r) {
  for (int l = 0; l < s.layers; ++l) {
    const T* x = l == 0 ? obs : a.h[l - 1];
    const T* w = theta + s.w_offset[l];
    const T* vw = v + s.w_offset[l];
    const T* vb = v + s.b_offset[l];
    const bool hidden = l + 1 < s.layers;
    const int in = s.in[l];
    for (int i = 0; i < s.out[l]; ++i) {
      T sum = vb[i];
      for (int k = 0; k < in; ++k) {
        sum += vw[i * in + k] * x[k];
        if (l > 0) sum += w[i * in + k] * r.h[l - 1][k];
      }
      r.h[l][i] = hidden ? tanh_tangent(a.h[l][i], sum) : sum;
    }
  }
}

// weight * (d^2 log pi(act | obs) / dtheta^2) v, handed to add(index, value) in a fixed order:
// the R-operator applied to log_prob_backward. `a` is the forward pass, `r` its tangent along v.
template <class T, class Add>
MBMPO_HD_INLINE void log_prob_hessian_vector(const PolicyShape& s, const T* theta, const T* v,
                                             const T* obs, const T* act,
                                             const PolicyActivations<T>& a,
                                             const PolicyActivations<T>& r, T weight, Add&& add) {
  using std::exp;
  T g[kMaxPolicyWidth], rg[kMaxPolicyWidth], g_prev[kMaxPolicyWidth], rg_prev[kMaxPolicyWidth];
  const T* mean = a.h[s.layers - 1];
  const T* r_mean = r.h[s.layers - 1];
  for (int j = 0; j < s.act_dim; ++j) {
    const OutputTerms<T> t = hessian_vector_terms(s, theta, v, j, act[j], mean[j], r_mean[j], weight);
    g[j] = t.g;
    rg[j] = t.rg;
    add(s.log_std_offset + j, t.log_std);
  }
  for (int l = s.layers - 1; l >= 0; --l) {
    const T* x = l == 0 ? obs : a.h[l - 1];
    const T* rx = l == 0 ? nullptr : r.h[l - 1];
    const T* w = theta + s.w_offset[l];
    const T* vw = v + s.w_offset[l];
    const int in = s.in[l], out = s.out[l];
    for (int i = 0; i < out; ++i) {
      add(s.b_offset[l] + i, rg[i]);
      for (int k = 0; k < in; ++k) {
        add(s.w_offset[l] + i * in + k, rg[i] * x[k] + (rx ? g[i] * rx[k] : T(0)));
      }
    }
    if (l == 0) break;
    for (int k = 0; k < in; ++k) {
      T sum = T(0), r_sum = T(0);
      for (int i = 0; i < out; ++i) {
        sum += w[i * in + k] * g[i];
        r_sum += vw[i * in + k] * g[i] + w[i * in + k] * rg[i];
      }
      g_prev[k] = tanh_backward(sum, x[k]);  // x = tanh(pre) of the layer below
      rg_prev[k] = tanh_backward_tangent(sum, r_sum, x[k], rx[k]);
    }
    for (int k = 0; k < in; ++k) {
      g[k] = g_prev[k];
      rg[k] = rg_prev[k];
    }
  }
}

// weight * F v for one state, F the Fisher information of the Gaussian policy (the Hessian of
// KL(pi_theta || pi_theta') in theta' at theta' = theta): Jmean^T diag(1/std^2) Jmean v on the
// mean's parameters, 2 v on each log-std. `r` is the forward tangent along v.
template <class T, class Add>
MBMPO_HD_INLINE void fisher_vector(const PolicyShape& s, const T* theta, const T* v, const T* obs,
                                   const PolicyActivations<T>& a, const PolicyActivations<T>& r,
                                   T weight, Add&& add) {
  using std::exp;
  T g[kMaxPolicyWidth];
  const T* r_mean = r.h[s.layers - 1];
  for (int j = 0; j < s.act_dim; ++j) {
    const OutputTerms<T> t = fisher_vector_terms(s, theta, v, j, r_mean[j], weight);
    g[j] = t.g;
    add(s.log_std_offset + j, t.log_std);
  }
  mean_backward(s, theta, obs, a, g, add);
}

}  // namespace mbmpo
