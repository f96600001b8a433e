// CUDA backend of the policy-side operations of a meta-step (contracts: policy_ops_cpu.hpp).
//   policy_act_step            the policy's means of every trajectory's state as batched products
//                              (policy_forward.cu), then act_step_kernel, one thread per
//                              trajectory: a = mean + exp(log_std) noise, its log-probability, the
//                              sample's obs and validity; noise keyed by the task's seed
//                              (NoiseSeeds: several seeds' tasks in one launch draw what separate
//                              launches would)
//   reward_done_step_kernel    one thread per trajectory, the task's device reward/termination
//   returns / gae kernels      a warp of 32 trajectories per block, backwards over the horizon
//                              through 32 x 32 shared-memory tiles (coalesced reads and writes);
//                              the baseline's values first, a thread per sample
//   baseline                   normal equations in double as a Gram matrix: feature rows of a
//                              chunk of samples (baseline_rows_kernel), then
//                              normal[t] += rows[t]^T rows[t] (cublasDgemmStridedBatched over
//                              tasks, chunk after chunk); then a small Cholesky solve per task
//   advantage normalisation    one block per task; block sums reach every thread through shared
//                              memory (block_sum_to_all), so every branch after them is uniform
//   per-task parameter sums    (log-prob gradients, Hessian-vector and Fisher-vector products)
//                              kernels/policy/policy_sums.cu
//   log-probs / KL             the means as batched products (policy_forward.cu), then a thread
//                              per sample (log_prob_kernel, kl_kernel)
//   policy_actions             a = clip(mean + exp(log_std) normal_at(seed, n, j)), the means as
//                              batched products into a, then action_kernel, a thread per element
//   surrogate / KL sums        one block per task, in double
//   task_mean_plus_kernel      one thread per (seed, parameter), the seed's tasks summed in
//                              task order (the meta-gradient and the CG operator's mean)
// A seed's tasks are `seeds` equal blocks; every cuBLAS product is issued per seed, as the
// seed's own run issues it (kernels/core/seed_gemm.cu).
//
// CPU twin: host/policy/policy_ops_cpu.hpp. Tests: tests/policy/test_policy.cpp,
// test_meta_update.cpp, test_determinism.cpp (CPU against CUDA on awkward sizes, NaN-poisoned
// outputs). Bench: `mbmpo bench --suite rollout|inner_step|meta_update`.
#include <cub/block/block_reduce.cuh>

#include "host/core/cuda_context.hpp"
#include "kernels/core/device_scratch.cuh"
#include "kernels/core/launch.cuh"
#include "kernels/core/seed_gemm_cuda.hpp"
#include "kernels/policy/policy_forward_cuda.hpp"
#include "kernels/policy/policy_ops_cuda.hpp"

