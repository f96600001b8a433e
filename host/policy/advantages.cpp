#include "host/policy/advantages.hpp"

#include "host/core/nvtx.hpp"

#ifdef MBMPO_WITH_CUDA
#include "kernels/policy/policy_ops_cuda.hpp"
#endif

namespace mbmpo {

Advantages::Advantages(Backend backend, const RolloutDims& d)
    : advantages(backend, {d.tasks, d.rollouts, d.horizon}),
      returns(backend, {d.tasks, d.rollouts, d.horizon}),
      valid_count(backend, {d.tasks}),
      baseline(backend, {d.tasks, baseline_features(d.obs_dim)}) {}

TensorView<const float> Advantages::by_task() const {
  return {advantages.backend(), advantages.data(), {advantages.dim(0), advantages.dim(1) * advantages.dim(2)}};
}

void compute_advantages(Context& context, const Trajectories& t, const AdvantageOptions& options,
                        Advantages& out) {
  MBMPO_NVTX_RANGE("advantages");
  const RolloutDims& d = t.dims;
  MBMPO_CHECK_INPUT(options.discount >= 0 && options.discount <= 1, "discount must be in [0, 1], got ", options.discount);
  MBMPO_CHECK_INPUT(options.gae_lambda >= 0 && options.gae_lambda <= 1, "GAE lambda must be in [0, 1], got ", options.gae_lambda);
  MBMPO_CHECK_INPUT(options.baseline_ridge >= 0, "baseline ridge must be >= 0");
  expect_shape(out.advantages.view(), {d.tasks, d.rollouts, d.horizon}, context.backend(), "advantages");
  expect_shape(out.baseline.view(), {d.tasks, baseline_features(d.obs_dim)}, context.backend(), "baseline coefficients");
  const float gamma = float(options.discount), lambda = float(options.gae_lambda), clip = float(options.obs_clip);
  if (context.backend() == Backend::cpu) {
    cpu::discounted_returns(d, t.reward.data(), t.valid.data(), gamma, out.returns.data());
    cpu::fit_linear_baseline(d, t.obs.data(), out.returns.data(), t.valid.data(), options.baseline_ridge, clip,
                             out.baseline.data());
    cpu::gae_advantages(d, t.obs.data(), t.reward.data(), t.valid.data(), out.baseline.data(), gamma, lambda,
                        clip, options.normalize, out.advantages.data(), out.valid_count.data());
    return;
  }
#ifdef MBMPO_WITH_CUDA
  CudaResources& cuda = context.cuda();
  cuda::discounted_returns(cuda, d, t.reward.data(), t.valid.data(), gamma, out.returns.data());
  cuda::fit_linear_baseline(cuda, d, t.obs.data(), out.returns.data(), t.valid.data(), options.baseline_ridge,
                            clip, out.baseline.data());
  cuda::gae_advantages(cuda, d, t.obs.data(), t.reward.data(), t.valid.data(), out.baseline.data(), gamma,
                       lambda, clip, options.normalize, out.advantages.data(), out.valid_count.data());
#endif
}

}  // namespace mbmpo
