// Device state of the batched conjugate-gradient solve (host/optim/conjugate_gradient.hpp): the
// residuals, directions and per-system scalars stay in device memory, so an iteration needs no
// host round-trip and can be recorded into a CUDA graph.
#pragma once

#include <cstdint>
#include <vector>

#include "host/core/context.hpp"
#include "host/core/tensor.hpp"

namespace mbmpo::cuda {

class ConjugateGradientState {
 public:
  ConjugateGradientState(CudaResources& cuda, int systems, std::int64_t n);
  // x = 0, r = p = b, r.r and ||b|| per system; systems with r.r < tolerance start stopped.
  void start(const float* b, float* x, double tolerance);
  // The operator's input and output for the next iteration, [B][n] each.
  const float* direction() const { return direction_.data(); }
  float* product() { return product_.data(); }
  // One CG iteration for every active system, given product = A direction: one kernel.
  void iterate(float* x, double tolerance);
  void read_norms(std::vector<double>& residual_norm, std::vector<double>& rhs_norm) const;

 private:
  CudaResources& cuda_;
  int systems_;
  std::int64_t n_;
  Tensor<float> residual_, direction_, product_;
  Tensor<double> residual_squared_, rhs_norm_;
  Tensor<int> active_;
};

}  // namespace mbmpo::cuda
