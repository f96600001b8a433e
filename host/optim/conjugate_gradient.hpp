// Batched conjugate gradient: B independent symmetric positive-definite systems A_b x_b = b_b of
// size n, solved together (B = 1 for one meta-policy; more for several seeds or per-model
// problems). The operator is a callback that maps p [B][n] to A p [B][n] on the context's
// backend. On CUDA the whole solve stays on the device: the step sizes live in device memory,
// each iteration is the operator plus one kernel, and the iterations can be recorded as one CUDA
// graph (the operator must then only enqueue work on the context's stream).
#pragma once

#include <cstdint>
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include "host/core/context.hpp"
#include "host/core/tensor.hpp"

namespace mbmpo {

struct ConjugateGradientOptions {
  int iterations = 10;
  // A system stops once its residual's squared norm r.r falls below this (rllab's residual_tol).
  double residual_tolerance = 1e-10;
  bool cuda_graph = true;
};

struct ConjugateGradientReport {
  std::vector<double> residual_norm;  // [B] ||b - A x|| by the recurrence, at the end
  std::vector<double> rhs_norm;       // [B] ||b||
};

using LinearOperator = std::function<void(const float* p, float* ap)>;

// A solver for systems of one shape that keeps its device state and its CUDA graph between
// solves, so that a solve (one per meta-step) allocates nothing and instantiates no new graph.
class ConjugateGradientSolver {
 public:
  ConjugateGradientSolver(Context& context, int systems, std::int64_t n);
  ~ConjugateGradientSolver();
  ConjugateGradientSolver(const ConjugateGradientSolver&) = delete;
  ConjugateGradientSolver& operator=(const ConjugateGradientSolver&) = delete;

  // x [B][n] (overwritten; the solve starts from 0), b [B][n].
  ConjugateGradientReport solve(const LinearOperator& apply, TensorView<const float> b,
                                TensorView<float> x, const ConjugateGradientOptions& options);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One solve with a solver of its own.
ConjugateGradientReport conjugate_gradient(Context& context, const LinearOperator& apply,
                                           TensorView<const float> b, TensorView<float> x,
                                           const ConjugateGradientOptions& options);

namespace cpu {

// The reference, on host memory: the same recurrences and stopping rule.
template <class T>
ConjugateGradientReport conjugate_gradient(int systems, std::int64_t n,
                                           const std::function<void(const T*, T*)>& apply,
                                           const T* b, T* x, const ConjugateGradientOptions& options) {
  const std::size_t size = std::size_t(systems) * n;
  std::vector<T> r(b, b + size), p(b, b + size), ap(size);
  std::vector<double> rr(systems), rhs(systems);
  std::vector<char> active(systems);
  std::fill_n(x, size, T(0));
  auto dot = [n](const T* u, const T* v) {
    double sum = 0;
    for (std::int64_t i = 0; i < n; ++i) sum += double(u[i]) * double(v[i]);
    return sum;
  };
  for (int s = 0; s < systems; ++s) {
    rr[s] = dot(&r[s * n], &r[s * n]);
    rhs[s] = std::sqrt(rr[s]);
    active[s] = rr[s] >= options.residual_tolerance;
  }
  for (int k = 0; k < options.iterations; ++k) {
    apply(p.data(), ap.data());
    for (int s = 0; s < systems; ++s) {
      if (!active[s]) continue;
      T* xs = x + s * n;
      T *rs = &r[s * n], *ps = &p[s * n];
      const T* aps = &ap[s * n];
      const double curvature = dot(ps, aps);
      if (!(curvature > 0)) {  // not positive definite along p (or NaN): stop this system
        active[s] = 0;
        continue;
      }
      const T step = T(rr[s] / curvature);
      for (std::int64_t i = 0; i < n; ++i) {
        xs[i] += step * ps[i];
        rs[i] -= step * aps[i];
      }
      const double rr_new = dot(rs, rs);
      const T beta = T(rr_new / rr[s]);
      for (std::int64_t i = 0; i < n; ++i) ps[i] = rs[i] + beta * ps[i];
      rr[s] = rr_new;
      if (rr[s] < options.residual_tolerance) active[s] = 0;
    }
  }
  ConjugateGradientReport report;
  for (int s = 0; s < systems; ++s) {
    report.residual_norm.push_back(std::sqrt(rr[s]));
    report.rhs_norm.push_back(rhs[s]);
  }
  return report;
}

}  // namespace cpu
}  // namespace mbmpo
