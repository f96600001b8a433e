// The spread of an ensemble's predictions at one output element, written once for host and device:
// the population standard deviation over the K models, summed in model order in double.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/core/host_device.cuh"

namespace mbmpo {

// std_k x[k * stride] over k < K (K >= 1).
MBMPO_HD_INLINE float model_spread_at(const float* x, int K, std::int64_t stride) {
  double mean = 0;
  for (int k = 0; k < K; ++k) mean += double(x[k * stride]);
  mean /= K;
  double squares = 0;
  for (int k = 0; k < K; ++k) {
    const double d = double(x[k * stride]) - mean;
    squares += d * d;
  }
  return float(sqrt(squares / K));
}

}  // namespace mbmpo
