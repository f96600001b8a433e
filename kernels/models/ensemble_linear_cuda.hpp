// CUDA launchers of the ensemble linear layer. Pointers are device pointers, shapes already
// checked by host/models/ensemble_linear.cpp.
#pragma once

#include "host/core/context.hpp"
#include "host/models/ensemble_linear_dims.hpp"
#include "kernels/core/activation.cuh"

namespace mbmpo::cuda {

// w = diag(g / ||v rows||) v for all K models.
void ensemble_weight_norm(CudaResources& cuda, const EnsembleLinearDims& d, const float* v,
                          const float* g, float* w);

// w: the effective weights from ensemble_weight_norm, or null (then computed into scratch here).
void ensemble_linear_forward(CudaResources& cuda, const EnsembleLinearDims& d, Activation act,
                             const float* x, const float* v, const float* g, const float* w,
                             const float* b, float* pre, float* y, bool tf32 = false);

void ensemble_linear_backward(CudaResources& cuda, const EnsembleLinearDims& d, Activation act,
                              const float* x, const float* v, const float* g, const float* w,
                              const float* pre, const float* dy, float* dx, float* dv, float* dg,
                              float* db, bool tf32 = false);

}  // namespace mbmpo::cuda
