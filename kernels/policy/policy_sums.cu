// CUDA backend of the policy's per-task sums over samples: log-probability gradients, Hessian-
// vector products (the inner step's Jacobian) and Fisher-vector products (the CG's operator).
// The structure is the CPU's (host/policy/policy_batch_cpu.hpp): a task's samples go through the
// mean MLP as [n x width] matrices, every product one cuBLAS call strided over the T tasks, every
// element-wise step one launch over all tasks. Samples run in chunks of at most kMaxChunkRows per
// task; sums over samples are products (with a vector of ones for the bias and log-std sums),
// accumulated chunk after chunk with beta = 1, so the order is fixed and two runs give the same
// bits (cuBLAS is deterministic on one stream without atomics mode). Per layer l, theta_t's
// W_l [out x in], b_l; X_0 = obs; X_l = H_{l-1}; v_t the vector (its blocks V_l, vb_l):
//
// forward:   H_l = X_l W_l^T                                   (cuBLAS)
//            H_l = tanh(H_l + b_l), no tanh on the last layer  (bias_tanh, policy_forward.cu)
// tangent:   R_l = X_l V_l^T  [+ R_{l-1} W_l^T for l > 0]      (cuBLAS, 1 or 2 calls)
//            R_l = tanh_tangent(H_l, R_l + vb_l)               (tangent_epilogue_kernel)
// output:    G, RG, E = per-element terms of act, mean, R{mean}, weight
//                                                              (output_terms_kernel<Op>)
//            sum[log_std] += E^T 1                             (cuBLAS)
// backward, l = L-1 .. 0:
//            sum[W_l] += G^T X_l   (HVP: RG^T X_l + G^T R_{l-1})  (cuBLAS, 1 or 2 calls)
//            sum[b_l] += G^T 1     (HVP: RG^T 1)                  (cuBLAS)
//            B = G W_l             (HVP: also RB = G V_l + RG W_l)  (cuBLAS, 1 or 3 calls)
//            G = tanh_backward(B, H_{l-1}), RG = tanh_backward_tangent(B, RB, H_{l-1}, R_{l-1})
//                                                              (hidden_backward_kernel)
// finish:    out[t] = base + factor_t * sum[t]                 (finish_kernel)
//
// theta_t is params + t * P (params_per_task: a row per task, e.g. the meta-policies of several
// seeds tiled to their tasks) or one shared row (stride 0 in every product). The inner step's
// policy_gradient_step may write its output over its per-task params (finish reads base first).
//
// The tasks are `seeds` equal blocks, one per seed of a seed: every product is issued per seed
// as a single run's call (kernels/core/seed_gemm.cu); the element-wise launches cover all tasks.
//
// The per-element maths (OutputTerms, tanh_backward, ...) is gaussian_policy.cuh's, which the
// per-sample CPU reference runs too. CPU twin: host/policy/policy_batch_cpu.hpp. Tests:
// tests/policy/test_meta_update.cpp, test_policy.cpp (finite differences in double, CPU against
// CUDA). Bench: `mbmpo bench --suite inner_step|meta_update`. Row-major [rows x cols] buffers are column-major
// [cols x rows] to cuBLAS; each call below says which.
#include <algorithm>

#include "host/core/cuda_check.hpp"
#include "host/core/cuda_context.hpp"
#include "host/core/cuda_graph.hpp"
#include "host/core/memory.hpp"
#include "kernels/core/launch.cuh"
#include "kernels/core/seed_gemm_cuda.hpp"
#include "kernels/policy/gaussian_policy.cuh"
#include "kernels/policy/policy_forward_cuda.hpp"
#include "kernels/policy/policy_sums_cuda.hpp"

