// One vector copied into every row of a matrix on either backend: the meta-policy tiled into one
// row per task before a rollout, a vector handed to every task's product; or several vectors, each
// into its seed of rows (one per seed). One launch on CUDA.
#pragma once

#include "host/core/context.hpp"
#include "host/core/tensor.hpp"

namespace mbmpo {

// rows [T][P] = row [P] in each of the T rows; or, with row [B][P] (several seeds' meta-policies),
// row g in each of the T/B rows of seed g (B must divide T).
void broadcast_rows(Context& context, TensorView<const float> row, TensorView<float> rows);

}  // namespace mbmpo
