// CPU reference of the weight-normalised ensemble linear layer, templated on the scalar so tests
// can run it in double. Eigen does the matrix products.
//
// For every model k (row-major, batch-major layout [K][rows][features]):
//   W[k]   = diag(g[k] / ||V[k]||_row) V[k]          V: [K][out][in], g, b: [K][out]
//   pre[k] = x[k] W[k]^T + b[k]                      x: [K][rows][in]
//   y[k]   = act(pre[k])                             pre, y: [K][rows][out]
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "host/core/eigen_types.hpp"
#include "host/core/openmp.hpp"
#include "host/models/ensemble_linear_dims.hpp"
#include "kernels/core/activation.cuh"

namespace mbmpo {

namespace cpu {

// Element-wise passes run over blocks of rows spread across the OpenMP threads, each vectorised per
// activation (activate() with its switch per element is what the GPU kernels use, and it would
// keep the compiler from vectorising here).
constexpr Eigen::Index kRowsPerBlock = 512;

template <class Fn>
void for_row_blocks(Eigen::Index rows, const Fn& fn) {
  MBMPO_PARALLEL_FOR
  for (Eigen::Index start = 0; start < rows; start += kRowsPerBlock) {
    fn(start, std::min(kRowsPerBlock, rows - start));
  }
}

// y = act(y) in place.
template <class Block>
void activate_in_place(Activation act, Block&& y) {
  using T = typename std::decay_t<Block>::Scalar;
  switch (act) {
    case Activation::relu: y = y.cwiseMax(T(0)); break;
    case Activation::tanh: y = y.array().tanh().matrix(); break;
    case Activation::swish: y = (y.array() / (T(1) + (-y.array()).exp())).matrix(); break;
    case Activation::identity: break;
  }
}

// dy * act'(pre), element-wise.
template <class Pre, class Dy>
auto activation_backward(Activation act, const Pre& pre, const Dy& dy) {
  using T = typename Pre::Scalar;
  using Block = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  switch (act) {
    case Activation::relu: return Block((pre.array() > T(0)).select(dy.array(), T(0)).matrix());
    case Activation::tanh: return Block((dy.array() * (T(1) - pre.array().tanh().square())).matrix());
    case Activation::swish: {
      const Block s = (T(1) / (T(1) + (-pre.array()).exp())).matrix();
      return Block((dy.array() * s.array() * (T(1) + pre.array() * (T(1) - s.array()))).matrix());
    }
    case Activation::identity: break;
  }
  return Block(dy);
}

// The optional pointers below may be passed as nullptr: they take their type from the others.
template <class T>
struct NotDeducedType {
  using type = T;
};
template <class T>
using NotDeduced = typename NotDeducedType<T>::type;

// w[k] = diag(g[k] / ||v[k] rows||) v[k]: the effective weights, computed once wherever the
// parameters stay fixed over several products (a rollout, a minibatch's forward and backward).
template <class T>
void ensemble_weight_norm(const EnsembleLinearDims& d, const T* v, const T* g, T* w) {
  using Eigen::Index;
  for (std::int64_t k = 0; k < d.models; ++k) {
    Eigen::Map<const RowMatrix<T>> V(v + k * d.out * d.in, Index(d.out), Index(d.in));
    Eigen::Map<const ColVector<T>> G(g + k * d.out, Index(d.out));
    const ColVector<T> scale = G.cwiseQuotient(V.rowwise().norm());
    Eigen::Map<RowMatrix<T>>(w + k * d.out * d.in, Index(d.out), Index(d.in)) = scale.asDiagonal() * V;
  }
}

// pre may be null (inference needs only y); b may be null (no bias: a caller that fuses the bias
// into its own epilogue); w may be null (then it is computed from v and g here).
template <class T>
void ensemble_linear_forward(const EnsembleLinearDims& d, Activation act, const T* x, const T* v,
                             const T* g, const NotDeduced<T>* w, const NotDeduced<T>* b, T* pre, T* y) {
  using Eigen::Index;
  std::vector<T> own_w;
  if (!w) {
    own_w.resize(std::size_t(d.models * d.out * d.in));
    ensemble_weight_norm(d, v, g, own_w.data());
    w = own_w.data();
  }
  for (std::int64_t k = 0; k < d.models; ++k) {
    Eigen::Map<const RowMatrix<T>> X(x + k * d.rows * d.in, Index(d.rows), Index(d.in));
    Eigen::Map<const RowMatrix<T>> W(w + k * d.out * d.in, Index(d.out), Index(d.in));
    Eigen::Map<RowMatrix<T>> Y(y + k * d.rows * d.out, Index(d.rows), Index(d.out));
    Y.noalias() = X * W.transpose();
    Eigen::Map<RowMatrix<T>> Pre(pre ? pre + k * d.rows * d.out : nullptr, Index(d.rows), Index(d.out));
    for_row_blocks(d.rows, [&](Index start, Index n) {
      auto y_block = Y.middleRows(start, n);
      if (b) y_block.rowwise() += Eigen::Map<const RowVector<T>>(b + k * d.out, Index(d.out));
      if (pre) Pre.middleRows(start, n) = y_block;
      activate_in_place(act, y_block);
    });
  }
}

// Gradients of a loss L given dy = dL/dy. Outputs are overwritten, not accumulated. dx may be null
// (the first layer of a network needs no input gradient); w as in the forward pass.
template <class T>
void ensemble_linear_backward(const EnsembleLinearDims& d, Activation act, const T* x, const T* v,
                              const T* g, const NotDeduced<T>* w, const T* pre, const T* dy, T* dx, T* dv,
                              T* dg, T* db) {
  using Eigen::Index;
  for (std::int64_t k = 0; k < d.models; ++k) {
    Eigen::Map<const RowMatrix<T>> X(x + k * d.rows * d.in, Index(d.rows), Index(d.in));
    Eigen::Map<const RowMatrix<T>> V(v + k * d.out * d.in, Index(d.out), Index(d.in));
    Eigen::Map<const ColVector<T>> G(g + k * d.out, Index(d.out));
    Eigen::Map<const RowMatrix<T>> P(pre + k * d.rows * d.out, Index(d.rows), Index(d.out));
    Eigen::Map<const RowMatrix<T>> DY(dy + k * d.rows * d.out, Index(d.rows), Index(d.out));

    const ColVector<T> norm = V.rowwise().norm();
    const ColVector<T> scale = G.cwiseQuotient(norm);
    RowMatrix<T> dP(d.rows, d.out);
    for_row_blocks(d.rows, [&](Index start, Index n) {
      dP.middleRows(start, n) = activation_backward(act, P.middleRows(start, n), DY.middleRows(start, n));
    });
    const RowMatrix<T> dW = dP.transpose() * X;  // gradient w.r.t. the effective weight W

    Eigen::Map<RowVector<T>>(db + k * d.out, Index(d.out)) = dP.colwise().sum();
    if (dx && w) {
      Eigen::Map<RowMatrix<T>>(dx + k * d.rows * d.in, Index(d.rows), Index(d.in)).noalias() =
          dP * Eigen::Map<const RowMatrix<T>>(w + k * d.out * d.in, Index(d.out), Index(d.in));
    } else if (dx) {
      Eigen::Map<RowMatrix<T>>(dx + k * d.rows * d.in, Index(d.rows), Index(d.in)).noalias() =
          dP * RowMatrix<T>(scale.asDiagonal() * V);
    }
    // W_ij = g_i v_ij / n_i  =>  dg_i = <dW_i, v_i> / n_i,
    //                            dv_ij = (g_i / n_i) (dW_ij - v_ij dg_i / n_i).
    const ColVector<T> dG = dW.cwiseProduct(V).rowwise().sum().cwiseQuotient(norm);
    Eigen::Map<ColVector<T>>(dg + k * d.out, Index(d.out)) = dG;
    Eigen::Map<RowMatrix<T>>(dv + k * d.out * d.in, Index(d.out), Index(d.in)) =
        scale.asDiagonal() * (dW - dG.cwiseQuotient(norm).asDiagonal() * V);
  }
}

}  // namespace cpu
}  // namespace mbmpo
