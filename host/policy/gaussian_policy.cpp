#include "host/policy/gaussian_policy.hpp"

#include <algorithm>
#include <cmath>

#include "host/core/nvtx.hpp"
#include "host/policy/policy_ops_cpu.hpp"

#ifdef MBMPO_WITH_CUDA
#include "kernels/policy/policy_ops_cuda.hpp"
#endif

namespace mbmpo {
namespace {

struct SampleShapes {
  int tasks;
  std::int64_t per_task;
  bool per_task_params;
};

SampleShapes check_samples(Context& context, const PolicyLayout& layout,
                           const TensorView<const float>& params, const TensorView<const float>& obs,
                           const TensorView<const float>& act) {
  const Backend backend = context.backend();
  MBMPO_CHECK(obs.shape.size() == 3, "policy: obs must be [tasks, samples, obs_dim], got ",
              shape_to_string(obs.shape));
  const int tasks = static_cast<int>(obs.dim(0));
  const std::int64_t n = obs.dim(1);
  expect_shape(obs, {tasks, n, layout.obs_dim()}, backend, "policy obs");
  expect_shape(act, {tasks, n, layout.act_dim()}, backend, "policy act");
  const bool per_task = params.shape.size() == 2;
  if (per_task) {
    expect_shape(params, {tasks, layout.parameter_count()}, backend, "policy parameters");
  } else {
    expect_shape(params, {layout.parameter_count()}, backend, "policy parameters");
  }
  return {tasks, n, per_task};
}

}  // namespace

std::vector<float> initial_policy_parameters(const PolicyLayout& layout, std::uint64_t seed,
                                             double init_std) {
  MBMPO_CHECK_INPUT(init_std > 0, "policy: the initial std must be positive, got ", init_std);
  std::vector<float> params(static_cast<std::size_t>(layout.parameter_count()), 0.f);
  for (const PolicyLayer& layer : layout.layers()) {
    const float limit = std::sqrt(6.f / float(layer.in + layer.out));
    for (std::int64_t i = 0; i < std::int64_t(layer.in) * layer.out; ++i) {
      params[layer.w_offset + i] = limit * (2.f * uniform_at(seed, std::uint64_t(layer.w_offset), std::uint64_t(i)) - 1.f);
    }
  }
  for (int j = 0; j < layout.act_dim(); ++j) params[layout.log_std_offset() + j] = float(std::log(init_std));
  return params;
}

double policy_entropy(const PolicyLayout& layout, const std::vector<float>& params) {
  double entropy = 0;
  for (int j = 0; j < layout.act_dim(); ++j) {
    entropy += std::max<double>(params[layout.log_std_offset() + j], kMinLogStd) + kHalfLog2Pi + 0.5;
  }
  return entropy;
}

void policy_log_probs(Context& context, const PolicyLayout& layout, TensorView<const float> params,
                      TensorView<const float> obs, TensorView<const float> act, TensorView<float> out) {
  const SampleShapes s = check_samples(context, layout, params, obs, act);
  expect_shape(out, {s.tasks, s.per_task}, context.backend(), "policy log-probs");
  const PolicyShape shape = policy_shape(layout);
  if (context.backend() == Backend::cpu) {
    return cpu::log_probs(shape, s.tasks, s.per_task, params.data, s.per_task_params, obs.data, act.data, out.data);
  }
#ifdef MBMPO_WITH_CUDA
  cuda::log_probs(context.cuda(), shape, s.tasks, 1, s.per_task, params.data, s.per_task_params, obs.data,
                  act.data, out.data);
#endif
}

void policy_actions(Context& context, const PolicyLayout& layout, TensorView<const float> params,
                    TensorView<const float> obs, bool sample, std::uint64_t seed, float action_limit,
                    TensorView<float> act) {
  const Backend backend = context.backend();
  MBMPO_CHECK(obs.shape.size() == 2, "policy: obs must be [rows, obs_dim], got ", shape_to_string(obs.shape));
  const std::int64_t rows = obs.dim(0);
  expect_shape(obs, {rows, layout.obs_dim()}, backend, "policy obs");
  expect_shape(params, {layout.parameter_count()}, backend, "policy parameters");
  expect_shape(act, {rows, layout.act_dim()}, backend, "policy actions");
  const PolicyShape shape = policy_shape(layout);
  if (backend == Backend::cpu) {
    return cpu::actions(shape, rows, params.data, obs.data, sample, seed, action_limit, act.data);
  }
#ifdef MBMPO_WITH_CUDA
  cuda::policy_actions(context.cuda(), shape, rows, params.data, obs.data, sample, seed, action_limit, act.data);
#endif
}

void policy_kl(Context& context, const PolicyLayout& layout, TensorView<const float> old_params,
               TensorView<const float> new_params, TensorView<const float> obs, TensorView<float> out) {
  // The actions play no part; check the parameters' shapes with the obs standing in for them.
  MBMPO_CHECK(obs.shape.size() == 3, "policy KL: obs must be [tasks, samples, obs_dim]");
  const TensorView<const float> no_act{obs.backend, obs.data, {obs.dim(0), obs.dim(1), layout.act_dim()}};
  const SampleShapes s = check_samples(context, layout, old_params, obs, no_act);
  const SampleShapes s_new = check_samples(context, layout, new_params, obs, no_act);
  expect_shape(out, {s.tasks, s.per_task}, context.backend(), "policy KL output");
  const PolicyShape shape = policy_shape(layout);
  if (context.backend() == Backend::cpu) {
    return cpu::kl_divergences(shape, s.tasks, s.per_task, old_params.data, s.per_task_params, new_params.data,
                               s_new.per_task_params, obs.data, out.data);
  }
#ifdef MBMPO_WITH_CUDA
  cuda::kl_divergences(context.cuda(), shape, s.tasks, 1, s.per_task, old_params.data, s.per_task_params,
                       new_params.data, s_new.per_task_params, obs.data, out.data);
#endif
}

void weighted_log_prob_gradient(Context& context, const PolicyLayout& layout,
                                TensorView<const float> params, TensorView<const float> obs,
                                TensorView<const float> act, TensorView<const float> weight,
                                TensorView<float> grad) {
  MBMPO_NVTX_RANGE("log_prob_gradient");
  const SampleShapes s = check_samples(context, layout, params, obs, act);
  expect_shape(weight, {s.tasks, s.per_task}, context.backend(), "policy gradient weights");
  expect_shape(grad, {s.tasks, layout.parameter_count()}, context.backend(), "policy gradient");
  const PolicyShape shape = policy_shape(layout);
  if (context.backend() == Backend::cpu) {
    return cpu::weighted_log_prob_gradient(shape, s.tasks, s.per_task, params.data, s.per_task_params,
                                           obs.data, act.data, weight.data, grad.data);
  }
#ifdef MBMPO_WITH_CUDA
  cuda::weighted_log_prob_gradient(context.cuda(), shape, s.tasks, 1, s.per_task, params.data,
                                   s.per_task_params, obs.data, act.data, weight.data, grad.data);
#endif
}

}  // namespace mbmpo