namespace mbmpo::cuda {
namespace {

constexpr int kRowThreads = 128;
constexpr std::int64_t kBaselineChunk = 4096;  // samples per task per Gram-matrix product

// One thread per trajectory (task, m) at step h, given the policy's mean at its state.
__global__ void act_step_kernel(PolicyShape s, RolloutDims d, int h, const float* __restrict__ params,
                                const float* __restrict__ state, const float* __restrict__ alive,
                                const float* __restrict__ mean_rows, NoiseSeeds seeds, std::uint64_t draw,
                                float action_limit, float* __restrict__ obs_out, float* __restrict__ act_out,
                                float* __restrict__ logp_out, float* __restrict__ valid_out,
                                float* __restrict__ act_env) {
  const std::int64_t row = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
  if (row >= d.rows()) return;
  const float* theta = params + (row / d.rollouts) * s.parameter_count;
  const std::int64_t sample = row * d.horizon + h;
  const float* o = state + row * d.obs_dim;
  const bool running = alive[row] != 0.f;
  for (int i = 0; i < d.obs_dim; ++i) obs_out[sample * d.obs_dim + i] = running ? o[i] : 0.f;
  valid_out[sample] = alive[row];
  float* a = act_out + sample * d.act_dim;
  if (!running) {
    for (int j = 0; j < d.act_dim; ++j) a[j] = act_env[row * d.act_dim + j] = 0.f;
    logp_out[sample] = 0.f;
    return;
  }
  const float* mean = mean_rows + row * d.act_dim;
  for (int j = 0; j < d.act_dim; ++j) {
    a[j] = mean[j] + expf(effective_log_std(s, theta, j)) * action_noise(seeds, draw, d, row, h, j);
    act_env[row * d.act_dim + j] = fminf(fmaxf(a[j], -action_limit), action_limit);
  }
  logp_out[sample] = gaussian_log_prob(s, theta, mean, a);
}

__global__ void reward_done_step_kernel(TaskId task, RolloutDims d, int h,
                                        const float* __restrict__ state,
                                        const float* __restrict__ act_env,
                                        const float* __restrict__ next_state, float* alive,
                                        float* reward_out) {
  const std::int64_t row = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
  if (row >= d.rows()) return;
  const std::int64_t sample = row * d.horizon + h;
  if (alive[row] == 0.f) {
    reward_out[sample] = 0.f;
    return;
  }
  const float* next = next_state + row * d.obs_dim;
  reward_out[sample] = task_reward(task, state + row * d.obs_dim, act_env + row * d.act_dim, next);
  if (task_done(task, next)) alive[row] = 0.f;
}

// Backward recurrences over trajectories, one warp of 32 trajectories per block: 32 x 32 tiles of
// the [rows][H] arrays pass through shared memory, so every global read and write covers a row's
// consecutive steps (coalesced, where one thread per row would read with a stride of H), and each
// lane then walks its own trajectory's steps in the tile, last to first.
constexpr int kTile = 32;
using Tile = float[kTile][kTile + 1];  // padded: a lane's row and a row's lanes hit distinct banks

// tile[r][j] = src[row0 + r][h0 + j] for the block's rows and the tile's steps; lane j reads step j
// of each row in turn (consecutive addresses across the warp).
__device__ void load_tile(const RolloutDims& d, std::int64_t row0, int rows, int h0, int width,
                          const float* __restrict__ src, Tile& tile) {
  const int lane = threadIdx.x;
  for (int r = 0; r < rows; ++r) {
    if (lane < width) tile[r][lane] = src[(row0 + r) * d.horizon + h0 + lane];
  }
}

// dst[row0 + r][h0 + j] = tile[r][j], the same way round.
__device__ void store_tile(const RolloutDims& d, std::int64_t row0, int rows, int h0, int width,
                           const Tile& tile, float* __restrict__ dst) {
  const int lane = threadIdx.x;
  for (int r = 0; r < rows; ++r) {
    if (lane < width) dst[(row0 + r) * d.horizon + h0 + lane] = tile[r][lane];
  }
}

// returns[i] = reward[i] + discount * returns[i + 1] while the trajectory runs, 0 after its end.
__global__ void returns_kernel(RolloutDims d, const float* __restrict__ reward,
                               const float* __restrict__ valid, float discount,
                               float* __restrict__ returns) {
  __shared__ Tile r_tile, v_tile;
  const int lane = threadIdx.x;
  const std::int64_t row0 = std::int64_t(blockIdx.x) * kTile;
  const int rows = static_cast<int>(min(std::int64_t(kTile), d.rows() - row0));
  float running = 0.f;
  for (int end = d.horizon; end > 0; end -= kTile) {
    const int h0 = max(0, end - kTile), width = end - h0;
    load_tile(d, row0, rows, h0, width, reward, r_tile);
    load_tile(d, row0, rows, h0, width, valid, v_tile);
    __syncwarp();
    if (lane < rows) {
      for (int j = width - 1; j >= 0; --j) {
        running = v_tile[lane][j] != 0.f ? r_tile[lane][j] + discount * running : 0.f;
        r_tile[lane][j] = running;
      }
    }
    __syncwarp();
    store_tile(d, row0, rows, h0, width, r_tile, returns);
    __syncwarp();
  }
}

// Feature k of sample (t, n); k == F is the regression target (the return).
__device__ double feature(const RolloutDims& d, const float* obs, const float* returns,
                          std::int64_t i, int h, int k, float obs_clip) {
  const int F = 2 * d.obs_dim + 4;
  if (k == F) return returns[i];
  if (k < 2 * d.obs_dim) {
    const float raw = obs[i * d.obs_dim + (k % d.obs_dim)];
    const double o = fminf(fmaxf(raw, -obs_clip), obs_clip);
    return k < d.obs_dim ? o : o * o;
  }
  const double s = h / 100.0;
  switch (k - 2 * d.obs_dim) {
    case 0: return s;
    case 1: return s * s;
    case 2: return s * s * s;
  }
  return 1.0;
}

// rows[t][r][k] = feature k of task t's sample begin + r (k == F: the return), 0 for a sample that
// is not valid or past the task's end: the [samples x (F+1)] matrix whose Gram matrix holds the
// normal equations.
__global__ void baseline_rows_kernel(RolloutDims d, const float* __restrict__ obs,
                                     const float* __restrict__ returns, const float* __restrict__ valid,
                                     float obs_clip, std::int64_t begin, int chunk, double* __restrict__ rows) {
  const int F1 = 2 * d.obs_dim + 5;
  const std::int64_t per_task = std::int64_t(d.rollouts) * d.horizon;
  const std::int64_t total = std::int64_t(d.tasks) * chunk * F1;
  for (std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const int k = static_cast<int>(idx % F1);
    const std::int64_t r = (idx / F1) % chunk;
    const std::int64_t t = idx / (std::int64_t(F1) * chunk);
    const std::int64_t n = begin + r;
    double value = 0;
    if (n < per_task) {
      const std::int64_t s = t * per_task + n;
      if (valid[s] != 0.f) value = feature(d, obs, returns, s, static_cast<int>(n % d.horizon), k, obs_clip);
    }
    rows[idx] = value;
  }
}

// One thread per task: Cholesky of X^T X + ridge I (ridge grown 10x up to 5 tries, as rllab),
// then two triangular solves. work: [T][F][F].
__global__ void baseline_solve_kernel(int tasks, int F, double ridge, const double* __restrict__ normal,
                                      double* __restrict__ work, double* __restrict__ coefficients) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= tasks) return;
  const int F1 = F + 1;
  const double* m = normal + std::int64_t(t) * F1 * F1;
  double* L = work + std::int64_t(t) * F * F;
  double* w = coefficients + std::int64_t(t) * F;
  double reg = ridge;
  for (int attempt = 0; attempt < 5; ++attempt, reg *= 10) {
    bool ok = true;
    for (int c = 0; c < F && ok; ++c) {
      for (int r = c; r < F; ++r) {
        double sum = m[r * F1 + c] + (r == c ? reg : 0.0);
        for (int k = 0; k < c; ++k) sum -= L[r * F + k] * L[c * F + k];
        if (r == c) {
          if (!(sum > 0)) {
            ok = false;
            break;
          }
          L[c * F + c] = sqrt(sum);
        } else {
          L[r * F + c] = sum / L[c * F + c];
        }
      }
    }
    if (!ok) continue;
    for (int r = 0; r < F; ++r) {  // L z = X^T y
      double sum = m[r * F1 + F];
      for (int k = 0; k < r; ++k) sum -= L[r * F + k] * w[k];
      w[r] = sum / L[r * F + r];
    }
    for (int r = F - 1; r >= 0; --r) {  // L^T w = z
      double sum = w[r];
      for (int k = r + 1; k < F; ++k) sum -= L[k * F + r] * w[k];
      w[r] = sum / L[r * F + r];
    }
    bool finite = true;
    for (int r = 0; r < F; ++r) finite = finite && isfinite(w[r]);
    if (finite) return;
  }
  for (int r = 0; r < F; ++r) w[r] = 0;
}