namespace mbmpo::cuda {
namespace {

// Rows per task per chunk at most: bounds the activations' memory (and the vector of ones).
constexpr std::int64_t kMaxChunkRows = 16384;
// The chunk is sized so that kReferenceTasks tasks' activations take at most kWorkspaceFloats
// (256 MiB); it depends on the policy's shape and the samples per task, never on the task count,
// so that several seeds' tasks in one call (`mbmpo train --seeds`) sum in the chunks, and so the
// order, of each seed's call of its own. The workspace grows with the tasks: 256 MiB per 20.
constexpr std::int64_t kWorkspaceFloats = std::int64_t(1) << 26;
constexpr std::int64_t kReferenceTasks = 20;  // the paper's meta-batch

enum class SumOp { gradient, hessian_vector, fisher_vector };

// Where everything sits in the context's kept sum scratch (cuda.sum_scratch), for one shape.
struct SumWorkspace {
  std::int64_t chunk = 0;  // rows per task per chunk
  int widest = 0;          // the widest layer output
  int layer_offset[kMaxPolicyLayers] = {};  // of H_l (and R_l) inside a task's activation rows
  int activation_width = 0;                 // sum of the layer widths
  // Offsets into the scratch, in floats. ones comes first: it keeps its place (and its values)
  // whatever shape later uses a scratch that is already large enough.
  std::int64_t ones = 0, sums = 0, h = 0, r = 0, g = 0, rg = 0, back = 0, r_back = 0, e = 0, total = 0;
};

SumWorkspace sum_workspace(const PolicyShape& s, int tasks, std::int64_t per_task) {
  SumWorkspace w;
  for (int l = 0; l < s.layers; ++l) {
    w.layer_offset[l] = w.activation_width;
    w.activation_width += s.out[l];
    w.widest = std::max(w.widest, s.out[l]);
  }
  const std::int64_t per_row = 2 * std::int64_t(w.activation_width) + 4 * std::int64_t(w.widest) + s.act_dim;
  const std::int64_t fits = kWorkspaceFloats / (kReferenceTasks * per_row);
  w.chunk = std::clamp<std::int64_t>(std::min(fits, per_task), 1, kMaxChunkRows);
  const std::int64_t rows = std::int64_t(tasks) * w.chunk;
  std::int64_t at = 0;
  auto take = [&](std::int64_t floats) {
    const std::int64_t start = at;
    at += (floats + 63) / 64 * 64;  // 256-byte aligned segments
    return start;
  };
  w.ones = take(kMaxChunkRows);
  w.sums = take(std::int64_t(tasks) * s.parameter_count);
  w.h = take(rows * w.activation_width);
  w.r = take(rows * w.activation_width);
  w.g = take(rows * w.widest);
  w.rg = take(rows * w.widest);
  w.back = take(rows * w.widest);
  w.r_back = take(rows * w.widest);
  w.e = take(rows * s.act_dim);
  w.total = at;
  return w;
}

__global__ void fill_kernel(std::int64_t count, float value, float* __restrict__ out) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < count;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    out[i] = value;
  }
}

// The element (t, row, col) of a [T][rows][width] launch, in buffers whose tasks are `task_stride`
// floats apart and whose rows are `ld` floats apart.
struct Element {
  int t;
  std::int64_t row;
  int col;
};
__device__ inline Element element_at(std::int64_t idx, std::int64_t rows, int width) {
  const std::int64_t per_task = rows * width;
  const std::int64_t rem = idx % per_task;
  return {static_cast<int>(idx / per_task), rem / width, static_cast<int>(rem % width)};
}

// R = R + vb_l, then through tanh on hidden layers (tanh_tangent with the layer's output H).
__global__ void tangent_epilogue_kernel(int tasks, std::int64_t rows, int out, std::int64_t stride, bool hidden,
                                        const float* __restrict__ vectors, int P, int b_offset,
                                        const float* __restrict__ h, float* __restrict__ r) {
  const std::int64_t total = std::int64_t(tasks) * rows * out;
  for (std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const Element e = element_at(idx, rows, out);
    const std::int64_t at = e.t * stride + e.row * out + e.col;
    const float r_pre = r[at] + vectors[std::int64_t(e.t) * P + b_offset + e.col];
    r[at] = hidden ? tanh_tangent(h[at], r_pre) : r_pre;
  }
}

