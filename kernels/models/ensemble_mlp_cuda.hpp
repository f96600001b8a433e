// CUDA launchers of the dynamics-ensemble operations; the contracts are those of the CPU reference
// in host/models/ensemble_mlp_cpu.hpp. Pointers are device pointers; sizes are checked by the
// caller (host/models/dynamics_ensemble.cpp).
#pragma once

#include <cstdint>

#include "host/core/context.hpp"
#include "host/models/ensemble_mlp_cpu.hpp"

namespace mbmpo::cuda {

void gather_normalize(CudaResources& cuda, const GatherDims& d, const float* obs, const float* act,
                      const float* delta, const std::int32_t* indices,
                      const NormalizerView<float>& norm, float* x, float* target);

void mse_loss_grad(CudaResources& cuda, int models, int rows, int dim, const float* y,
                   const float* target, float* dy, float* loss_sum);

void denormalize_scatter(CudaResources& cuda, const GatherDims& d, const float* y,
                         const float* bias, const float* obs, const std::int32_t* indices,
                         const NormalizerView<float>& norm, float clip, float* next_obs);

void adam_update(CudaResources& cuda, std::int64_t count, const AdamStep& step, float* params,
                 const float* grads, float* m, float* v);

void shuffle_indices(CudaResources& cuda, int models, std::int64_t count, const ShuffleKeys& shuffle,
                     std::uint64_t epoch, const std::int32_t* in, std::int32_t* out);

}  // namespace mbmpo::cuda
