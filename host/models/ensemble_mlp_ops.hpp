// The dynamics ensemble's element-wise operations on the context's backend: the CPU reference in
// host/models/ensemble_mlp_cpu.hpp (contracts and maths there) or the CUDA kernels in
// kernels/models/ensemble_mlp.cu. The layers' products are in host/models/ensemble_linear.hpp.
#pragma once

#include <cstdint>

#include "host/core/context.hpp"
#include "host/models/ensemble_mlp_cpu.hpp"

namespace mbmpo {

void gather_normalize(Context& c, const GatherDims& d, const float* obs, const float* act,
                      const float* delta, const std::int32_t* indices,
                      const NormalizerView<float>& norm, float* x, float* target);
void mse_loss_grad(Context& c, int models, int rows, int dim, const float* y, const float* target,
                   float* dy, float* loss_sum);
void denormalize_scatter(Context& c, const GatherDims& d, const float* y, const float* bias,
                         const float* obs, const std::int32_t* indices,
                         const NormalizerView<float>& norm, float clip, float* next_obs);
void adam_update(Context& c, std::int64_t count, const AdamStep& step, float* params,
                 const float* grads, float* m, float* v);
void shuffle_indices(Context& c, int models, std::int64_t count, const ShuffleKeys& keys,
                     std::uint64_t epoch, const std::int32_t* in, std::int32_t* out);

}  // namespace mbmpo
