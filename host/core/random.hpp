// Filling tensors with the shared Philox streams on either backend. Element i of the tensor gets
// element i of the stream (seed, stream), so both backends produce the same values.
#pragma once

#include <cstdint>

#include "host/core/context.hpp"
#include "host/core/tensor.hpp"

namespace mbmpo {

// Uniform in (0, 1); bit-identical on both backends.
void fill_uniform(Context& context, std::uint64_t seed, std::uint64_t stream, TensorView<float> out);
// Standard normal (Box-Muller); equal on both backends up to the last bits of log/sin/cos.
void fill_normal(Context& context, std::uint64_t seed, std::uint64_t stream, TensorView<float> out);

}  // namespace mbmpo