// values[i] = the baseline's value features(i) . w of each valid sample (0 otherwise), a thread
// per sample: neighbouring threads read neighbouring observations.
__global__ void baseline_values_kernel(RolloutDims d, const float* __restrict__ obs,
                                       const float* __restrict__ valid,
                                       const double* __restrict__ coefficients, float obs_clip,
                                       float* __restrict__ values) {
  const int F = 2 * d.obs_dim + 4;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < d.samples();
       i += std::int64_t(gridDim.x) * blockDim.x) {
    if (valid[i] == 0.f) {
      values[i] = 0.f;
      continue;
    }
    const double* w = coefficients + (i / (std::int64_t(d.rollouts) * d.horizon)) * F;
    double v = 0;
    for (int k = 0; k < F; ++k) v += feature(d, obs, nullptr, i, static_cast<int>(i % d.horizon), k, obs_clip) * w[k];
    values[i] = static_cast<float>(v);
  }
}

// GAE(discount, lambda) over each trajectory with the values above, tiled as returns_kernel.
__global__ void gae_kernel(RolloutDims d, const float* __restrict__ reward,
                           const float* __restrict__ valid, const float* __restrict__ values,
                           float discount, float gae_lambda, float* __restrict__ advantages) {
  __shared__ Tile r_tile, v_tile, value_tile;
  const int lane = threadIdx.x;
  const std::int64_t row0 = std::int64_t(blockIdx.x) * kTile;
  const int rows = static_cast<int>(min(std::int64_t(kTile), d.rows() - row0));
  float next_value = 0.f, running = 0.f;
  for (int end = d.horizon; end > 0; end -= kTile) {
    const int h0 = max(0, end - kTile), width = end - h0;
    load_tile(d, row0, rows, h0, width, reward, r_tile);
    load_tile(d, row0, rows, h0, width, valid, v_tile);
    load_tile(d, row0, rows, h0, width, values, value_tile);
    __syncwarp();
    if (lane < rows) {
      for (int j = width - 1; j >= 0; --j) {
        if (v_tile[lane][j] == 0.f) {
          r_tile[lane][j] = 0.f;
          next_value = running = 0.f;
          continue;
        }
        const float value = value_tile[lane][j];
        const float delta = r_tile[lane][j] + discount * next_value - value;
        running = delta + discount * gae_lambda * running;
        r_tile[lane][j] = running;
        next_value = value;
      }
    }
    __syncwarp();
    store_tile(d, row0, rows, h0, width, r_tile, advantages);
    __syncwarp();
  }
}

