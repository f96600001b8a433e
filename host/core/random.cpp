#include "host/core/random.hpp"

#include "kernels/core/philox.cuh"

#ifdef MBMPO_WITH_CUDA
#include "kernels/core/random_fill_cuda.hpp"
#endif

namespace mbmpo {

namespace {
template <class Draw>
void fill(Context& context, TensorView<float> out, const char* what, Draw draw) {
  MBMPO_CHECK(out.backend == context.backend(), what, ": tensor on ", to_string(out.backend),
              " but the context is ", to_string(context.backend()));
  const std::int64_t count = out.numel();
  for (std::int64_t i = 0; i < count; ++i) out.data[i] = draw(static_cast<std::uint64_t>(i));
}
}  // namespace

void fill_uniform(Context& context, std::uint64_t seed, std::uint64_t stream, TensorView<float> out) {
#ifdef MBMPO_WITH_CUDA
  if (context.backend() == Backend::cuda && out.backend == Backend::cuda) {
    cuda::fill_uniform(context.cuda(), seed, stream, out.data, out.numel());
    return;
  }
#endif
  fill(context, out, "fill_uniform",
       [&](std::uint64_t i) { return uniform_at(seed, stream, i); });
}

void fill_normal(Context& context, std::uint64_t seed, std::uint64_t stream, TensorView<float> out) {
#ifdef MBMPO_WITH_CUDA
  if (context.backend() == Backend::cuda && out.backend == Backend::cuda) {
    cuda::fill_normal(context.cuda(), seed, stream, out.data, out.numel());
    return;
  }
#endif
  fill(context, out, "fill_normal", [&](std::uint64_t i) { return normal_at(seed, stream, i); });
}

}  // namespace mbmpo
