// Batched conjugate gradient on the device: one block per system. Each iteration kernel reduces
// p.Ap, steps x and r, reduces r.r and updates p, reading and writing its scalars in device
// memory; dot products are summed in double in a fixed order (deterministic).
#include <cub/block/block_reduce.cuh>

#include <cmath>

#include "host/core/cuda_check.hpp"
#include "host/core/cuda_context.hpp"
#include "kernels/core/launch.cuh"
#include "kernels/optim/conjugate_gradient_cuda.hpp"

namespace mbmpo::cuda {
namespace {

constexpr int kThreads = 256;
using Reduce = cub::BlockReduce<double, kThreads>;

__device__ double block_dot(const float* __restrict__ u, const float* __restrict__ v, std::int64_t n,
                            Reduce::TempStorage& temp, double* shared_result) {
  double sum = 0;
  for (std::int64_t i = threadIdx.x; i < n; i += kThreads) sum += double(u[i]) * double(v[i]);
  const double total = Reduce(temp).Sum(sum);
  if (threadIdx.x == 0) *shared_result = total;
  __syncthreads();
  return *shared_result;
}

__global__ void cg_start_kernel(std::int64_t n, double tolerance, const float* __restrict__ b,
                                float* __restrict__ x, float* __restrict__ r, float* __restrict__ p,
                                double* __restrict__ rr, double* __restrict__ rhs_norm,
                                int* __restrict__ active) {
  __shared__ Reduce::TempStorage temp;
  __shared__ double result;
  const std::int64_t base = std::int64_t(blockIdx.x) * n;
  for (std::int64_t i = threadIdx.x; i < n; i += kThreads) {
    x[base + i] = 0.f;
    r[base + i] = p[base + i] = b[base + i];
  }
  const double squared = block_dot(b + base, b + base, n, temp, &result);
  if (threadIdx.x == 0) {
    rr[blockIdx.x] = squared;
    rhs_norm[blockIdx.x] = sqrt(squared);
    active[blockIdx.x] = squared >= tolerance;
  }
}

__global__ void cg_iterate_kernel(std::int64_t n, double tolerance, float* __restrict__ x,
                                  float* __restrict__ r, float* __restrict__ p,
                                  const float* __restrict__ ap, double* __restrict__ rr,
                                  int* __restrict__ active) {
  __shared__ Reduce::TempStorage temp;
  __shared__ double result;
  const int s = blockIdx.x;
  if (!active[s]) return;  // the same for the whole block
  const std::int64_t base = std::int64_t(s) * n;
  const double curvature = block_dot(p + base, ap + base, n, temp, &result);
  if (!(curvature > 0)) {  // not positive definite along p (or NaN): stop this system
    if (threadIdx.x == 0) active[s] = 0;
    return;
  }
  const double rr_old = rr[s];
  const float step = float(rr_old / curvature);
  for (std::int64_t i = threadIdx.x; i < n; i += kThreads) {
    x[base + i] += step * p[base + i];
    r[base + i] -= step * ap[base + i];
  }
  __syncthreads();
  const double rr_new = block_dot(r + base, r + base, n, temp, &result);
  const float beta = float(rr_new / rr_old);
  for (std::int64_t i = threadIdx.x; i < n; i += kThreads) p[base + i] = r[base + i] + beta * p[base + i];
  if (threadIdx.x == 0) {
    rr[s] = rr_new;
    if (rr_new < tolerance) active[s] = 0;
  }
}

}  // namespace

ConjugateGradientState::ConjugateGradientState(CudaResources& cuda, int systems, std::int64_t n)
    : cuda_(cuda),
      systems_(systems),
      n_(n),
      residual_(Backend::cuda, {systems, n}),
      direction_(Backend::cuda, {systems, n}),
      product_(Backend::cuda, {systems, n}),
      residual_squared_(Backend::cuda, {systems}),
      rhs_norm_(Backend::cuda, {systems}),
      active_(Backend::cuda, {systems}) {}

void ConjugateGradientState::start(const float* b, float* x, double tolerance) {
  if (systems_ == 0) return;
  cg_start_kernel<<<systems_, kThreads, 0, cuda_.stream>>>(n_, tolerance, b, x, residual_.data(),
                                                          direction_.data(), residual_squared_.data(),
                                                          rhs_norm_.data(), active_.data());
  MBMPO_KERNEL_CHECK("cg_start_kernel");
}

void ConjugateGradientState::iterate(float* x, double tolerance) {
  if (systems_ == 0) return;
  cg_iterate_kernel<<<systems_, kThreads, 0, cuda_.stream>>>(n_, tolerance, x, residual_.data(),
                                                            direction_.data(), product_.data(),
                                                            residual_squared_.data(), active_.data());
  MBMPO_KERNEL_CHECK("cg_iterate_kernel");
}

void ConjugateGradientState::read_norms(std::vector<double>& residual_norm,
                                        std::vector<double>& rhs_norm) const {
  MBMPO_CUDA_CHECK(cudaStreamSynchronize(cuda_.stream));
  residual_norm = residual_squared_.to_host();
  for (double& value : residual_norm) value = std::sqrt(value);
  rhs_norm = rhs_norm_.to_host();
}

}  // namespace mbmpo::cuda