constexpr int kReduceThreads = 256;
// A block-wide sum of `value`, returned to every thread of the block. CUB hands the total to
// thread 0 only, so it goes through shared memory; the barriers make the call safe to repeat.
// Every thread of the block must call it (block-uniform control flow).
template <class T>
__device__ T block_sum_to_all(T value) {
  using Reduce = cub::BlockReduce<T, kReduceThreads>;
  __shared__ typename Reduce::TempStorage temp;
  __shared__ T total;
  const T sum = Reduce(temp).Sum(value);
  if (threadIdx.x == 0) total = sum;
  __syncthreads();
  const T result = total;
  __syncthreads();  // nobody overwrites `total` or `temp` before all have read them
  return result;
}

__global__ void normalize_advantages_kernel(RolloutDims d, const float* __restrict__ valid,
                                            bool normalize, float* __restrict__ advantages,
                                            float* __restrict__ valid_count) {
  const int t = blockIdx.x;
  const std::int64_t per_task = std::int64_t(d.rollouts) * d.horizon;
  const std::int64_t base = t * per_task;
  double count = 0, sum = 0;
  for (std::int64_t n = threadIdx.x; n < per_task; n += kReduceThreads) {
    if (valid[base + n] == 0.f) continue;
    count += 1;
    sum += advantages[base + n];
  }
  // Both totals reach every thread, so the branch below is uniform across the block.
  const double total_count = block_sum_to_all(count);
  const double total_sum = block_sum_to_all(sum);
  if (threadIdx.x == 0) valid_count[t] = static_cast<float>(total_count);
  if (!normalize || total_count == 0) return;
  const double mean = total_sum / total_count;
  double sum_sq = 0;
  for (std::int64_t n = threadIdx.x; n < per_task; n += kReduceThreads) {
    if (valid[base + n] == 0.f) continue;
    const double e = advantages[base + n] - mean;
    sum_sq += e * e;
  }
  const double stddev = sqrt(block_sum_to_all(sum_sq) / total_count);
  for (std::int64_t n = threadIdx.x; n < per_task; n += kReduceThreads) {
    if (valid[base + n] == 0.f) continue;
    advantages[base + n] = static_cast<float>((advantages[base + n] - mean) / (stddev + 1e-8));
  }
}

// out[i] = log pi_theta_t(act_i | obs_i) from the mean at obs_i, a thread per sample.
__global__ void log_prob_kernel(PolicyShape s, int tasks, std::int64_t per_task, const float* __restrict__ params,
                                bool params_per_task, const float* __restrict__ mean, const float* __restrict__ act,
                                float* __restrict__ out) {
  const std::int64_t total = std::int64_t(tasks) * per_task;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const float* theta = params + (params_per_task ? (i / per_task) * s.parameter_count : 0);
    out[i] = gaussian_log_prob(s, theta, mean + i * s.act_dim, act + i * s.act_dim);
  }
}

