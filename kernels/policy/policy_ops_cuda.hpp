// CUDA launchers of the policy-side operations; contracts in host/policy/policy_ops_cpu.hpp.
// Device pointers; sizes checked by the host callers (host/policy/*.cpp).
#pragma once

#include <cstdint>

#include "host/core/context.hpp"
#include "host/policy/policy_ops_cpu.hpp"
#include "kernels/policy/policy_forward_cuda.hpp"
#include "kernels/policy/policy_sums_cuda.hpp"

namespace mbmpo::cuda {

// Buffers of the rollout's policy step, kept by the rollout (a CUDA graph records the steps):
// hidden_a, hidden_b [rows][widest_hidden], mean [rows][act_dim].
struct PolicyStepScratch {
  float* hidden_a = nullptr;
  float* hidden_b = nullptr;
  float* mean = nullptr;
};

// The tasks are seeds.count equal blocks, one per seed of a seed.
void policy_act_step(CudaResources& cuda, const PolicyShape& s, const RolloutDims& d, int h,
                     const float* params, const float* state, const float* alive,
                     const NoiseSeeds& seeds, std::uint64_t draw, float action_limit,
                     const PolicyStepScratch& scratch, float* obs_out, float* act_out, float* logp_out,
                     float* valid_out, float* act_env);

void reward_done_step(CudaResources& cuda, TaskId task, const RolloutDims& d, int h,
                      const float* state, const float* act_env, const float* next_state,
                      float* alive, float* reward_out);

void discounted_returns(CudaResources& cuda, const RolloutDims& d, const float* reward,
                        const float* valid, float discount, float* returns);

// Its Gram products run per seed (d.seeds equal blocks of tasks), as each seed's own run.
void fit_linear_baseline(CudaResources& cuda, const RolloutDims& d, const float* obs,
                         const float* returns, const float* valid, double ridge, float obs_clip,
                         double* coefficients);

void gae_advantages(CudaResources& cuda, const RolloutDims& d, const float* obs,
                    const float* reward, const float* valid, const double* coefficients,
                    float discount, float gae_lambda, float obs_clip, bool normalize,
                    float* advantages, float* valid_count);

// The tasks split into `seeds` equal consecutive blocks (Tb = tasks / seeds each):
// out[g][p] = (1/Tb) sum_{t in g} rows[t][p] + damping * v[g][p] (v may be null), the seed's tasks
// summed in order. seeds = 1: out[p] = (1/T) sum_t rows[t][p] + damping * v[p].
void task_mean_plus(CudaResources& cuda, int tasks, int P, const float* rows, float damping,
                    const float* v, float* out, int seeds = 1);

// terms [T][2] = per task {sum A exp(logp - logp_old) (A != 0), sum of kl over valid samples}.
void surrogate_kl_terms(CudaResources& cuda, int tasks, std::int64_t per_task,
                        const float* advantage, const float* valid, const float* logp,
                        const float* logp_old, const float* kl, double* terms);

// log-probs and KL: the tasks are `seeds` equal blocks (1 outside a seed).
void log_probs(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds, std::int64_t per_task,
               const float* params, bool params_per_task, const float* obs, const float* act,
               float* out);

// act [rows][act_dim] = cpu::actions of theta (device pointers; mbmpo.Policy.predict).
void policy_actions(CudaResources& cuda, const PolicyShape& s, std::int64_t rows, const float* theta,
                    const float* obs, bool sample, std::uint64_t seed, float limit, float* act);

void kl_divergences(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds, std::int64_t per_task,
                    const float* old_params, bool old_per_task, const float* new_params,
                    bool new_per_task, const float* obs, float* out);

}  // namespace mbmpo::cuda
