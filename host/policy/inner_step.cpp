#include "host/policy/inner_step.hpp"

#include "host/core/nvtx.hpp"
#include "host/policy/gaussian_policy.hpp"

#ifdef MBMPO_WITH_CUDA
#include "kernels/core/broadcast_rows_cuda.hpp"
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
  MBMPO_CHECK(theta.shape.size() == 1 || theta.shape.size() == 2,
              "inner step theta: expected [P] or [seeds][P], got ", shape_to_string(theta.shape));
  const int seeds = theta.shape.size() == 2 ? int(theta.dim(0)) : 1;
  MBMPO_CHECK(seeds >= 1 && d.tasks % seeds == 0, "inner step: ", seeds, " seeds of meta-parameters do not split ",
              d.tasks, " tasks evenly");
  if (theta.shape.size() == 2) {
    expect_shape(theta, {seeds, P}, backend, "inner step theta");
  } else {
    expect_shape(theta, {P}, backend, "inner step theta");
  }
  expect_shape(adapted, {d.tasks, P}, backend, "inner step adapted parameters");
  // The kernels below trust these sizes: check them on both backends.
  MBMPO_CHECK(d.obs_dim == layout.obs_dim() && d.act_dim == layout.act_dim(), "inner step: the samples have obs/act ",
              d.obs_dim, "/", d.act_dim, " but the policy ", layout.obs_dim(), "/", layout.act_dim());
  expect_shape(advantages.advantages.view(), {d.tasks, d.rollouts, d.horizon}, backend, "inner step advantages");
  expect_shape(advantages.valid_count.view(), {d.tasks}, backend, "inner step valid counts");
  const std::int64_t per_task = std::int64_t(d.rollouts) * d.horizon;
  const int per_seed = seeds > 0 && d.tasks > 0 ? d.tasks / seeds : 0;
  if (backend == Backend::cpu) {
    // Seed by seed, each with its own row shared by its tasks (the per-task sums are independent,
    // so the bits are those of a call of its own). Advantages are already 0 on ended steps, so they
    // are the gradient's weights; the mean divides by each task's count of valid samples.
    const std::int64_t N = per_task;
    for (int g = 0; g < seeds; ++g) {
      const std::int64_t t0 = std::int64_t(g) * per_seed;
      weighted_log_prob_gradient(
          context, layout, TensorView<const float>{backend, theta.data + g * P, {P}},
          TensorView<const float>{backend, samples.obs.data() + t0 * N * d.obs_dim, {per_seed, N, d.obs_dim}},
          TensorView<const float>{backend, samples.act.data() + t0 * N * d.act_dim, {per_seed, N, d.act_dim}},
          TensorView<const float>{backend, advantages.advantages.data() + t0 * N, {per_seed, N}},
          TensorView<float>{backend, adapted.data + t0 * P, {per_seed, P}});
    }
    const float* count = advantages.valid_count.data();
    for (int t = 0; t < d.tasks; ++t) {
      float* row = adapted.data + t * P;
      const float* base = theta.data + (t / per_seed) * P;
      for (std::int64_t p = 0; p < P; ++p) {
        row[p] = base[p] + (count[t] > 0 ? float(alpha) * row[p] / count[t] : 0.f);
      }
    }
    return;
  }
#ifdef MBMPO_WITH_CUDA
  // Each seed's theta tiled to its tasks' rows of adapted, then the step in place: the same
  // launches for any number of seeds.
  CudaResources& cuda = context.cuda();
  cuda::broadcast_rows(cuda, d.tasks, seeds, P, theta.data, adapted.data);
  cuda::policy_gradient_step(cuda, policy_shape(layout), d.tasks, seeds, per_task, adapted.data, true,
                             samples.obs.data(), samples.act.data(), advantages.advantages.data(),
                             advantages.valid_count.data(), float(alpha), adapted.data);
#endif
  (void)per_task;
}

}  // namespace mbmpo