// act[i] = policy_action over the means already in act, a thread per element.
__global__ void action_kernel(PolicyShape s, std::int64_t rows, const float* __restrict__ theta, bool sample,
                              std::uint64_t seed, float limit, float* __restrict__ act) {
  const std::int64_t total = rows * s.act_dim;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t n = i / s.act_dim;
    const int j = int(i % s.act_dim);
    const float noise = sample ? normal_at(seed, std::uint64_t(n), std::uint64_t(j)) : 0.f;
    act[i] = policy_action(s, theta, j, act[i], noise, limit);
  }
}

// out[i] = KL(pi_old || pi_new) at obs_i from both means, a thread per sample.
__global__ void kl_kernel(PolicyShape s, int tasks, std::int64_t per_task, const float* __restrict__ old_params,
                          bool old_per_task, const float* __restrict__ old_mean, const float* __restrict__ new_params,
                          bool new_per_task, const float* __restrict__ new_mean, float* __restrict__ out) {
  const std::int64_t total = std::int64_t(tasks) * per_task;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t t = i / per_task;
    const float* a = old_params + (old_per_task ? t * s.parameter_count : 0);
    const float* b = new_params + (new_per_task ? t * s.parameter_count : 0);
    out[i] = gaussian_kl(s, a, old_mean + i * s.act_dim, b, new_mean + i * s.act_dim);
  }
}

// terms[t] = {sum A exp(logp - logp_old) over samples with A != 0, sum of KL over valid samples}.
__global__ void surrogate_kl_kernel(std::int64_t per_task, const float* __restrict__ advantage,
                                    const float* __restrict__ valid, const float* __restrict__ logp,
                                    const float* __restrict__ logp_old, const float* __restrict__ kl,
                                    double* __restrict__ terms) {
  using Reduce = cub::BlockReduce<double, kReduceThreads>;
  __shared__ typename Reduce::TempStorage temp;
  const std::int64_t base = std::int64_t(blockIdx.x) * per_task;
  double surrogate = 0, divergence = 0;
  for (std::int64_t n = threadIdx.x; n < per_task; n += kReduceThreads) {
    const std::int64_t i = base + n;
    if (advantage[i] != 0.f) surrogate += double(advantage[i]) * exp(double(logp[i]) - double(logp_old[i]));
    if (valid[i] != 0.f) divergence += double(kl[i]);
  }
  const double total_surrogate = Reduce(temp).Sum(surrogate);
  __syncthreads();
  const double total_divergence = Reduce(temp).Sum(divergence);
  if (threadIdx.x == 0) {
    terms[2 * blockIdx.x] = total_surrogate;
    terms[2 * blockIdx.x + 1] = total_divergence;
  }
}

unsigned blocks_for(std::int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

}  // namespace

void policy_act_step(CudaResources& cuda, const PolicyShape& s, const RolloutDims& d, int h,
                     const float* params, const float* state, const float* alive,
                     const NoiseSeeds& seeds, std::uint64_t draw, float action_limit,
                     const PolicyStepScratch& scratch, float* obs_out, float* act_out, float* logp_out,
                     float* valid_out, float* act_env) {
  if (d.rows() == 0) return;
  // Every row's mean, also of ended trajectories (their states stay finite; the step ignores them).
  policy_means(cuda, s, d.tasks, seeds.count, d.rollouts, params, true, state,
               std::int64_t(d.rollouts) * d.obs_dim, scratch.hidden_a, scratch.hidden_b, scratch.mean,
               std::int64_t(d.rollouts) * d.act_dim);
  act_step_kernel<<<blocks_for(d.rows(), kRowThreads), kRowThreads, 0, cuda.stream>>>(
      s, d, h, params, state, alive, scratch.mean, seeds, draw, action_limit, obs_out, act_out, logp_out,
      valid_out, act_env);
  MBMPO_KERNEL_CHECK("act_step_kernel");
}

