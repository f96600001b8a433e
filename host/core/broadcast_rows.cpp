#include "host/core/broadcast_rows.hpp"

#include <algorithm>

#ifdef MBMPO_WITH_CUDA
#include "kernels/core/broadcast_rows_cuda.hpp"
#endif

namespace mbmpo {

void broadcast_rows(Context& context, TensorView<const float> row, TensorView<float> rows) {
  MBMPO_CHECK((row.shape.size() == 1 || row.shape.size() == 2) && rows.shape.size() == 2,
              "broadcast_rows: a [P] row or [B][P] rows into [T][P] rows, got ", shape_to_string(row.shape), " and ",
              shape_to_string(rows.shape));
  const std::int64_t T = rows.dim(0), P = row.shape.back(), B = row.shape.size() == 2 ? row.dim(0) : 1;
  MBMPO_CHECK(B >= 1 && T % B == 0, "broadcast_rows: ", B, " seeds do not split ", T, " rows evenly");
  expect_shape(rows, {T, P}, context.backend(), "broadcast_rows rows");
  MBMPO_CHECK(row.backend == context.backend() && row.data != nullptr, "broadcast_rows: the row is not on the ",
              to_string(context.backend()));
  if (context.backend() == Backend::cpu) {
    for (std::int64_t t = 0; t < T; ++t) std::copy_n(row.data + t / (T / B) * P, P, rows.data + t * P);
    return;
  }
#ifdef MBMPO_WITH_CUDA
  cuda::broadcast_rows(context.cuda(), T, B, P, row.data, rows.data);
#endif
}

}  // namespace mbmpo
