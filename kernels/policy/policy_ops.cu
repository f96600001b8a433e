// CUDA backend of the policy-side operations of a meta-step (contracts: policy_ops_cpu.hpp).
//   policy_act_step_kernel     one thread per trajectory, a warp per block, the task's policy in
//                              shared memory; noise keyed by the task's seed (NoiseSeeds: several
//                              seeds' tasks in one launch draw what separate launches would)
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
//   surrogate / KL sums        one block per task, in double
//   task_mean_plus_kernel      one thread per (group, parameter), the group's tasks summed in
//                              task order (the meta-gradient and the CG operator's mean)
#include <cub/block/block_reduce.cuh>

#include "host/core/cuda_context.hpp"
#include "kernels/core/device_scratch.cuh"
#include "kernels/core/launch.cuh"
#include "kernels/policy/policy_ops_cuda.hpp"

namespace mbmpo::cuda {
namespace {

constexpr int kRowThreads = 128;
constexpr int kActThreads = 32;
constexpr std::int64_t kBaselineChunk = 4096;  // samples per task per Gram-matrix product

// Copies one policy's parameters into shared memory; every thread of the block takes part.
__device__ void load_policy(const float* __restrict__ theta, int count, float* smem) {
  for (int i = threadIdx.x; i < count; i += blockDim.x) smem[i] = theta[i];
  __syncthreads();
}

__global__ void policy_act_step_kernel(PolicyShape s, RolloutDims d, int h,
                                       const float* __restrict__ params,
                                       const float* __restrict__ state,
                                       const float* __restrict__ alive, NoiseSeeds seeds,
                                       std::uint64_t draw, float action_limit, float* obs_out,
                                       float* act_out, float* logp_out, float* valid_out,
                                       float* act_env) {
  extern __shared__ float theta[];
  const int task = blockIdx.y;
  load_policy(params + std::int64_t(task) * s.parameter_count, s.parameter_count, theta);
  const int m = blockIdx.x * blockDim.x + threadIdx.x;
  if (m >= d.rollouts) return;
  const std::int64_t row = std::int64_t(task) * d.rollouts + m;
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
  PolicyActivations<float> acts;
  policy_forward(s, theta, o, acts);
  const float* mean = policy_mean(s, acts);
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

__global__ void log_probs_kernel(PolicyShape s, std::int64_t per_task, const float* __restrict__ params,
                                 bool params_per_task, const float* __restrict__ obs,
                                 const float* __restrict__ act, float* __restrict__ out) {
  extern __shared__ float theta[];
  const int t = blockIdx.y;
  load_policy(params + (params_per_task ? std::int64_t(t) * s.parameter_count : 0), s.parameter_count, theta);
  const std::int64_t n = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
  if (n >= per_task) return;
  const std::int64_t i = std::int64_t(t) * per_task + n;
  PolicyActivations<float> acts;
  policy_forward(s, theta, obs + i * s.obs_dim, acts);
  out[i] = gaussian_log_prob(s, theta, policy_mean(s, acts), act + i * s.act_dim);
}

__global__ void kl_kernel(PolicyShape s, std::int64_t per_task, const float* __restrict__ old_params,
                          bool old_per_task, const float* __restrict__ new_params, bool new_per_task,
                          const float* __restrict__ obs, float* __restrict__ out) {
  extern __shared__ float smem[];
  float* a = smem;
  float* b = smem + s.parameter_count;
  const int t = blockIdx.y;
  for (int i = threadIdx.x; i < s.parameter_count; i += blockDim.x) {
    b[i] = new_params[(new_per_task ? std::int64_t(t) * s.parameter_count : 0) + i];
  }
  load_policy(old_params + (old_per_task ? std::int64_t(t) * s.parameter_count : 0), s.parameter_count, a);
  const std::int64_t n = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
  if (n >= per_task) return;
  const std::int64_t i = std::int64_t(t) * per_task + n;
  PolicyActivations<float> fa, fb;
  policy_forward(s, a, obs + i * s.obs_dim, fa);
  policy_forward(s, b, obs + i * s.obs_dim, fb);
  out[i] = gaussian_kl(s, a, policy_mean(s, fa), b, policy_mean(s, fb));
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

// Dynamic shared memory above the 48 KiB default needs an opt-in per kernel.
template <class Kernel>
void allow_shared_memory(Kernel kernel, std::size_t bytes) {
  if (bytes > 48 * 1024) {
    int device = 0, limit = 0;
    MBMPO_CUDA_CHECK(cudaGetDevice(&device));
    MBMPO_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    MBMPO_CHECK(bytes <= std::size_t(limit), "the policy is too large for the CUDA policy kernels: they need ",
                bytes, " bytes of shared memory per block and the device has ", limit,
                " (use fewer or narrower hidden layers)");
    MBMPO_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  }
}

}  // namespace

void policy_act_step(CudaResources& cuda, const PolicyShape& s, const RolloutDims& d, int h,
                     const float* params, const float* state, const float* alive,
                     const NoiseSeeds& seeds, std::uint64_t draw, float action_limit, float* obs_out,
                     float* act_out, float* logp_out, float* valid_out, float* act_env) {
  if (d.rows() == 0) return;
  const std::size_t smem = std::size_t(s.parameter_count) * sizeof(float);
  allow_shared_memory(policy_act_step_kernel, smem);
  // One warp per block: at paper scale (50 rollouts a task) 2 blocks per task with 50 of 64 threads
  // busy, instead of one block per task with 50 of 128.
  policy_act_step_kernel<<<dim3(blocks_for(d.rollouts, kActThreads), d.tasks), kActThreads, smem, cuda.stream>>>(
      s, d, h, params, state, alive, seeds, draw, action_limit, obs_out, act_out, logp_out, valid_out, act_env);
  MBMPO_KERNEL_CHECK("policy_act_step_kernel");
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
  const double one = 1.0, zero = 0.0;
  if (per_task == 0) MBMPO_CUDA_CHECK(cudaMemsetAsync(normal.get(), 0, sizeof(double) * d.tasks * F1 * F1, cuda.stream));
  for (std::int64_t begin = 0; begin < per_task; begin += chunk) {
    const std::int64_t total = std::int64_t(d.tasks) * chunk * F1;
    baseline_rows_kernel<<<elementwise_blocks(total), kElementwiseThreads, 0, cuda.stream>>>(
        d, obs, returns, valid, obs_clip, begin, chunk, rows.get());
    MBMPO_KERNEL_CHECK("baseline_rows_kernel");
    MBMPO_CUBLAS_CHECK(cublasDgemmStridedBatched(cuda.cublas, CUBLAS_OP_N, CUBLAS_OP_T, F1, F1, chunk, &one,
                                                 rows.get(), F1, std::int64_t(chunk) * F1, rows.get(), F1,
                                                 std::int64_t(chunk) * F1, begin == 0 ? &zero : &one,
                                                 normal.get(), F1, std::int64_t(F1) * F1, d.tasks));
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
// One thread per (group g, parameter p): the group's tasks summed in task order, as the CPU does.
__global__ void task_mean_plus_kernel(int groups, int per_group, int P, const float* __restrict__ rows,
                                      float damping, const float* __restrict__ v, float* __restrict__ out) {
  const std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
  if (idx >= std::int64_t(groups) * P) return;
  const int g = static_cast<int>(idx / P), p = static_cast<int>(idx % P);
  const float* column = rows + std::int64_t(g) * per_group * P + p;
  float sum = 0.f;
  for (int t = 0; t < per_group; ++t) sum += column[std::int64_t(t) * P];
  out[idx] = sum / float(per_group) + (v ? damping * v[idx] : 0.f);
}

}  // namespace

void task_mean_plus(CudaResources& cuda, int tasks, int P, const float* rows, float damping,
                    const float* v, float* out, int groups) {
  MBMPO_CHECK(groups >= 1 && tasks % groups == 0, "task_mean_plus: ", groups, " groups do not split ", tasks,
              " tasks evenly");
  const std::int64_t count = std::int64_t(groups) * P;
  if (count == 0) return;
  task_mean_plus_kernel<<<blocks_for(count, kElementwiseThreads), kElementwiseThreads, 0, cuda.stream>>>(
      groups, tasks / groups, P, rows, damping, v, out);
  MBMPO_KERNEL_CHECK("task_mean_plus_kernel");
}


void log_probs(CudaResources& cuda, const PolicyShape& s, int tasks, std::int64_t per_task,
               const float* params, bool params_per_task, const float* obs, const float* act,
               float* out) {
  if (tasks == 0 || per_task == 0) return;
  const std::size_t smem = std::size_t(s.parameter_count) * sizeof(float);
  allow_shared_memory(log_probs_kernel, smem);
  log_probs_kernel<<<dim3(blocks_for(per_task, kRowThreads), tasks), kRowThreads, smem, cuda.stream>>>(
      s, per_task, params, params_per_task, obs, act, out);
  MBMPO_KERNEL_CHECK("log_probs_kernel");
}

void kl_divergences(CudaResources& cuda, const PolicyShape& s, int tasks, std::int64_t per_task,
                    const float* old_params, bool old_per_task, const float* new_params,
                    bool new_per_task, const float* obs, float* out) {
  if (tasks == 0 || per_task == 0) return;
  const std::size_t smem = 2 * std::size_t(s.parameter_count) * sizeof(float);
  allow_shared_memory(kl_kernel, smem);
  kl_kernel<<<dim3(blocks_for(per_task, kRowThreads), tasks), kRowThreads, smem, cuda.stream>>>(
      s, per_task, old_params, old_per_task, new_params, new_per_task, obs, out);
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
