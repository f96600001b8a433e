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

// The work items of one layer call: (model, block of rows) for the products whose rows are
// independent (the forward pass, the input gradient), (model, block of output units) for the
// parameter gradients, which sum over rows (each item sums all rows of its units in row order).
// Blocks are fixed sizes, so the items, and with them every result, do not depend on the number
// of threads. Element-wise passes run per item too, vectorised per activation (activate() with its
// switch per element is what the GPU kernels use, and it would keep the compiler from
// vectorising here).
constexpr Eigen::Index kRowsPerBlock = 256;
constexpr Eigen::Index kUnitsPerBlock = 64;
// Calls of at most kRowsPerBlock rows a model split into up to kRowBlocksAtLeast blocks (see
// RowBlocks): a rollout step's 200 rows a model on 5 models were 5 items, 3 against 2 on 2 cores
// and 11 cores idle on 16; 4 blocks of 50 make 20 items.
constexpr std::int64_t kRowBlocksAtLeast = 4;
constexpr std::int64_t kMinRowsPerBlock = 64;

inline std::int64_t block_count(std::int64_t n, std::int64_t block) { return (n + block - 1) / block; }

// The (model, rows) items of a call. Calls of more than kRowsPerBlock rows a model (the fit's
// minibatches, large predictions) take blocks of kRowsPerBlock rows and a last partial one.
// Smaller calls split into up to kRowBlocksAtLeast near-equal blocks (sizes differ by at most
// one), one per kMinRowsPerBlock rows begun. The blocks follow
// the row count alone, never the thread count or the number of models, so the bits do not depend
// on the team, and seeds stacked as more models split as each seed alone does. (Which block a row
// falls in can change its last bit: Eigen's kernel sums a product's tail columns in another order
// than its full groups of 4.) A call of more than kMinRowsPerBlock rows has no block under half
// that, so no product falls to Eigen's small-size coefficient path, whose rounding follows the
// operands' alignment.
struct RowBlocks {
  std::int64_t rows, blocks;
  explicit RowBlocks(std::int64_t row_count)
      : rows(row_count),
        blocks(row_count > kRowsPerBlock ? block_count(row_count, kRowsPerBlock)
                                         : std::min(kRowBlocksAtLeast, block_count(row_count, kMinRowsPerBlock))) {}
  Eigen::Index start(std::int64_t block) const {
    if (rows > kRowsPerBlock) return Eigen::Index(std::min(block * kRowsPerBlock, rows));
    return Eigen::Index(block * rows / blocks);
  }
  Eigen::Index size(std::int64_t block) const { return start(block + 1) - start(block); }
};

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
// One model's; ensemble_weight_norm runs every model, one per work item.
template <class T>
void weight_norm_of_model(const EnsembleLinearDims& d, std::int64_t k, const T* v, const T* g, T* w) {
  using Eigen::Index;
  Eigen::Map<const RowMatrix<T>> V(v + k * d.out * d.in, Index(d.out), Index(d.in));
  Eigen::Map<const ColVector<T>> G(g + k * d.out, Index(d.out));
  const ColVector<T> scale = G.cwiseQuotient(V.rowwise().norm());
  Eigen::Map<RowMatrix<T>>(w + k * d.out * d.in, Index(d.out), Index(d.in)) = scale.asDiagonal() * V;
}

template <class T>
void ensemble_weight_norm(const EnsembleLinearDims& d, const T* v, const T* g, T* w) {
  MBMPO_PARALLEL_FOR
  for (std::int64_t k = 0; k < d.models; ++k) weight_norm_of_model(d, k, v, g, w);
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
  const RowBlocks split(d.rows);
  MBMPO_PARALLEL_FOR
  for (std::int64_t item = 0; item < d.models * split.blocks; ++item) {
    const std::int64_t k = item / split.blocks;
    const Index start = split.start(item % split.blocks), n = split.size(item % split.blocks);
    Eigen::Map<const RowMatrix<T>> X(x + (k * d.rows + start) * d.in, n, Index(d.in));
    Eigen::Map<const RowMatrix<T>> W(w + k * d.out * d.in, Index(d.out), Index(d.in));
    // The activation runs on an owned (aligned) block: Eigen's vectorised tanh and exp round
    // differently from its scalar ones, and which elements take which path follows the
    // destination's alignment, so activating in place would tie the bits to where y sits.
    RowMatrix<T> block(n, Index(d.out));
    block.noalias() = X * W.transpose();
    if (b) block.rowwise() += Eigen::Map<const RowVector<T>>(b + k * d.out, Index(d.out));
    if (pre) Eigen::Map<RowMatrix<T>>(pre + (k * d.rows + start) * d.out, n, Index(d.out)) = block;
    activate_in_place(act, block);
    Eigen::Map<RowMatrix<T>>(y + (k * d.rows + start) * d.out, n, Index(d.out)) = block;
  }
}

