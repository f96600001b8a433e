// CUDA backend of the weight-normalised ensemble linear layer. All K models advance together:
// each step below is one launch (or one strided-batched cuBLAS call) for every model.
//
// weights:  W = diag(g/||V||) V          (weight_norm_kernel, one block per output unit), once per
//                                        set of parameters: a caller that keeps the parameters
//                                        over several calls (a rollout, a minibatch's forward and
//                                        backward) passes W in; otherwise it is computed per call
// forward:  pre = x W^T                  (cublasSgemmStridedBatched over K; with several seeds,
//                                        one call per seed: kernels/core/seed_gemm.cu)
//           pre += b, y = act(pre)       (bias_activation_kernel)
// backward: dP = dy * act'(pre)          (activation_backward_kernel)
//           dW = dP^T x                  (cuBLAS, written into dv)
//           dx = dP W                    (cuBLAS)
//           db = sum_rows dP             (column_sum_kernel)
//           dg, dv from dW in place      (weight_norm_backward_kernel)
//
// CPU twin: host/models/ensemble_linear_cpu.hpp. Tests: tests/models/test_ensemble_linear.cpp
// (CPU against CUDA, finite differences), test_dynamics_ensemble.cpp (fits, seeds together).
// Bench: `mbmpo bench --suite predict|model_fit`.
#include <cub/block/block_reduce.cuh>

#include "host/core/cuda_context.hpp"
#include "kernels/core/device_scratch.cuh"
#include "kernels/core/launch.cuh"
#include "kernels/core/seed_gemm_cuda.hpp"
#include "kernels/models/ensemble_linear_cuda.hpp"

namespace mbmpo::cuda {
namespace {

constexpr int kRowThreads = 128;
using RowReduce = cub::BlockReduce<float, kRowThreads>;

// One block per output unit (model k, unit i): W_i = g_i v_i / ||v_i||.
__global__ void weight_norm_kernel(const float* __restrict__ v, const float* __restrict__ g, int in,
                                   float* __restrict__ w) {
  __shared__ typename RowReduce::TempStorage temp;
  __shared__ float scale;
  const std::int64_t row = blockIdx.x;
  const float* v_row = v + row * in;
  float sum_sq = 0.f;
  for (int j = threadIdx.x; j < in; j += kRowThreads) sum_sq += v_row[j] * v_row[j];
  const float total = RowReduce(temp).Sum(sum_sq);
  if (threadIdx.x == 0) scale = g[row] / sqrtf(total);
  __syncthreads();
  for (int j = threadIdx.x; j < in; j += kRowThreads) w[row * in + j] = scale * v_row[j];
}

// pre/y over [K][rows][out]: p = product + b; pre = p (if wanted); y = act(p). `product` may alias
// pre or y: each element is read before it is written by the same thread.
__global__ void bias_activation_kernel(std::int64_t total, int rows, int out, Activation act,
                                       const float* product, const float* __restrict__ b,
                                       float* pre, float* y) {
  const std::int64_t per_model = static_cast<std::int64_t>(rows) * out;
  for (std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t k = idx / per_model;
    const int i = static_cast<int>(idx % out);
    const float p = product[idx] + (b ? b[k * out + i] : 0.f);
    if (pre) pre[idx] = p;
    y[idx] = activate(act, p);
  }
}

__global__ void activation_backward_kernel(std::int64_t total, Activation act,
                                           const float* __restrict__ pre,
                                           const float* __restrict__ dy, float* __restrict__ dpre) {
  for (std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    dpre[idx] = dy[idx] * activation_derivative(act, pre[idx]);
  }
}

// sums[k][c] = sum_r m[k][r][c]. Grid (ceil(cols/32), K), block (32, 8): threads along a row read
// consecutive columns (coalesced), the 8 row-lanes are combined in shared memory.
constexpr int kSumCols = 32;
constexpr int kSumRowLanes = 8;
__global__ void column_sum_kernel(const float* __restrict__ m, int rows, int cols,
                                  float* __restrict__ sums) {
  __shared__ float partial[kSumRowLanes][kSumCols + 1];
  const std::int64_t k = blockIdx.y;
  const int col = blockIdx.x * kSumCols + threadIdx.x;
  float acc = 0.f;
  if (col < cols) {
    for (int r = threadIdx.y; r < rows; r += kSumRowLanes) acc += m[(k * rows + r) * cols + col];
  }
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    float total = 0.f;
    for (int lane = 0; lane < kSumRowLanes; ++lane) total += partial[lane][threadIdx.x];
    sums[k * cols + col] = total;
  }
}

// One block per output unit. On entry dv holds dW (gradient w.r.t. the effective weight); on exit
// dg_i = <dW_i, v_i>/n_i and dv_i = (g_i/n_i)(dW_i - v_i dg_i/n_i). Every element is read and
// rewritten by the same thread, so working in place is safe.
__global__ void weight_norm_backward_kernel(const float* __restrict__ v,
                                            const float* __restrict__ g, int in, float* dv,
                                            float* __restrict__ dg) {
  __shared__ typename RowReduce::TempStorage temp;
  __shared__ float norm, grad_gain;
  const std::int64_t row = blockIdx.x;
  const float* v_row = v + row * in;
  float* dv_row = dv + row * in;
  float sum_sq = 0.f, dot = 0.f;
  for (int j = threadIdx.x; j < in; j += kRowThreads) {
    sum_sq += v_row[j] * v_row[j];
    dot += dv_row[j] * v_row[j];
  }
  const float total_sq = RowReduce(temp).Sum(sum_sq);
  __syncthreads();  // temp storage is reused by the second reduction
  const float total_dot = RowReduce(temp).Sum(dot);
  if (threadIdx.x == 0) {
    norm = sqrtf(total_sq);
    grad_gain = total_dot / norm;
    dg[row] = grad_gain;
  }
  __syncthreads();
  const float scale = g[row] / norm;
  const float along_v = grad_gain / norm;
  for (int j = threadIdx.x; j < in; j += kRowThreads) {
    dv_row[j] = scale * (dv_row[j] - v_row[j] * along_v);
  }
}

void launch_weight_norm(cudaStream_t stream, const EnsembleLinearDims& d, const float* v,
                        const float* g, float* w) {
  weight_norm_kernel<<<static_cast<unsigned>(d.models * d.out), kRowThreads, 0, stream>>>(
      v, g, static_cast<int>(d.in), w);
  MBMPO_KERNEL_CHECK("weight_norm_kernel");
}

}  // namespace

