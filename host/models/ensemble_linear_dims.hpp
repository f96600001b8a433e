// Sizes of one ensemble linear layer call.
#pragma once

#include <cstdint>

namespace mbmpo {

struct EnsembleLinearDims {
  std::int64_t models = 0;
  std::int64_t rows = 0;
  std::int64_t in = 0;
  std::int64_t out = 0;
};

}  // namespace mbmpo