// Everything the output terms read, per chunk.
struct OutputInputs {
  const float* params;   // theta_t = params + t * params_stride
  int params_stride;
  const float* vectors;  // v_t = vectors + t * P (HVP, FVP)
  int P;
  const float* act;      // the chunk's first action of task 0; tasks per_task rows apart
  const float* weight;   // likewise
  std::int64_t per_task;
  const float* mean;     // H_{L-1}, task stride `stride`, row length act_dim
  const float* r_mean;   // R_{L-1} (HVP, FVP)
  std::int64_t stride;
};

// G, RG (HVP) and E per element (t, row, j): G and RG into the widest-wide buffers with row
// length act_dim, E into [T][chunk][act_dim].
template <SumOp op>
__global__ void output_terms_kernel(PolicyShape s, int tasks, std::int64_t rows, OutputInputs in,
                                    std::int64_t g_stride, std::int64_t e_stride, float* __restrict__ g,
                                    float* __restrict__ rg, float* __restrict__ e_out) {
  const int A = s.act_dim;
  const std::int64_t total = std::int64_t(tasks) * rows * A;
  for (std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const Element e = element_at(idx, rows, A);
    const float* theta = in.params + std::int64_t(e.t) * in.params_stride;
    const std::int64_t sample = std::int64_t(e.t) * in.per_task + e.row;
    const float w = in.weight[sample];
    const std::int64_t at = e.t * in.stride + e.row * A + e.col;
    OutputTerms<float> terms;
    if (op == SumOp::gradient) {
      terms = log_prob_gradient_terms(s, theta, e.col, in.act[sample * A + e.col], in.mean[at], w);
    } else if (op == SumOp::hessian_vector) {
      terms = hessian_vector_terms(s, theta, in.vectors + std::int64_t(e.t) * in.P, e.col,
                                   in.act[sample * A + e.col], in.mean[at], in.r_mean[at], w);
    } else {
      terms = fisher_vector_terms(s, theta, in.vectors + std::int64_t(e.t) * in.P, e.col, in.r_mean[at], w);
    }
    const std::int64_t g_at = e.t * g_stride + e.row * A + e.col;
    g[g_at] = terms.g;
    if (op == SumOp::hessian_vector) rg[g_at] = terms.rg;
    e_out[e.t * e_stride + e.row * A + e.col] = terms.log_std;
  }
}

// G = tanh_backward(B, X) and, with tangents, RG = tanh_backward_tangent(B, RB, X, RX); X = H_{l-1}
// (row length `width`, task stride x_stride); G, RG, B, RB row length width, task stride g_stride.
__global__ void hidden_backward_kernel(int tasks, std::int64_t rows, int width, std::int64_t x_stride,
                                       std::int64_t g_stride, const float* __restrict__ x,
                                       const float* __restrict__ rx, const float* __restrict__ back,
                                       const float* __restrict__ r_back, float* __restrict__ g,
                                       float* __restrict__ rg) {
  const std::int64_t total = std::int64_t(tasks) * rows * width;
  for (std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const Element e = element_at(idx, rows, width);
    const std::int64_t x_at = e.t * x_stride + e.row * width + e.col;
    const std::int64_t g_at = e.t * g_stride + e.row * width + e.col;
    g[g_at] = tanh_backward(back[g_at], x[x_at]);
    if (rg) rg[g_at] = tanh_backward_tangent(back[g_at], r_back[g_at], x[x_at], rx[x_at]);
  }
}

// out[t] = base + factor_t * sum[t], base = 0, one shared row or a row per task, factor_t = scale,
// or scale / count[t] (0 for an empty task). out may be the per-task base itself (an in-place
// inner step): each element is read before the same thread writes it, so out is not restrict.
__global__ void finish_kernel(int tasks, int P, const float* __restrict__ sums, SumFinish finish,
                              float* out) {
  const std::int64_t total = std::int64_t(tasks) * P;
  for (std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const int t = static_cast<int>(idx / P), p = static_cast<int>(idx % P);
    float factor = finish.scale;
    if (finish.count) factor = finish.count[t] > 0.f ? finish.scale / finish.count[t] : 0.f;
    const float base = finish.base ? finish.base[(finish.base_per_task ? std::int64_t(t) * P : 0) + p] : 0.f;
    out[idx] = base + factor * sums[idx];
  }
}

