#include "host/core/stream_copy.hpp"

#include <cstring>

#ifdef MBMPO_WITH_CUDA
#include "host/core/cuda_check.hpp"
#include "host/core/cuda_context.hpp"
#endif

namespace mbmpo {

void copy_on_stream(Context& context, TensorView<float> to, TensorView<const float> from) {
  MBMPO_CHECK(to.numel() == from.numel(), "copy_on_stream: ", shape_to_string(from.shape), " into ",
              shape_to_string(to.shape));
  MBMPO_CHECK(to.backend == context.backend() && from.backend == context.backend(),
              "copy_on_stream: both buffers must be on the context's backend");
  const std::size_t bytes = std::size_t(to.numel()) * sizeof(float);
  if (bytes == 0) return;
  if (context.backend() == Backend::cpu) {
    std::memcpy(to.data, from.data, bytes);
    return;
  }
#ifdef MBMPO_WITH_CUDA
  MBMPO_CUDA_CHECK(cudaMemcpyAsync(to.data, from.data, bytes, cudaMemcpyDeviceToDevice, context.cuda().stream));
#endif
}

}  // namespace mbmpo
