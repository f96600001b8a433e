#include "host/models/model_spread.hpp"

#include "kernels/models/model_spread.cuh"

#ifdef MBMPO_WITH_CUDA
#include "kernels/models/model_spread_cuda.hpp"
#endif

namespace mbmpo {

void model_spread(Context& context, TensorView<const float> per_model, TensorView<float> spread) {
  MBMPO_CHECK(per_model.shape.size() == 3 && per_model.dim(0) >= 1, "model_spread: per_model must be [K][N][D], got ",
              shape_to_string(per_model.shape));
  const int K = int(per_model.dim(0));
  const std::int64_t count = per_model.dim(1) * per_model.dim(2);
  expect_shape(per_model, per_model.shape, context.backend(), "model_spread per_model");  // its backend
  expect_shape(spread, {per_model.dim(1), per_model.dim(2)}, context.backend(), "model_spread spread");
  if (count == 0) return;
  if (context.backend() == Backend::cpu) {
    for (std::int64_t i = 0; i < count; ++i) spread.data[i] = model_spread_at(per_model.data + i, K, count);
    return;
  }
#ifdef MBMPO_WITH_CUDA
  cuda::model_spread(context.cuda(), K, count, per_model.data, spread.data);
#endif
}

}  // namespace mbmpo