void ensemble_weight_norm(CudaResources& cuda, const EnsembleLinearDims& d, const float* v,
                          const float* g, float* w) {
  if (d.models * d.out == 0) return;
  launch_weight_norm(cuda.stream, d, v, g, w);
}

void ensemble_linear_forward(CudaResources& cuda, const EnsembleLinearDims& d, Activation act,
                             const float* x, const float* v, const float* g, const float* given_w,
                             const float* b, float* pre, float* y, bool tf32) {
  const int rows = static_cast<int>(d.rows), in = static_cast<int>(d.in),
            out = static_cast<int>(d.out);
  const std::int64_t total = d.models * d.rows * d.out;
  if (total == 0) return;
  DeviceScratch<float> own_w(cuda.stream, given_w ? 0 : static_cast<std::size_t>(d.models * d.out * d.in));
  if (!given_w) launch_weight_norm(cuda.stream, d, v, g, own_w.get());
  const float* w = given_w ? given_w : own_w.get();

  // Row-major pre[k] (rows x out) is column-major (out x rows) = W[k] x[k]^T, where the row-major
  // W[k] (out x in) is a column-major (in x out) matrix used transposed.
  float* product = pre ? pre : y;
  const int seeds = static_cast<int>(d.seeds);
  seed_sgemm(cuda, seeds, tf32, CUBLAS_OP_T, CUBLAS_OP_N, out, rows, in, 1.f, w, in, d.out * d.in, x, in,
             d.rows * d.in, 0.f, product, out, d.rows * d.out, static_cast<int>(d.models));

  if (!b && !pre && act == Activation::identity) return;  // the product already is y
  bias_activation_kernel<<<elementwise_blocks(total), kElementwiseThreads, 0, cuda.stream>>>(
      total, rows, out, act, product, b, pre, y);
  MBMPO_KERNEL_CHECK("bias_activation_kernel");
}

void ensemble_linear_backward(CudaResources& cuda, const EnsembleLinearDims& d, Activation act,
                              const float* x, const float* v, const float* g, const float* given_w,
                              const float* pre, const float* dy, float* dx, float* dv, float* dg,
                              float* db, bool tf32) {
  const int rows = static_cast<int>(d.rows), in = static_cast<int>(d.in),
            out = static_cast<int>(d.out), models = static_cast<int>(d.models), seeds = static_cast<int>(d.seeds);
  const std::int64_t total = d.models * d.rows * d.out;

  DeviceScratch<float> dpre(cuda.stream, static_cast<std::size_t>(total));
  if (total > 0) {
    activation_backward_kernel<<<elementwise_blocks(total), kElementwiseThreads, 0, cuda.stream>>>(
        total, act, pre, dy, dpre.get());
    MBMPO_KERNEL_CHECK("activation_backward_kernel");
  }

  // dW[k] (row-major out x in) is column-major (in x out) = x[k]^T-as-stored (in x rows) times
  // dP[k]^T (rows x out). With rows = 0 cuBLAS writes beta*C = 0, the right gradient.
  seed_sgemm(cuda, seeds, tf32, CUBLAS_OP_N, CUBLAS_OP_T, in, out, rows, 1.f, x, in, d.rows * d.in, dpre.get(),
             out, d.rows * d.out, 0.f, dv, in, d.out * d.in, models);

  if (dx && d.rows > 0) {
    DeviceScratch<float> own_w(cuda.stream, given_w ? 0 : static_cast<std::size_t>(d.models * d.out * d.in));
    if (!given_w) launch_weight_norm(cuda.stream, d, v, g, own_w.get());
    const float* w = given_w ? given_w : own_w.get();
    // dx[k] (row-major rows x in) is column-major (in x rows) = W[k]-as-stored (in x out) dP[k]^T.
    seed_sgemm(cuda, seeds, tf32, CUBLAS_OP_N, CUBLAS_OP_N, in, rows, out, 1.f, w, in, d.out * d.in,
               dpre.get(), out, d.rows * d.out, 0.f, dx, in, d.rows * d.in, models);
  }

  const dim3 sum_grid(static_cast<unsigned>((out + kSumCols - 1) / kSumCols),
                      static_cast<unsigned>(models));
  column_sum_kernel<<<sum_grid, dim3(kSumCols, kSumRowLanes), 0, cuda.stream>>>(dpre.get(), rows,
                                                                                out, db);
  MBMPO_KERNEL_CHECK("column_sum_kernel");

  weight_norm_backward_kernel<<<static_cast<unsigned>(d.models * d.out), kRowThreads, 0,
                                cuda.stream>>>(v, g, in, dv, dg);
  MBMPO_KERNEL_CHECK("weight_norm_backward_kernel");
}

}  // namespace mbmpo::cuda
