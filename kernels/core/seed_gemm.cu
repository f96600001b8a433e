// Strided-batched products of several seeds, each seed's block as the call a single run makes.
//
//   seeds = 1:  C[i] = alpha op(A[i]) op(B[i]) + beta C[i], i < batch   (one cuBLAS call, stream)
//   seeds = S:  fork: every branch waits on the stream's event
//               for g < S, on branch g mod kCudaBranches, i in [g b, (g+1) b), b = batch / S:
//               C[i] = alpha op(A[i]) op(B[i]) + beta C[i]              (one cuBLAS call per seed)
//               join: the stream waits on every branch's event
//
// Why: cuBLAS picks its kernel, tile and split-K by the call's shape and batch count, so one call
// over S seeds' batch may sum in another order than each seed's own call; it promises identical
// bits only for identical calls, and only while concurrent streams do not share a workspace.
// Each branch has its own handle and workspace, configured as the stream's (host/core/context.cpp).
// The fork and join are events, so the same code runs eagerly and inside a CUDA graph capture
// (the branches join the capture and become parallel branches of the graph).
//
// CPU twin: none (the CPU backend computes each model and task on its own, in the same order
// whatever the other seeds). Tests: every seeds-together test on CUDA (SeedsFittedTogetherEqualFitsOfTheirOwn,
// SeedsInOneRolloutEqualRolloutsOfTheirOwn, SeedsEqualSeparateUpdates,
// SeedsInOneProcessEqualSeparateRuns) demands identical bits. Bench: `mbmpo bench --suite
// iteration` (seeds axis).
#include <algorithm>

#include "host/core/cuda_check.hpp"
#include "host/core/cuda_context.hpp"
#include "host/core/error.hpp"
#include "kernels/core/seed_gemm_cuda.hpp"

namespace mbmpo::cuda {
namespace {

// Runs call(handle, first, count) for each seed's block of the batch, as the header says.
template <class Call>
void each_seed(CudaResources& cuda, int seeds, int batch, const Call& call) {
  MBMPO_CHECK(seeds >= 1 && batch % seeds == 0, "seed products: a batch of ", batch, " does not split into ",
              seeds, " equal seeds");
  if (batch == 0) return;
  if (seeds == 1) {
    call(cuda.cublas, 0, batch);
    return;
  }
  const int per_seed = batch / seeds, used = std::min(seeds, kCudaBranches);
  MBMPO_CUDA_CHECK(cudaEventRecord(cuda.fork, cuda.stream));
  for (int i = 0; i < used; ++i) MBMPO_CUDA_CHECK(cudaStreamWaitEvent(cuda.branches[i].stream, cuda.fork, 0));
  for (int g = 0; g < seeds; ++g) call(cuda.branches[g % kCudaBranches].cublas, g * per_seed, per_seed);
  for (int i = 0; i < used; ++i) {
    MBMPO_CUDA_CHECK(cudaEventRecord(cuda.branches[i].done, cuda.branches[i].stream));
    MBMPO_CUDA_CHECK(cudaStreamWaitEvent(cuda.stream, cuda.branches[i].done, 0));
  }
}

}  // namespace

void seed_sgemm(CudaResources& cuda, int seeds, bool tf32, cublasOperation_t ta, cublasOperation_t tb, int m,
                int n, int k, float alpha, const float* a, int lda, long long stride_a, const float* b, int ldb,
                long long stride_b, float beta, float* c, int ldc, long long stride_c, int batch) {
  each_seed(cuda, seeds, batch, [&](cublasHandle_t handle, int first, int count) {
    const float* a_i = a + first * stride_a;
    const float* b_i = b + first * stride_b;
    float* c_i = c + first * stride_c;
    if (!tf32) {
      MBMPO_CUBLAS_CHECK(cublasSgemmStridedBatched(handle, ta, tb, m, n, k, &alpha, a_i, lda, stride_a, b_i, ldb,
                                                   stride_b, &beta, c_i, ldc, stride_c, count));
    } else {
      MBMPO_CUBLAS_CHECK(cublasGemmStridedBatchedEx(handle, ta, tb, m, n, k, &alpha, a_i, CUDA_R_32F, lda,
                                                    stride_a, b_i, CUDA_R_32F, ldb, stride_b, &beta, c_i,
                                                    CUDA_R_32F, ldc, stride_c, count, CUBLAS_COMPUTE_32F_FAST_TF32,
                                                    CUBLAS_GEMM_DEFAULT));
    }
  });
}

void seed_dgemm(CudaResources& cuda, int seeds, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                double alpha, const double* a, int lda, long long stride_a, const double* b, int ldb,
                long long stride_b, double beta, double* c, int ldc, long long stride_c, int batch) {
  each_seed(cuda, seeds, batch, [&](cublasHandle_t handle, int first, int count) {
    MBMPO_CUBLAS_CHECK(cublasDgemmStridedBatched(handle, ta, tb, m, n, k, &alpha, a + first * stride_a, lda,
                                                 stride_a, b + first * stride_b, ldb, stride_b, &beta,
                                                 c + first * stride_c, ldc, stride_c, count));
  });
}

}  // namespace mbmpo::cuda
