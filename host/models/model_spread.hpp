// The disagreement of an ensemble's models: the standard deviation over the models of each
// predicted element (mbmpo.DynamicsEnsemble.disagreement), on either backend. Per element:
// kernels/models/model_spread.cuh; CUDA: kernels/models/model_spread.cu.
#pragma once

#include "host/core/context.hpp"
#include "host/core/tensor.hpp"

namespace mbmpo {

// spread [N][D] = population std over k of per_model [K][N][D].
void model_spread(Context& context, TensorView<const float> per_model, TensorView<float> spread);

}  // namespace mbmpo
