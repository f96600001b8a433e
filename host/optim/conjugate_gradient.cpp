#include "host/optim/conjugate_gradient.hpp"

#include <cmath>

#include "host/core/cuda_graph.hpp"
#include "host/core/nvtx.hpp"

#ifdef MBMPO_WITH_CUDA
#include "kernels/optim/conjugate_gradient_cuda.hpp"
#endif

namespace mbmpo {

ConjugateGradientReport conjugate_gradient(Context& context, const LinearOperator& apply,
                                           TensorView<const float> b, TensorView<float> x,
                                           const ConjugateGradientOptions& options) {
  MBMPO_NVTX_RANGE("cg");
  MBMPO_CHECK(b.shape.size() == 2, "conjugate gradient: b must be [systems][n], got ",
              shape_to_string(b.shape));
  const int systems = int(b.dim(0));
  const std::int64_t n = b.dim(1);
  const Backend backend = context.backend();
  expect_shape(b, {systems, n}, backend, "conjugate gradient b");
  expect_shape(x, {systems, n}, backend, "conjugate gradient x");
  MBMPO_CHECK(options.iterations >= 0, "conjugate gradient: iterations must be >= 0, got ", options.iterations);
  if (backend == Backend::cpu) {
    return cpu::conjugate_gradient<float>(systems, n, apply, b.data, x.data, options);
  }
#ifdef MBMPO_WITH_CUDA
  cuda::ConjugateGradientState state(context.cuda(), systems, n);
  state.start(b.data, x.data, options.residual_tolerance);
  auto iterate = [&] {
    for (int k = 0; k < options.iterations; ++k) {
      apply(state.direction(), state.product());
      state.iterate(x.data, options.residual_tolerance);
    }
  };
  if (options.cuda_graph && options.iterations > 0) {
    run_as_cuda_graph(context, iterate);
  } else {
    iterate();
  }
  ConjugateGradientReport report;
  state.read_norms(report.residual_norm, report.rhs_norm);
  return report;
#else
  MBMPO_CHECK(false, "conjugate gradient: this build has no CUDA backend");
  return {};
#endif
}

}  // namespace mbmpo