void reward_done_step(CudaResources& cuda, TaskId task, const RolloutDims& d, int h,
                      const float* state, const float* act_env, const float* next_state,
                      float* alive, float* reward_out) {
  if (d.rows() == 0) return;
  reward_done_step_kernel<<<blocks_for(d.rows(), kRowThreads), kRowThreads, 0, cuda.stream>>>(
      task, d, h, state, act_env, next_state, alive, reward_out);
  MBMPO_KERNEL_CHECK("reward_done_step_kernel");
}

void discounted_returns(CudaResources& cuda, const RolloutDims& d, const float* reward,
                        const float* valid, float discount, float* returns) {
  if (d.rows() == 0) return;
  returns_kernel<<<blocks_for(d.rows(), kTile), kTile, 0, cuda.stream>>>(d, reward, valid, discount, returns);
  MBMPO_KERNEL_CHECK("returns_kernel");
}

void fit_linear_baseline(CudaResources& cuda, const RolloutDims& d, const float* obs,
                         const float* returns, const float* valid, double ridge, float obs_clip,
                         double* coefficients) {
  if (d.tasks == 0) return;
  const int F = 2 * d.obs_dim + 4, F1 = F + 1;
  const std::int64_t per_task = std::int64_t(d.rollouts) * d.horizon;
  const int chunk = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(per_task, kBaselineChunk)));
  DeviceScratch<double> normal(cuda.stream, std::size_t(d.tasks) * F1 * F1);
  DeviceScratch<double> work(cuda.stream, std::size_t(d.tasks) * F * F);
  DeviceScratch<double> rows(cuda.stream, std::size_t(d.tasks) * chunk * F1);
  // Row-major rows[t] (chunk x F1) is column-major A (F1 x chunk), lda F1; normal[t] = A A^T
  // (symmetric, so its layout does not matter). Chunks are added in order: deterministic.
  if (per_task == 0) MBMPO_CUDA_CHECK(cudaMemsetAsync(normal.get(), 0, sizeof(double) * d.tasks * F1 * F1, cuda.stream));
  for (std::int64_t begin = 0; begin < per_task; begin += chunk) {
    const std::int64_t total = std::int64_t(d.tasks) * chunk * F1;
    baseline_rows_kernel<<<elementwise_blocks(total), kElementwiseThreads, 0, cuda.stream>>>(
        d, obs, returns, valid, obs_clip, begin, chunk, rows.get());
    MBMPO_KERNEL_CHECK("baseline_rows_kernel");
    seed_dgemm(cuda, d.seeds, CUBLAS_OP_N, CUBLAS_OP_T, F1, F1, chunk, 1.0, rows.get(), F1,
               std::int64_t(chunk) * F1, rows.get(), F1, std::int64_t(chunk) * F1, begin == 0 ? 0.0 : 1.0,
               normal.get(), F1, std::int64_t(F1) * F1, d.tasks);
  }
  baseline_solve_kernel<<<blocks_for(d.tasks, 32), 32, 0, cuda.stream>>>(d.tasks, F, ridge, normal.get(),
                                                                          work.get(), coefficients);
  MBMPO_KERNEL_CHECK("baseline_solve_kernel");
}

void gae_advantages(CudaResources& cuda, const RolloutDims& d, const float* obs,
                    const float* reward, const float* valid, const double* coefficients,
                    float discount, float gae_lambda, float obs_clip, bool normalize,
                    float* advantages, float* valid_count) {
  if (d.tasks == 0) return;
  if (d.rows() > 0) {
    DeviceScratch<float> values(cuda.stream, static_cast<std::size_t>(d.samples()));
    baseline_values_kernel<<<elementwise_blocks(d.samples()), kElementwiseThreads, 0, cuda.stream>>>(
        d, obs, valid, coefficients, obs_clip, values.get());
    MBMPO_KERNEL_CHECK("baseline_values_kernel");
    gae_kernel<<<blocks_for(d.rows(), kTile), kTile, 0, cuda.stream>>>(d, reward, valid, values.get(), discount,
                                                                      gae_lambda, advantages);
    MBMPO_KERNEL_CHECK("gae_kernel");
  }
  normalize_advantages_kernel<<<d.tasks, kReduceThreads, 0, cuda.stream>>>(d, valid, normalize, advantages, valid_count);
  MBMPO_KERNEL_CHECK("normalize_advantages_kernel");
}

