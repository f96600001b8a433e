// The weight-normalised ensemble linear layer on either backend (see ensemble_linear_cpu.hpp for
// the math). All K models are evaluated in one call; on CUDA every step is one launch for all K.
#pragma once

#include "host/core/context.hpp"
#include "host/core/tensor.hpp"
#include "host/models/ensemble_linear_cpu.hpp"

namespace mbmpo {

struct EnsembleLinearParams {
  TensorView<const float> v;  // [K][out][in] direction
  TensorView<const float> g;  // [K][out] gain
  TensorView<const float> b;  // [K][out] bias; null data in forward = no bias
  // [K][out][in] effective weights g v / ||v|| from ensemble_weight_norm, when the caller keeps
  // them over several calls; null data: computed from v and g in each call.
  TensorView<const float> w;
  // CUDA: run the products on tensor cores in TF32 (10-bit mantissa inputs, FP32 accumulation);
  // the CPU backend computes in full precision either way.
  bool tf32 = false;
  // The K models are this many seeds' equal blocks (EnsembleLinearDims::seeds).
  int seeds = 1;
};

struct EnsembleLinearGrads {
  TensorView<float> v;  // [K][out][in]
  TensorView<float> g;  // [K][out]
  TensorView<float> b;  // [K][out]
};

// Reads the layer's sizes from the parameter and input shapes and checks that they agree.
EnsembleLinearDims ensemble_linear_dims(const EnsembleLinearParams& params,
                                        const TensorView<const float>& x);

// w [K][out][in] = diag(g / ||v rows||) v, the effective weights of params.
void ensemble_weight_norm(Context& context, const EnsembleLinearParams& params, TensorView<float> w);

// x: [K][rows][in]; pre (optional: pass a view with null data) and y: [K][rows][out].
void ensemble_linear_forward(Context& context, Activation act, const EnsembleLinearParams& params,
                             TensorView<const float> x, TensorView<float> pre, TensorView<float> y);

// Overwrites grads and, when dx has data, dx = dL/dx. pre is the forward's pre-activation.
void ensemble_linear_backward(Context& context, Activation act, const EnsembleLinearParams& params,
                              TensorView<const float> x, TensorView<const float> pre,
                              TensorView<const float> dy, TensorView<float> dx,
                              const EnsembleLinearGrads& grads);

}  // namespace mbmpo