// Gradients of a loss L given dy = dL/dy. Outputs are overwritten, not accumulated. dx may be null
// (the first layer of a network needs no input gradient); w as in the forward pass. One parallel
// region: dP = dy * act'(pre) and dx = dP W per block of rows, then (after the barrier) the
// parameter gradients per block of output units.
template <class T>
void ensemble_linear_backward(const EnsembleLinearDims& d, Activation act, const T* x, const T* v,
                              const T* g, const NotDeduced<T>* w, const T* pre, const T* dy, T* dx, T* dv,
                              T* dg, T* db) {
  using Eigen::Index;
  std::vector<T> own_w;
  if (dx && !w) {
    own_w.resize(std::size_t(d.models * d.out * d.in));
    ensemble_weight_norm(d, v, g, own_w.data());
    w = own_w.data();
  }
  std::vector<T> dpre(std::size_t(d.models * d.rows * d.out));
  const RowBlocks split(d.rows);
  const std::int64_t unit_blocks = block_count(d.out, kUnitsPerBlock);
  T* dp = dpre.data();
  MBMPO_PARALLEL {
    MBMPO_FOR
    for (std::int64_t item = 0; item < d.models * split.blocks; ++item) {
      const std::int64_t k = item / split.blocks;
      const Index start = split.start(item % split.blocks), n = split.size(item % split.blocks);
      const std::int64_t offset = (k * d.rows + start) * d.out;
      Eigen::Map<RowMatrix<T>> dP(dp + offset, n, Index(d.out));
      dP = activation_backward(act, Eigen::Map<const RowMatrix<T>>(pre + offset, n, Index(d.out)),
                               Eigen::Map<const RowMatrix<T>>(dy + offset, n, Index(d.out)));
      if (dx) {
        Eigen::Map<RowMatrix<T>>(dx + (k * d.rows + start) * d.in, n, Index(d.in)).noalias() =
            dP * Eigen::Map<const RowMatrix<T>>(w + k * d.out * d.in, Index(d.out), Index(d.in));
      }
    }
    MBMPO_FOR
    for (std::int64_t item = 0; item < d.models * unit_blocks; ++item) {
      const std::int64_t k = item / unit_blocks;
      const Index first = Index(item % unit_blocks) * kUnitsPerBlock;
      const Index units = std::min<Index>(kUnitsPerBlock, Index(d.out) - first);
      using Stride = Eigen::OuterStride<>;
      Eigen::Map<const RowMatrix<T>, 0, Stride> dP(dp + k * d.rows * d.out + first, Index(d.rows), units,
                                                   Stride(Index(d.out)));
      Eigen::Map<const RowMatrix<T>> X(x + k * d.rows * d.in, Index(d.rows), Index(d.in));
      Eigen::Map<const RowMatrix<T>> V(v + (k * d.out + first) * d.in, units, Index(d.in));
      Eigen::Map<const ColVector<T>> G(g + k * d.out + first, units);
      const RowMatrix<T> dW = dP.transpose() * X;  // gradient w.r.t. these rows of W
      const ColVector<T> norm = V.rowwise().norm();
      const ColVector<T> scale = G.cwiseQuotient(norm);
      // Row by row into an owned vector: Eigen's column sum of a strided map splits its
      // vectorised and scalar columns by the map's alignment, and the two sum in different orders.
      RowVector<T> bias_grad = RowVector<T>::Zero(units);
      for (Index r = 0; r < Index(d.rows); ++r) bias_grad += dP.row(r);
      Eigen::Map<RowVector<T>>(db + k * d.out + first, units) = bias_grad;
      // W_ij = g_i v_ij / n_i  =>  dg_i = <dW_i, v_i> / n_i,
      //                            dv_ij = (g_i / n_i) (dW_ij - v_ij dg_i / n_i).
      const ColVector<T> dG = dW.cwiseProduct(V).rowwise().sum().cwiseQuotient(norm);
      Eigen::Map<ColVector<T>>(dg + k * d.out + first, units) = dG;
      Eigen::Map<RowMatrix<T>>(dv + (k * d.out + first) * d.in, units, Index(d.in)) =
          scale.asDiagonal() * (dW - dG.cwiseQuotient(norm).asDiagonal() * V);
    }
  }
}

}  // namespace cpu
}  // namespace mbmpo
