// CUDA launchers of the policy's per-task sums over samples (kernels/policy/policy_sums.cu);
// contracts in host/policy/policy_ops_cpu.hpp. Device pointers; sizes checked by the host callers
// (host/policy/gaussian_policy.cpp, inner_step.cpp, meta_update.cpp). Samples of weight 0 add
// exactly nothing but still pass through the products (the CPU skips them), so their obs and act
// must be finite, as the rollouts write them (zeros after a trajectory ends).
#pragma once

#include <cstdint>

#include "host/core/context.hpp"
#include "host/policy/policy_layout.hpp"

namespace mbmpo::cuda {

// `seeds`: the tasks are that many seeds' equal blocks (a seed, `mbmpo train --seeds`); each
// seed's products are the calls its own run makes (kernels/core/seed_gemm.cu). 1 outside seeds.

// How a per-task sum becomes the output: out[t] = base + factor_t * sum, with base = 0, one
// shared row or a row per task, and factor_t = scale, or scale / count[t] (0 for an empty task).
struct SumFinish {
  const float* base = nullptr;
  bool base_per_task = false;
  const float* count = nullptr;
  float scale = 1.f;
};

// Grows the context's kept scratch for the per-task parameter sums below (gradients, J v, F v) over
// `tasks` x `per_task` samples, so that they allocate nothing afterwards, also while a CUDA graph
// records them. The sums call it themselves; call it first where a graph will record them.
void reserve_sample_sums(CudaResources& cuda, const PolicyShape& s, int tasks, std::int64_t per_task);

// grad[t] = sum_n weight[t][n] d/dtheta log pi, params [T][P] or one shared [P].
// policy_gradient_step: adapted[t] = theta_t + step_size * grad[t] / count[t], theta one shared
// row [P] or a row per task [T][P] (params_per_task). adapted may be theta itself when
// params_per_task: it is written by the last launch, element by element from the same element.
void weighted_log_prob_gradient(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds,
                                std::int64_t per_task, const float* params, bool params_per_task,
                                const float* obs, const float* act, const float* weight,
                                float* grad);
void policy_gradient_step(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds,
                          std::int64_t per_task, const float* theta, bool params_per_task,
                          const float* obs, const float* act, const float* weight,
                          const float* count, float step_size, float* adapted);

// grad[t] = (sum_n weight[t][n] d/dtheta log pi) / count[t].
void scaled_log_prob_gradient(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds,
                              std::int64_t per_task, const float* params, bool params_per_task,
                              const float* obs, const float* act, const float* weight,
                              const float* count, float* grad);

// out[t] = v[t] + alpha / count[t] * sum_n weight[t][n] (d^2 log pi_theta_t / dtheta^2) v[t]:
// J_t v with theta one shared row [P] or a row per task [T][P] (params_per_task), vectors [T][P].
void jacobian_vector(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds, std::int64_t per_task,
                     const float* theta, bool params_per_task, const float* vectors, const float* obs,
                     const float* act, const float* weight, const float* count, float alpha, float* out);

// out[t] = (sum_n weight[t][n] F_{params[t]}(obs) v[t]) / count[t]; params, vectors [T][P].
void fisher_vector_product(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds,
                           std::int64_t per_task, const float* params, const float* vectors,
                           const float* obs, const float* weight, const float* count, float* out);

}  // namespace mbmpo::cuda