template <class Kernel, class... Args>
void launch_elementwise(const char* name, std::int64_t count, cudaStream_t stream, Kernel kernel, Args... args) {
  if (count == 0) return;
  kernel<<<elementwise_blocks(count), kElementwiseThreads, 0, stream>>>(args...);
  MBMPO_KERNEL_CHECK(name);
}

}  // namespace

void reserve_sample_sums(CudaResources& cuda, const PolicyShape& s, int tasks, std::int64_t per_task) {
  const SumWorkspace w = sum_workspace(s, tasks, per_task);
  if (std::size_t(w.total) <= cuda.sum_scratch_floats) return;
  MBMPO_CHECK(!stream_capture_active(), "policy sums: their scratch must be reserved (reserve_sample_sums) "
              "before a CUDA graph records them");
  MBMPO_CUDA_CHECK(cudaStreamSynchronize(cuda.stream));  // earlier sums may still use the old buffer
  memory::release(Backend::cuda, cuda.sum_scratch);
  cuda.sum_scratch = nullptr;
  cuda.sum_scratch_floats = 0;
  cuda.sum_scratch = static_cast<float*>(memory::allocate(Backend::cuda, std::size_t(w.total) * sizeof(float)));
  cuda.sum_scratch_floats = std::size_t(w.total);
  launch_elementwise("fill_kernel", kMaxChunkRows, cuda.stream, fill_kernel, kMaxChunkRows, 1.f,
                     cuda.sum_scratch + w.ones);
}

