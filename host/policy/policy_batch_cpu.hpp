// The policy's sums over samples on the CPU as matrix products: one task's samples go through the
// mean MLP as [n x width] matrices, so forward, backward and their R-operator (forward-mode)
// versions are a few Eigen GEMMs per layer instead of one scalar loop per sample. Templated on the
// scalar so tests run it in double. The per-sample form of the same math (gaussian_policy.cuh) is
// what the GPU runs; tests check the two against each other.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "host/core/eigen_types.hpp"
#include "kernels/policy/gaussian_policy.cuh"

namespace mbmpo::cpu::batch {

// One parameter vector (or tangent, or gradient) unpacked into Eigen-owned matrices per layer.
// Eigen's vectorised products peel unaligned heads with scalar code (separate multiply and add)
// around an FMA body, so a product's rounding would depend on where a raw buffer happens to sit;
// on these aligned copies the results are the same wherever the caller's buffers are.
template <class T>
struct LayerMatrices {
  std::vector<RowMatrix<T>> w;  // [out][in] per layer
  std::vector<RowVector<T>> b;  // [out] per layer

  static LayerMatrices zeros(const PolicyShape& s) {
    LayerMatrices m;
    for (int l = 0; l < s.layers; ++l) {
      m.w.push_back(RowMatrix<T>::Zero(s.out[l], s.in[l]));
      m.b.push_back(RowVector<T>::Zero(s.out[l]));
    }
    return m;
  }
  static LayerMatrices copy_of(const PolicyShape& s, const T* p) {
    LayerMatrices m;
    for (int l = 0; l < s.layers; ++l) {
      m.w.push_back(Eigen::Map<const RowMatrix<T>>(p + s.w_offset[l], s.out[l], s.in[l]));
      m.b.push_back(Eigen::Map<const RowVector<T>>(p + s.b_offset[l], s.out[l]));
    }
    return m;
  }
  // p[layer entries] += these (the log-stds at the end of p are left alone).
  void add_to(const PolicyShape& s, T* p) const {
    for (int l = 0; l < s.layers; ++l) {
      Eigen::Map<RowMatrix<T>>(p + s.w_offset[l], s.out[l], s.in[l]) += w[l];
      Eigen::Map<RowVector<T>>(p + s.b_offset[l], s.out[l]) += b[l];
    }
  }
};

// One task's samples that carry weight (weight != 0), gathered into contiguous rows: ended steps
// cost nothing, as in the per-sample loops that skip them.
template <class T>
struct WeightedSamples {
  RowMatrix<T> obs, act;  // act is empty when the operation needs no actions
  ColVector<T> weight;
};

template <class T>
WeightedSamples<T> gather_weighted(const PolicyShape& s, std::int64_t first, std::int64_t count,
                                   const T* obs, const T* act, const T* weight) {
  std::int64_t n = 0;
  for (std::int64_t i = first; i < first + count; ++i) n += weight[i] != T(0);
  WeightedSamples<T> out;
  out.obs.resize(n, s.obs_dim);
  if (act) out.act.resize(n, s.act_dim);
  out.weight.resize(n);
  std::int64_t row = 0;
  for (std::int64_t i = first; i < first + count; ++i) {
    if (weight[i] == T(0)) continue;
    out.obs.row(row) = Eigen::Map<const RowVector<T>>(obs + i * s.obs_dim, s.obs_dim);
    if (act) out.act.row(row) = Eigen::Map<const RowVector<T>>(act + i * s.act_dim, s.act_dim);
    out.weight(row) = weight[i];
    ++row;
  }
  return out;
}

// h[l] = every layer's output for every row of obs; h[layers - 1] is the mean.
template <class T>
void forward(const PolicyShape& s, const LayerMatrices<T>& theta, const RowMatrix<T>& obs,
             std::vector<RowMatrix<T>>& h) {
  h.resize(s.layers);
  for (int l = 0; l < s.layers; ++l) {
    h[l].noalias() = (l == 0 ? obs : h[l - 1]) * theta.w[l].transpose();
    h[l].rowwise() += theta.b[l];
    if (l + 1 < s.layers) h[l] = h[l].array().tanh();
  }
}

// r[l] = d h_l(theta + e v) / de at e = 0 for every row (Pearlmutter's R-operator).
template <class T>
void forward_tangent(const PolicyShape& s, const LayerMatrices<T>& theta, const LayerMatrices<T>& v,
                     const RowMatrix<T>& obs, const std::vector<RowMatrix<T>>& h, std::vector<RowMatrix<T>>& r) {
  r.resize(s.layers);
  for (int l = 0; l < s.layers; ++l) {
    r[l].noalias() = (l == 0 ? obs : h[l - 1]) * v.w[l].transpose();
    if (l > 0) r[l].noalias() += r[l - 1] * theta.w[l].transpose();
    r[l].rowwise() += v.b[l];
    if (l + 1 < s.layers) r[l].array() *= T(1) - h[l].array().square();
  }
}

// Every state's inverse variance exp(-2 log std) per action element [act_dim].
template <class T>
RowVector<T> inverse_variance(const PolicyShape& s, const T* theta) {
  RowVector<T> inv_var(s.act_dim);
  for (int j = 0; j < s.act_dim; ++j) inv_var(j) = std::exp(T(-2) * effective_log_std(s, theta, j));
  return inv_var;
}

template <class T>
bool log_std_floored(const PolicyShape& s, const T* theta, int j) {
  return theta[s.log_std_offset + j] <= T(kMinLogStd);
}

// Adds sum over rows of g_row^T d mean_row / dtheta to grad: backpropagation of the output
// gradients g [n][act_dim] (overwritten as scratch) through the mean MLP.
template <class T>
void mean_backward(const PolicyShape& s, const LayerMatrices<T>& theta, const RowMatrix<T>& obs,
                   const std::vector<RowMatrix<T>>& h, RowMatrix<T>& g, LayerMatrices<T>& grad) {
  for (int l = s.layers - 1; l >= 0; --l) {
    grad.w[l].noalias() += g.transpose() * (l == 0 ? obs : h[l - 1]);
    grad.b[l] += g.colwise().sum();
    if (l == 0) break;
    RowMatrix<T> below = g * theta.w[l];
    g = below.array() * (T(1) - h[l - 1].array().square());  // tanh' of the layer below
  }
}

// grad += sum_n weight_n d/dtheta log pi(act_n | obs_n).
template <class T>
void log_prob_gradient(const PolicyShape& s, const T* theta, const WeightedSamples<T>& x, T* grad) {
  if (x.weight.size() == 0) return;
  const auto layers = LayerMatrices<T>::copy_of(s, theta);
  std::vector<RowMatrix<T>> h;
  forward(s, layers, x.obs, h);
  const RowVector<T> inv_var = inverse_variance(s, theta);
  const RowMatrix<T> diff = x.act - h[s.layers - 1];
  RowMatrix<T> g = (diff.array().rowwise() * inv_var.array()).colwise() * x.weight.array();
  for (int j = 0; j < s.act_dim; ++j) {
    if (log_std_floored(s, theta, j)) continue;  // below the floor the log-std gets no gradient
    grad[s.log_std_offset + j] +=
        (x.weight.array() * (diff.col(j).array().square() * inv_var(j) - T(1))).sum();
  }
  auto sum = LayerMatrices<T>::zeros(s);
  mean_backward(s, layers, x.obs, h, g, sum);
  sum.add_to(s, grad);
}

// out += sum_n weight_n (d^2 log pi(act_n | obs_n) / dtheta^2) v: the R-operator applied to
// log_prob_gradient (the same terms as the per-sample log_prob_hessian_vector).
template <class T>
void log_prob_hessian_vector(const PolicyShape& s, const T* theta, const T* v, const WeightedSamples<T>& x,
                             T* out) {
  if (x.weight.size() == 0) return;
  const auto layers = LayerMatrices<T>::copy_of(s, theta);
  const auto tangent = LayerMatrices<T>::copy_of(s, v);
  std::vector<RowMatrix<T>> h, r;
  forward(s, layers, x.obs, h);
  forward_tangent(s, layers, tangent, x.obs, h, r);
  const int L = s.layers;
  const RowVector<T> inv_var = inverse_variance(s, theta);
  RowVector<T> v_log_std(s.act_dim);  // the floor is constant in theta: no tangent below it
  for (int j = 0; j < s.act_dim; ++j) v_log_std(j) = log_std_floored(s, theta, j) ? T(0) : v[s.log_std_offset + j];
  const RowMatrix<T> diff = x.act - h[L - 1];
  const auto weighted = [&](const RowMatrix<T>& m) -> RowMatrix<T> {
    return (m.array().rowwise() * inv_var.array()).colwise() * x.weight.array();
  };
  RowMatrix<T> g = weighted(diff);
  // R{diff * inv_var} = -R{mean} inv_var - 2 diff inv_var R{log_std}
  const RowMatrix<T> diff_v = diff.array().rowwise() * v_log_std.array();
  RowMatrix<T> rg = weighted(-r[L - 1] - T(2) * diff_v);
  // R{diff^2 inv_var - 1} = -2 diff inv_var (R{mean} + diff R{log_std})
  const RowMatrix<T> log_std_terms = weighted(diff.cwiseProduct(r[L - 1] + diff_v));
  for (int j = 0; j < s.act_dim; ++j) {
    if (!log_std_floored(s, theta, j)) out[s.log_std_offset + j] += T(-2) * log_std_terms.col(j).sum();
  }
  auto sum = LayerMatrices<T>::zeros(s);
  for (int l = L - 1; l >= 0; --l) {
    sum.w[l].noalias() += rg.transpose() * (l == 0 ? x.obs : h[l - 1]);
    if (l > 0) sum.w[l].noalias() += g.transpose() * r[l - 1];
    sum.b[l] += rg.colwise().sum();
    if (l == 0) break;
    const RowMatrix<T> back = g * layers.w[l];
    RowMatrix<T> r_back = g * tangent.w[l];
    r_back.noalias() += rg * layers.w[l];
    const auto x_below = h[l - 1].array();
    const auto slope = T(1) - x_below.square();  // tanh' below; R{slope} = -2 x R{x}
    g = back.array() * slope;
    rg = r_back.array() * slope - T(2) * back.array() * x_below * r[l - 1].array();
  }
  sum.add_to(s, out);
}

// out += sum_n weight_n F(obs_n) v, F the Fisher of the Gaussian policy at one state:
// Jmean^T diag(1/std^2) Jmean v on the mean's parameters, 2 v on each log-std.
template <class T>
void fisher_vector(const PolicyShape& s, const T* theta, const T* v, const WeightedSamples<T>& x, T* out) {
  if (x.weight.size() == 0) return;
  const auto layers = LayerMatrices<T>::copy_of(s, theta);
  std::vector<RowMatrix<T>> h, r;
  forward(s, layers, x.obs, h);
  forward_tangent(s, layers, LayerMatrices<T>::copy_of(s, v), x.obs, h, r);
  const RowVector<T> inv_var = inverse_variance(s, theta);
  RowMatrix<T> g = (r[s.layers - 1].array().rowwise() * inv_var.array()).colwise() * x.weight.array();
  const T weight_sum = x.weight.sum();
  for (int j = 0; j < s.act_dim; ++j) {
    if (!log_std_floored(s, theta, j)) out[s.log_std_offset + j] += T(2) * weight_sum * v[s.log_std_offset + j];
  }
  auto sum = LayerMatrices<T>::zeros(s);
  mean_backward(s, layers, x.obs, h, g, sum);
  sum.add_to(s, out);
}

// The means of the policy for count consecutive samples from first (copied: see LayerMatrices).
template <class T>
RowMatrix<T> means(const PolicyShape& s, const T* theta, const T* obs, std::int64_t first, std::int64_t count) {
  const RowMatrix<T> rows = Eigen::Map<const RowMatrix<T>>(obs + first * s.obs_dim, count, s.obs_dim);
  std::vector<RowMatrix<T>> h;
  forward(s, LayerMatrices<T>::copy_of(s, theta), rows, h);
  return std::move(h[s.layers - 1]);
}

}  // namespace mbmpo::cpu::batch
