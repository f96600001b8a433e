#include "host/optim/conjugate_gradient.hpp"

#include <cmath>

#include "host/core/cuda_graph.hpp"
#include "host/core/nvtx.hpp"

#ifdef MBMPO_WITH_CUDA
#include "kernels/optim/conjugate_gradient_cuda.hpp"
#endif

namespace mbmpo {

struct ConjugateGradientSolver::Impl {
  Impl(Context& c, int b, std::int64_t size) : context(c), systems(b), n(size) {}
  Context& context;
  int systems;
  std::int64_t n;
#ifdef MBMPO_WITH_CUDA
  std::unique_ptr<cuda::ConjugateGradientState> state;
  CudaGraph graph;
#endif
};

ConjugateGradientSolver::ConjugateGradientSolver(Context& context, int systems, std::int64_t n)
    : impl_(std::make_unique<Impl>(context, systems, n)) {
  MBMPO_CHECK(systems >= 0 && n >= 0, "conjugate gradient: negative size");
#ifdef MBMPO_WITH_CUDA
  if (context.backend() == Backend::cuda) {
    impl_->state = std::make_unique<cuda::ConjugateGradientState>(context.cuda(), systems, n);
  }
#endif
}

ConjugateGradientSolver::~ConjugateGradientSolver() = default;

ConjugateGradientReport ConjugateGradientSolver::solve(const LinearOperator& apply,
                                                       TensorView<const float> b, TensorView<float> x,
                                                       const ConjugateGradientOptions& options) {
  MBMPO_NVTX_RANGE("cg");
  Context& context = impl_->context;
  const int systems = impl_->systems;
  const std::int64_t n = impl_->n;
  const Backend backend = context.backend();
  expect_shape(b, {systems, n}, backend, "conjugate gradient b");
  expect_shape(x, {systems, n}, backend, "conjugate gradient x");
  MBMPO_CHECK(options.iterations >= 0, "conjugate gradient: iterations must be >= 0, got ", options.iterations);
  if (backend == Backend::cpu) {
    return cpu::conjugate_gradient<float>(systems, n, apply, b.data, x.data, options);
  }
#ifdef MBMPO_WITH_CUDA
  cuda::ConjugateGradientState& state = *impl_->state;
  state.start(b.data, x.data, options.residual_tolerance);
  auto iterate = [&] {
    for (int k = 0; k < options.iterations; ++k) {
      apply(state.direction(), state.product());
      state.iterate(x.data, options.residual_tolerance);
    }
  };
  if (options.cuda_graph && options.iterations > 0) {
    impl_->graph.run(context, iterate);
  } else {
    iterate();
  }
  ConjugateGradientReport report;
  state.read_norms(report.residual_norm, report.rhs_norm);  // waits for the solve
  return report;
#else
  MBMPO_CHECK(false, "conjugate gradient: this build has no CUDA backend");
  return {};
#endif
}

ConjugateGradientReport conjugate_gradient(Context& context, const LinearOperator& apply,
                                           TensorView<const float> b, TensorView<float> x,
                                           const ConjugateGradientOptions& options) {
  MBMPO_CHECK(b.shape.size() == 2, "conjugate gradient: b must be [systems][n], got ",
              shape_to_string(b.shape));
  ConjugateGradientSolver solver(context, int(b.dim(0)), b.dim(1));
  return solver.solve(apply, b, x, options);
}

}  // namespace mbmpo
