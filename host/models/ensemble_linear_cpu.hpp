// CPU reference of the weight-normalised ensemble linear layer, templated on the scalar so tests
// can run it in double. Eigen does the matrix products.
//
// For every model k (row-major, batch-major layout [K][rows][features]):
//   W[k]   = diag(g[k] / ||V[k]||_row) V[k]          V: [K][out][in], g, b: [K][out]
//   pre[k] = x[k] W[k]^T + b[k]                      x: [K][rows][in]
//   y[k]   = act(pre[k])                             pre, y: [K][rows][out]
#pragma once

#include <Eigen/Core>
#include <cstdint>

#include "host/core/eigen_types.hpp"
#include "host/models/ensemble_linear_dims.hpp"
#include "kernels/core/activation.cuh"

namespace mbmpo {

namespace cpu {

// pre may be null (inference needs only y); b may be null (no bias: a caller that fuses the bias
// into its own epilogue).
template <class T>
void ensemble_linear_forward(const EnsembleLinearDims& d, Activation act, const T* x, const T* v,
                             const T* g, const T* b, T* pre, T* y) {
  using Eigen::Index;
  for (std::int64_t k = 0; k < d.models; ++k) {
    Eigen::Map<const RowMatrix<T>> X(x + k * d.rows * d.in, Index(d.rows), Index(d.in));
    Eigen::Map<const RowMatrix<T>> V(v + k * d.out * d.in, Index(d.out), Index(d.in));
    Eigen::Map<const ColVector<T>> G(g + k * d.out, Index(d.out));
    Eigen::Map<RowMatrix<T>> Y(y + k * d.rows * d.out, Index(d.rows), Index(d.out));

    const ColVector<T> scale = G.cwiseQuotient(V.rowwise().norm());
    const RowMatrix<T> W = scale.asDiagonal() * V;
    Y.noalias() = X * W.transpose();
    if (b) Y.rowwise() += Eigen::Map<const RowVector<T>>(b + k * d.out, Index(d.out));
    if (pre) Eigen::Map<RowMatrix<T>>(pre + k * d.rows * d.out, Index(d.rows), Index(d.out)) = Y;
    Y = Y.unaryExpr([act](T p) { return activate(act, p); });
  }
}

// Gradients of a loss L given dy = dL/dy. Outputs are overwritten, not accumulated. dx may be null
// (the first layer of a network needs no input gradient).
template <class T>
void ensemble_linear_backward(const EnsembleLinearDims& d, Activation act, const T* x, const T* v,
                              const T* g, const T* pre, const T* dy, T* dx, T* dv, T* dg, T* db) {
  using Eigen::Index;
  for (std::int64_t k = 0; k < d.models; ++k) {
    Eigen::Map<const RowMatrix<T>> X(x + k * d.rows * d.in, Index(d.rows), Index(d.in));
    Eigen::Map<const RowMatrix<T>> V(v + k * d.out * d.in, Index(d.out), Index(d.in));
    Eigen::Map<const ColVector<T>> G(g + k * d.out, Index(d.out));
    Eigen::Map<const RowMatrix<T>> P(pre + k * d.rows * d.out, Index(d.rows), Index(d.out));
    Eigen::Map<const RowMatrix<T>> DY(dy + k * d.rows * d.out, Index(d.rows), Index(d.out));

    const ColVector<T> norm = V.rowwise().norm();
    const ColVector<T> scale = G.cwiseQuotient(norm);
    const RowMatrix<T> dP =
        DY.cwiseProduct(P.unaryExpr([act](T p) { return activation_derivative(act, p); }));
    const RowMatrix<T> dW = dP.transpose() * X;  // gradient w.r.t. the effective weight W

    Eigen::Map<RowVector<T>>(db + k * d.out, Index(d.out)) = dP.colwise().sum();
    if (dx) {
      Eigen::Map<RowMatrix<T>>(dx + k * d.rows * d.in, Index(d.rows), Index(d.in)).noalias() =
          dP * (scale.asDiagonal() * V);
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
