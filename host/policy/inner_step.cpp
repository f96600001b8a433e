#include "host/policy/inner_step.hpp"

#include "host/core/nvtx.hpp"
#include "host/policy/gaussian_policy.hpp"

#ifdef MBMPO_WITH_CUDA
#include "kernels/policy/policy_ops_cuda.hpp"
#endif

namespace mbmpo {

void inner_step(Context& context, const PolicyLayout& layout, TensorView<const float> theta,
                const Trajectories& samples, const Advantages& advantages, double alpha,
                TensorView<float> adapted) {
  MBMPO_NVTX_RANGE("inner_step");
  const RolloutDims& d = samples.dims;
  const Backend backend = context.backend();
  const std::int64_t P = layout.parameter_count();
  expect_shape(theta, {P}, backend, "inner step theta");
  expect_shape(adapted, {d.tasks, P}, backend, "inner step adapted parameters");
  // The kernels below trust these sizes: check them on both backends.
  MBMPO_CHECK(d.obs_dim == layout.obs_dim() && d.act_dim == layout.act_dim(), "inner step: the samples have obs/act ",
              d.obs_dim, "/", d.act_dim, " but the policy ", layout.obs_dim(), "/", layout.act_dim());
  expect_shape(advantages.advantages.view(), {d.tasks, d.rollouts, d.horizon}, backend, "inner step advantages");
  expect_shape(advantages.valid_count.view(), {d.tasks}, backend, "inner step valid counts");
  const std::int64_t per_task = std::int64_t(d.rollouts) * d.horizon;
  if (backend == Backend::cpu) {
    // Advantages are already 0 on ended steps, so they are the gradient's weights; the mean
    // divides by each task's count of valid samples.
    weighted_log_prob_gradient(context, layout, theta, samples.obs_by_task(), samples.act_by_task(),
                               advantages.by_task(), adapted);
    const float* count = advantages.valid_count.data();
    for (int t = 0; t < d.tasks; ++t) {
      float* row = adapted.data + t * P;
      for (std::int64_t p = 0; p < P; ++p) {
        row[p] = theta.data[p] + (count[t] > 0 ? float(alpha) * row[p] / count[t] : 0.f);
      }
    }
    return;
  }
#ifdef MBMPO_WITH_CUDA
  cuda::policy_gradient_step(context.cuda(), policy_shape(layout), d.tasks, per_task, theta.data,
                             samples.obs.data(), samples.act.data(), advantages.advantages.data(),
                             advantages.valid_count.data(), float(alpha), adapted.data);
#endif
  (void)per_task;
}

}  // namespace mbmpo
