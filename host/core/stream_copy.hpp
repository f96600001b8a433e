// A copy between two buffers of the context's backend, ordered on the context's stream (on CUDA a
// device-to-device cudaMemcpyAsync) rather than on the legacy default stream, so the host does not
// wait for the GPU: for copies in the middle of a pipeline of kernels.
#pragma once

#include "host/core/context.hpp"
#include "host/core/tensor.hpp"

namespace mbmpo {

// to = from, element for element (the same number of elements, both on the context's backend).
void copy_on_stream(Context& context, TensorView<float> to, TensorView<const float> from);

}  // namespace mbmpo
