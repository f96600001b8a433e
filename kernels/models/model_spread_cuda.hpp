// CUDA launcher behind host/models/model_spread.hpp.
#pragma once

#include <cstdint>

#include "host/core/context.hpp"

namespace mbmpo::cuda {

// spread[i] = std over k < K of per_model[k * count + i], i < count; device pointers.
void model_spread(CudaResources& cuda, int K, std::int64_t count, const float* per_model, float* spread);

}  // namespace mbmpo::cuda