namespace {

template <SumOp op>
void policy_sum(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds, std::int64_t per_task, const float* params,
                bool params_per_task, const float* vectors, const float* obs, const float* act,
                const float* weight, const SumFinish& finish, float* out) {
  if (tasks == 0) return;
  constexpr bool tangent = op != SumOp::gradient;
  constexpr bool hvp = op == SumOp::hessian_vector;
  const int P = s.parameter_count, L = s.layers, A = s.act_dim;
  reserve_sample_sums(cuda, s, tasks, per_task);
  // C[t] = alpha op(A[t]) op(B[t]) + beta C[t] for every task t (column-major, FP32), one call per
  // seed of a seed: each seed's products are a single run's (kernels/core/seed_gemm.cu).
  auto gemm = [&](cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float* a,
                  int lda, long long stride_a, const float* b, int ldb, long long stride_b, float beta, float* c,
                  int ldc, long long stride_c, int batch) {
    seed_sgemm(cuda, seeds, false, ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc,
               stride_c, batch);
  };
  const SumWorkspace w = sum_workspace(s, tasks, per_task);
  float* base = cuda.sum_scratch;
  const float* ones = base + w.ones;
  float* sums = base + w.sums;
  const long long params_stride = params_per_task ? P : 0;
  const long long act_stride = w.chunk * w.activation_width;  // task stride of H and R
  const long long wide_stride = w.chunk * w.widest;           // task stride of G, RG, B, RB
  const long long e_stride = w.chunk * A;
  auto H = [&](int l) { return base + w.h + w.chunk * w.layer_offset[l]; };
  auto R = [&](int l) { return base + w.r + w.chunk * w.layer_offset[l]; };
  float* G = base + w.g;
  float* RG = base + w.rg;
  float* B = base + w.back;
  float* RB = base + w.r_back;
  float* E = base + w.e;
  // H_l and R_l of task t sit at H(l) + t * act_stride as [chunk][out_l]: each layer's block is
  // chunk * out_l floats inside the task's chunk * activation_width.
  MBMPO_CUDA_CHECK(cudaMemsetAsync(sums, 0, std::size_t(tasks) * P * sizeof(float), cuda.stream));

  for (std::int64_t first = 0; first < per_task; first += w.chunk) {
    const int n = static_cast<int>(std::min<std::int64_t>(w.chunk, per_task - first));
    const float* obs_c = obs + first * s.obs_dim;
    const long long obs_stride = per_task * s.obs_dim;
    // The input of layer l: obs for l = 0 (task stride per_task * obs_dim), else H_{l-1}.
    auto input = [&](int l) { return l == 0 ? obs_c : H(l - 1); };
    auto input_stride = [&](int l) { return l == 0 ? obs_stride : act_stride; };

    // Forward. H_l row-major [n x out] = column-major [out x n] = W_l (row-major [out x in], i.e.
    // column-major [in x out], used transposed) times X_l^T (column-major [in x n]).
    for (int l = 0; l < L; ++l) {
      const int in = s.in[l], o = s.out[l];
      gemm(CUBLAS_OP_T, CUBLAS_OP_N, o, n, in, 1.f, params + s.w_offset[l], in, params_stride, input(l), in,
           input_stride(l), 0.f, H(l), o, act_stride, tasks);
      bias_tanh(cuda, tasks, n, o, act_stride, l + 1 < L, params, int(params_stride), s.b_offset[l], H(l));
    }
    // Tangent along v: the same products with V_l, plus the chain through W_l.
    if (tangent) {
      for (int l = 0; l < L; ++l) {
        const int in = s.in[l], o = s.out[l];
        gemm(CUBLAS_OP_T, CUBLAS_OP_N, o, n, in, 1.f, vectors + s.w_offset[l], in, P, input(l), in,
             input_stride(l), 0.f, R(l), o, act_stride, tasks);
        if (l > 0) {
          gemm(CUBLAS_OP_T, CUBLAS_OP_N, o, n, in, 1.f, params + s.w_offset[l], in, params_stride, R(l - 1),
               in, act_stride, 1.f, R(l), o, act_stride, tasks);
        }
        launch_elementwise("tangent_epilogue_kernel", std::int64_t(tasks) * n * o, cuda.stream,
                           tangent_epilogue_kernel, tasks, std::int64_t(n), o, std::int64_t(act_stride), l + 1 < L,
                           vectors, P, s.b_offset[l], static_cast<const float*>(H(l)), R(l));
      }
    }
    // The output layer's terms, then the log-std sums: sum[t][log_std] += E_t^T 1 (E_t row-major
    // [n x A] = column-major [A x n]).
    const OutputInputs inputs{params,      int(params_stride), vectors, P, act ? act + first * A : nullptr,
                              weight + first, per_task, H(L - 1), tangent ? R(L - 1) : nullptr, act_stride};
    launch_elementwise("output_terms_kernel", std::int64_t(tasks) * n * A, cuda.stream, output_terms_kernel<op>, s,
                       tasks, std::int64_t(n), inputs, std::int64_t(wide_stride), std::int64_t(e_stride), G, RG, E);
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, A, 1, n, 1.f, E, A, e_stride, ones, n, 0, 1.f, sums + s.log_std_offset, A,
         P, tasks);

    // Backward. G_t row-major [n x out] is column-major [out x n].
    for (int l = L - 1; l >= 0; --l) {
      const int in = s.in[l], o = s.out[l];
      const float* outer = hvp ? RG : G;  // the term paired with X_l and with the bias
      // sum[W_l] (row-major [out x in] = column-major [in x out]) += X_l^T-as-stored [in x n]
      // times outer [n x out] (column-major [out x n], transposed).
      gemm(CUBLAS_OP_N, CUBLAS_OP_T, in, o, n, 1.f, input(l), in, input_stride(l), outer, o, wide_stride, 1.f,
           sums + s.w_offset[l], in, P, tasks);
      if (hvp && l > 0) {  // + G^T R_{l-1}
        gemm(CUBLAS_OP_N, CUBLAS_OP_T, in, o, n, 1.f, R(l - 1), in, act_stride, G, o, wide_stride, 1.f,
             sums + s.w_offset[l], in, P, tasks);
      }
      // sum[b_l] ([out], column-major [out x 1]) += outer^T-as-stored [out x n] times ones [n x 1].
      gemm(CUBLAS_OP_N, CUBLAS_OP_N, o, 1, n, 1.f, outer, o, wide_stride, ones, n, 0, 1.f, sums + s.b_offset[l],
           o, P, tasks);
      if (l == 0) break;
      // B row-major [n x in] = column-major [in x n] = W_l-as-stored [in x out] times G [out x n].
      gemm(CUBLAS_OP_N, CUBLAS_OP_N, in, n, o, 1.f, params + s.w_offset[l], in, params_stride, G, o,
           wide_stride, 0.f, B, in, wide_stride, tasks);
      if (hvp) {  // RB = G V_l + RG W_l
        gemm(CUBLAS_OP_N, CUBLAS_OP_N, in, n, o, 1.f, vectors + s.w_offset[l], in, P, G, o, wide_stride, 0.f,
             RB, in, wide_stride, tasks);
        gemm(CUBLAS_OP_N, CUBLAS_OP_N, in, n, o, 1.f, params + s.w_offset[l], in, params_stride, RG, o,
             wide_stride, 1.f, RB, in, wide_stride, tasks);
      }
      // G (and RG) now take the layer below's width, in = out_{l-1}; every GEMM reading the old
      // ones is ahead of this launch on the stream.
      launch_elementwise("hidden_backward_kernel", std::int64_t(tasks) * n * in, cuda.stream, hidden_backward_kernel,
                         tasks, std::int64_t(n), in, std::int64_t(act_stride), std::int64_t(wide_stride),
                         static_cast<const float*>(H(l - 1)), hvp ? static_cast<const float*>(R(l - 1)) : nullptr,
                         static_cast<const float*>(B), hvp ? static_cast<const float*>(RB) : nullptr, G,
                         hvp ? RG : nullptr);
    }
  }
  launch_elementwise("finish_kernel", std::int64_t(tasks) * P, cuda.stream, finish_kernel, tasks, P,
                     static_cast<const float*>(sums), finish, out);
}

}  // namespace

