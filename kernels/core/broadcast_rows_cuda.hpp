// CUDA launcher behind host/core/broadcast_rows.hpp.
#pragma once

#include <cstdint>

#include "host/core/context.hpp"

namespace mbmpo::cuda {

// rows [T][P]: row g of row [B][P] in each of the T/B rows of seed g (B = 1: one row into every
// row); device pointers.
void broadcast_rows(CudaResources& cuda, std::int64_t T, std::int64_t B, std::int64_t P, const float* row,
                    float* rows);

}  // namespace mbmpo::cuda
