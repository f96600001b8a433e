// Strided-batched cuBLAS products over several seeds (kernels/core/seed_gemm.cu). Device
// pointers, column-major as cuBLAS takes them. Only included by code built with the CUDA backend.
#pragma once

#include <cublas_v2.h>

#include "host/core/context.hpp"

namespace mbmpo::cuda {

// C[i] = alpha op(A[i]) op(B[i]) + beta C[i] for i < batch, A[i] = a + i * stride_a (likewise B,
// C; a stride of 0 shares one matrix). The batch is `seeds` equal blocks, one per seed;
// each block is issued as the very call a single seed's run makes (its m, n, k, leading
// dimensions, strides and batch count), so the seeds' bits are their own by construction.
// seeds = 1 is one call on the context's stream. tf32: TF32 tensor-core products with FP32
// accumulation (the ensemble's opt-in), else plain FP32.
void seed_sgemm(CudaResources& cuda, int seeds, bool tf32, cublasOperation_t ta, cublasOperation_t tb, int m,
                int n, int k, float alpha, const float* a, int lda, long long stride_a, const float* b, int ldb,
                long long stride_b, float beta, float* c, int ldc, long long stride_c, int batch);

// The same in double (the baseline's normal equations).
void seed_dgemm(CudaResources& cuda, int seeds, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                double alpha, const double* a, int lda, long long stride_a, const double* b, int ldb,
                long long stride_b, double beta, double* c, int ldc, long long stride_c, int batch);

}  // namespace mbmpo::cuda
