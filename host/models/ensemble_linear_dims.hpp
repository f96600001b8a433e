// Sizes of one ensemble linear layer call.
#pragma once

#include <cstdint>

namespace mbmpo {

struct EnsembleLinearDims {
  std::int64_t models = 0;
  std::int64_t rows = 0;
  std::int64_t in = 0;
  std::int64_t out = 0;
  // The models form this many equal blocks, one per seed (`mbmpo train --seeds`). On
  // CUDA each block's products are the calls a single seed makes (kernels/core/seed_gemm.cu); the
  // CPU computes every model on its own either way.
  std::int64_t seeds = 1;
};

}  // namespace mbmpo
