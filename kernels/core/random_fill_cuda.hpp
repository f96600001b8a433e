// CUDA launchers behind host/core/random.hpp.
#pragma once

#include <cstdint>

#include "host/core/context.hpp"

namespace mbmpo::cuda {

void fill_uniform(CudaResources& cuda, std::uint64_t seed, std::uint64_t stream, float* out,
                  std::int64_t count);
void fill_normal(CudaResources& cuda, std::uint64_t seed, std::uint64_t stream, float* out,
                 std::int64_t count);

}  // namespace mbmpo::cuda
