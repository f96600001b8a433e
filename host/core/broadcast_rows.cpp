#include "host/core/broadcast_rows.hpp"

#include <algorithm>

#ifdef MBMPO_WITH_CUDA
#include "kernels/core/broadcast_rows_cuda.hpp"
#endif

namespace mbmpo {

void broadcast_rows(Context& context, TensorView<const float> row, TensorView<float> rows) {
  MBMPO_CHECK(row.shape.size() == 1 && rows.shape.size() == 2, "broadcast_rows: a [P] row into [T][P] rows, got ",
              shape_to_string(row.shape), " and ", shape_to_string(rows.shape));
  const std::int64_t T = rows.dim(0), P = row.dim(0);
  expect_shape(row, {P}, context.backend(), "broadcast_rows row");
  expect_shape(rows, {T, P}, context.backend(), "broadcast_rows rows");
  if (context.backend() == Backend::cpu) {
    for (std::int64_t t = 0; t < T; ++t) std::copy_n(row.data, P, rows.data + t * P);
    return;
  }
#ifdef MBMPO_WITH_CUDA
  cuda::broadcast_rows(context.cuda(), T, P, row.data, rows.data);
#endif
}

}  // namespace mbmpo
