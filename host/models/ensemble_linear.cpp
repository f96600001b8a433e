#include "host/models/ensemble_linear.hpp"

#include <algorithm>
#include <limits>

#include "host/core/nvtx.hpp"

#ifdef MBMPO_WITH_CUDA
#include "kernels/models/ensemble_linear_cuda.hpp"
#endif

namespace mbmpo {

EnsembleLinearDims ensemble_linear_dims(const EnsembleLinearParams& params,
                                        const TensorView<const float>& x) {
  MBMPO_CHECK(params.v.shape.size() == 3, "ensemble linear: v must be [models, out, in], got ",
              shape_to_string(params.v.shape));
  MBMPO_CHECK(x.shape.size() == 3, "ensemble linear: x must be [models, rows, in], got ",
              shape_to_string(x.shape));
  EnsembleLinearDims d{params.v.dim(0), x.dim(1), params.v.dim(2), params.v.dim(1), params.seeds};
  const Backend backend = params.v.backend;
  MBMPO_CHECK(d.models > 0 && d.in > 0 && d.out > 0,
              "ensemble linear: models, in and out must be positive, got v of shape ",
              shape_to_string(params.v.shape));
  MBMPO_CHECK(d.seeds >= 1 && d.models % d.seeds == 0, "ensemble linear: ", d.models,
              " models do not split into ", d.seeds, " equal seeds");
  expect_shape(x, {d.models, d.rows, d.in}, backend, "ensemble linear input x");
  expect_shape(params.g, {d.models, d.out}, backend, "ensemble linear gain g");
  if (params.b.data) expect_shape(params.b, {d.models, d.out}, backend, "ensemble linear bias b");
  if (params.w.data) expect_shape(params.w, {d.models, d.out, d.in}, backend, "ensemble linear effective weights w");
  // cuBLAS takes 32-bit sizes; keep both backends to the same limits.
  constexpr std::int64_t kMaxInt = std::numeric_limits<int>::max();
  MBMPO_CHECK(d.models * d.rows * std::max(d.in, d.out) <= kMaxInt,
              "ensemble linear: tensor of ", d.models, " x ", d.rows, " x ",
              std::max(d.in, d.out), " elements is too large (limit 2^31-1)");
  return d;
}

void ensemble_weight_norm(Context& context, const EnsembleLinearParams& params, TensorView<float> w) {
  const EnsembleLinearDims d{params.v.dim(0), 0, params.v.dim(2), params.v.dim(1)};
  expect_shape(params.g, {d.models, d.out}, context.backend(), "ensemble linear gain g");
  expect_shape(w, {d.models, d.out, d.in}, context.backend(), "ensemble linear effective weights w");
  if (context.backend() == Backend::cpu) {
    cpu::ensemble_weight_norm(d, params.v.data, params.g.data, w.data);
    return;
  }
#ifdef MBMPO_WITH_CUDA
  cuda::ensemble_weight_norm(context.cuda(), d, params.v.data, params.g.data, w.data);
#endif
}

void ensemble_linear_forward(Context& context, Activation act, const EnsembleLinearParams& params,
                             TensorView<const float> x, TensorView<float> pre, TensorView<float> y) {
  MBMPO_NVTX_RANGE("ensemble_linear_forward");
  const EnsembleLinearDims d = ensemble_linear_dims(params, x);
  MBMPO_CHECK(params.v.backend == context.backend(), "ensemble linear: parameters on ",
              to_string(params.v.backend), " but the context is ", to_string(context.backend()));
  expect_shape(y, {d.models, d.rows, d.out}, context.backend(), "ensemble linear output y");
  if (pre.data) expect_shape(pre, {d.models, d.rows, d.out}, context.backend(), "ensemble linear pre-activation");

  if (context.backend() == Backend::cpu) {
    cpu::ensemble_linear_forward(d, act, x.data, params.v.data, params.g.data, params.w.data,
                                 params.b.data, pre.data, y.data);
    return;
  }
#ifdef MBMPO_WITH_CUDA
  cuda::ensemble_linear_forward(context.cuda(), d, act, x.data, params.v.data, params.g.data,
                                params.w.data, params.b.data, pre.data, y.data, params.tf32);
#endif
}

void ensemble_linear_backward(Context& context, Activation act, const EnsembleLinearParams& params,
                              TensorView<const float> x, TensorView<const float> pre,
                              TensorView<const float> dy, TensorView<float> dx,
                              const EnsembleLinearGrads& grads) {
  MBMPO_NVTX_RANGE("ensemble_linear_backward");
  const EnsembleLinearDims d = ensemble_linear_dims(params, x);
  const Backend backend = context.backend();
  MBMPO_CHECK(params.v.backend == backend, "ensemble linear: parameters on ",
              to_string(params.v.backend), " but the context is ", to_string(backend));
  expect_shape(pre, {d.models, d.rows, d.out}, backend, "ensemble linear pre-activation");
  expect_shape(dy, {d.models, d.rows, d.out}, backend, "ensemble linear output gradient dy");
  if (dx.data) expect_shape(dx, {d.models, d.rows, d.in}, backend, "ensemble linear input gradient dx");
  expect_shape(grads.v, {d.models, d.out, d.in}, backend, "ensemble linear gradient dv");
  expect_shape(grads.g, {d.models, d.out}, backend, "ensemble linear gradient dg");
  expect_shape(grads.b, {d.models, d.out}, backend, "ensemble linear gradient db");

  if (backend == Backend::cpu) {
    cpu::ensemble_linear_backward(d, act, x.data, params.v.data, params.g.data, params.w.data, pre.data,
                                  dy.data, dx.data, grads.v.data, grads.g.data, grads.b.data);
    return;
  }
#ifdef MBMPO_WITH_CUDA
  cuda::ensemble_linear_backward(context.cuda(), d, act, x.data, params.v.data, params.g.data,
                                 params.w.data, pre.data, dy.data, dx.data, grads.v.data, grads.g.data,
                                 grads.b.data, params.tf32);
#endif
}

}  // namespace mbmpo