void weighted_log_prob_gradient(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds, std::int64_t per_task,
                                const float* params, bool params_per_task, const float* obs, const float* act,
                                const float* weight, float* grad) {
  policy_sum<SumOp::gradient>(cuda, s, tasks, seeds, per_task, params, params_per_task, nullptr, obs, act, weight,
                              SumFinish{}, grad);
}

void policy_gradient_step(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds, std::int64_t per_task,
                          const float* theta, bool params_per_task, const float* obs, const float* act,
                          const float* weight, const float* count, float step_size, float* adapted) {
  policy_sum<SumOp::gradient>(cuda, s, tasks, seeds, per_task, theta, params_per_task, nullptr, obs, act, weight,
                              SumFinish{theta, params_per_task, count, step_size}, adapted);
}

void scaled_log_prob_gradient(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds, std::int64_t per_task,
                              const float* params, bool params_per_task, const float* obs, const float* act,
                              const float* weight, const float* count, float* grad) {
  policy_sum<SumOp::gradient>(cuda, s, tasks, seeds, per_task, params, params_per_task, nullptr, obs, act, weight,
                              SumFinish{nullptr, false, count, 1.f}, grad);
}

void jacobian_vector(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds, std::int64_t per_task,
                     const float* theta, bool params_per_task, const float* vectors, const float* obs,
                     const float* act, const float* weight, const float* count, float alpha, float* out) {
  policy_sum<SumOp::hessian_vector>(cuda, s, tasks, seeds, per_task, theta, params_per_task, vectors, obs, act, weight,
                                    SumFinish{vectors, true, count, alpha}, out);
}

void fisher_vector_product(CudaResources& cuda, const PolicyShape& s, int tasks, int seeds, std::int64_t per_task,
                           const float* params, const float* vectors, const float* obs, const float* weight,
                           const float* count, float* out) {
  policy_sum<SumOp::fisher_vector>(cuda, s, tasks, seeds, per_task, params, true, vectors, obs, nullptr, weight,
                                   SumFinish{nullptr, false, count, 1.f}, out);
}

}  // namespace mbmpo::cuda
