// Launch-shape helpers shared by the kernels.
#pragma once

#include <algorithm>
#include <cstdint>

namespace mbmpo::cuda {

constexpr int kElementwiseThreads = 256;

// Blocks for a grid-stride loop over `count` elements: enough to fill the GPU, never more than
// the elements need.
inline unsigned elementwise_blocks(std::int64_t count) {
  const std::int64_t needed = (count + kElementwiseThreads - 1) / kElementwiseThreads;
  return static_cast<unsigned>(std::clamp<std::int64_t>(needed, 1, 65535));
}

}  // namespace mbmpo::cuda