namespace {
// One thread per (seed g, parameter p): the seed's tasks summed in task order, as the CPU does.
__global__ void task_mean_plus_kernel(int seeds, int per_seed, int P, const float* __restrict__ rows,
                                      float damping, const float* __restrict__ v, float* __restrict__ out) {
  const std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
  if (idx >= std::int64_t(seeds) * P) return;
  const int g = static_cast<int>(idx / P), p = static_cast<int>(idx % P);
  const float* column = rows + std::int64_t(g) * per_seed * P + p;
  float sum = 0.f;
  for (int t = 0; t < per_seed; ++t) sum += column[std::int64_t(t) * P];
  out[idx] = sum / float(per_seed) + (v ? damping * v[idx] : 0.f);
}

}  // namespace

void task_mean_plus(CudaResources& cuda, int tasks, int P, const float* rows, float damping,
                    const float* v, float* out, int seeds) {
  MBMPO_CHECK(seeds >= 1 && tasks % seeds == 0, "task_mean_plus: ", seeds, " seeds do not split ", tasks,
              " tasks evenly");
  const std::int64_t count = std::int64_t(seeds) * P;
  if (count == 0) return;
  task_mean_plus_kernel<<<blocks_for(count, kElementwiseThreads), kElementwiseThreads, 0, cuda.stream>>>(
      seeds, tasks / seeds, P, rows, damping, v, out);
  MBMPO_KERNEL_CHECK("task_mean_plus_kernel");
}


void log_probs(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds, std::int64_t per_task,
               const float* params, bool params_per_task, const float* obs, const float* act,
               float* out) {
  if (tasks == 0 || per_task == 0) return;
  const std::int64_t samples = std::int64_t(tasks) * per_task;
  DeviceScratch<float> mean(cuda.stream, std::size_t(samples) * s.act_dim);
  policy_sample_means(cuda, s, tasks, seeds, per_task, params, params_per_task, obs, mean.get());
  log_prob_kernel<<<elementwise_blocks(samples), kElementwiseThreads, 0, cuda.stream>>>(
      s, tasks, per_task, params, params_per_task, mean.get(), act, out);
  MBMPO_KERNEL_CHECK("log_prob_kernel");
}

void policy_actions(CudaResources& cuda, const PolicyShape& s, std::int64_t rows, const float* theta,
                    const float* obs, bool sample, std::uint64_t seed, float limit, float* act) {
  if (rows == 0) return;
  policy_sample_means(cuda, s, 1, 1, rows, theta, false, obs, act);
  action_kernel<<<elementwise_blocks(rows * s.act_dim), kElementwiseThreads, 0, cuda.stream>>>(s, rows, theta, sample,
                                                                                              seed, limit, act);
  MBMPO_KERNEL_CHECK("action_kernel");
}

void kl_divergences(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds, std::int64_t per_task,
                    const float* old_params, bool old_per_task, const float* new_params,
                    bool new_per_task, const float* obs, float* out) {
  if (tasks == 0 || per_task == 0) return;
  const std::int64_t samples = std::int64_t(tasks) * per_task;
  DeviceScratch<float> old_mean(cuda.stream, std::size_t(samples) * s.act_dim);
  DeviceScratch<float> new_mean(cuda.stream, std::size_t(samples) * s.act_dim);
  policy_sample_means(cuda, s, tasks, seeds, per_task, old_params, old_per_task, obs, old_mean.get());
  policy_sample_means(cuda, s, tasks, seeds, per_task, new_params, new_per_task, obs, new_mean.get());
  kl_kernel<<<elementwise_blocks(samples), kElementwiseThreads, 0, cuda.stream>>>(
      s, tasks, per_task, old_params, old_per_task, old_mean.get(), new_params, new_per_task, new_mean.get(), out);
  MBMPO_KERNEL_CHECK("kl_kernel");
}

void surrogate_kl_terms(CudaResources& cuda, int tasks, std::int64_t per_task,
                        const float* advantage, const float* valid, const float* logp,
                        const float* logp_old, const float* kl, double* terms) {
  if (tasks == 0) return;
  surrogate_kl_kernel<<<tasks, kReduceThreads, 0, cuda.stream>>>(per_task, advantage, valid, logp,
                                                                 logp_old, kl, terms);
  MBMPO_KERNEL_CHECK("surrogate_kl_kernel");
}

}  // namespace mbmpo::cuda
