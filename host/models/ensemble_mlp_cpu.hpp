// CPU reference of the dynamics-ensemble operations, templated on the scalar so tests can run
// them in double. The CUDA backend (kernels/models/ensemble_mlp.cu) implements the same contracts.
//
// Row selection: model k's row r reads transition indices[k * index_stride + r] of the raw
// arrays; index -1 marks a padding row (inputs zero, nothing written back).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "host/core/error.hpp"
#include "host/core/openmp.hpp"
#include "host/models/ensemble_linear_cpu.hpp"
#include "host/models/ensemble_mlp_layout.hpp"
#include "kernels/core/philox.cuh"

namespace mbmpo {

// Dataset statistics used to normalise inputs (s, a) and targets delta = s' - s:
// x_norm = (x - mean) / (std + eps), as the authors' code does.
template <class T>
struct NormalizerView {
  const T* input_mean = nullptr;  // [obs_dim + act_dim]
  const T* input_std = nullptr;
  const T* delta_mean = nullptr;  // [obs_dim]
  const T* delta_std = nullptr;
  T eps = T(1e-10);
  // One set of statistics for every model (models_per_seed = 0), or, in a stack of several
  // seeds' ensembles, a set per seed: per consecutive block of models_per_seed models, seed_stride
  // apart.
  int models_per_seed = 0;
  std::int64_t seed_stride = 0;

  // The statistics model k uses.
  MBMPO_HD_INLINE NormalizerView for_model(int k) const {
    if (models_per_seed == 0) return *this;
    const std::int64_t shift = std::int64_t(k / models_per_seed) * seed_stride;
    NormalizerView view = *this;
    view.input_mean += shift;
    view.input_std += shift;
    view.delta_mean += shift;
    view.delta_std += shift;
    return view;
  }
};

// Shape of one gather: K models x rows, with the raw obs/act/delta arrays of the transitions.
struct GatherDims {
  int models = 0, rows = 0, obs_dim = 0, act_dim = 0;
  std::int64_t index_stride = 0;
};

// Adam's per-call settings. lr_t[k] = lr * sqrt(1 - beta2^t_k) / (1 - beta1^t_k) for model k at
// its own step t_k; models with active[k] == 0 are left untouched (early-stopped models).
constexpr int kMaxEnsembleModels = 64;
constexpr int kMaxParameterSegments = 48;
struct AdamStep {
  float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f;
  float lr_t[kMaxEnsembleModels] = {};
  unsigned char active[kMaxEnsembleModels] = {};
  int models = 0;  // every segment holds [models][segment_per_model] parameters
  int segment_count = 0;
  std::int64_t segment_offset[kMaxParameterSegments] = {};
  std::int64_t segment_per_model[kMaxParameterSegments] = {};
};

// The model that parameter `index` belongs to (segments are in increasing offset order).
MBMPO_HD_INLINE int parameter_model(const AdamStep& step, std::int64_t index) {
  int s = 0;
  while (s + 1 < step.segment_count && index >= step.segment_offset[s + 1]) ++s;
  return static_cast<int>((index - step.segment_offset[s]) / step.segment_per_model[s]);
}

// Adam's settings with the parameter segments of `layout` (betas, epsilon, lr_t and active are
// the caller's).
inline AdamStep adam_step_for(const EnsembleMlpLayout& layout) {
  AdamStep step;
  step.models = layout.models();
  step.segment_count = int(layout.segments().size());
  for (int s = 0; s < step.segment_count; ++s) {
    step.segment_offset[s] = layout.segments()[s].offset;
    step.segment_per_model[s] = layout.segments()[s].per_model;
  }
  return step;
}

// The key that orders transition slot i of model k in one epoch's shuffle: the model in the top 6
// bits (so one sort over all models keeps each model's slots together) and 58 random bits. Both
// backends sort by it with a stable sort, so they visit the data in the same order.
MBMPO_HD_INLINE std::uint64_t shuffle_key(std::uint64_t seed, std::uint64_t draw,
                                          std::uint64_t epoch, int model, std::int64_t i) {
  const Philox4x32 r = philox(seed, (draw << 32) | (epoch & 0xffffffffu),
                              (std::uint64_t(model) << 32) | std::uint64_t(i));
  const std::uint64_t random = (std::uint64_t(r.v[0]) << 32) | r.v[1];
  return (std::uint64_t(model) << 58) | (random >> 6);
}

// Who keys each model's shuffle. One ensemble: every model by (seed, draw). A stack of several
// seeds' ensembles fitted together: consecutive blocks of models_per_seed models, seed s keyed
// by (seed[s], draw[s]) with its models counted from 0, so that each model visits its data in the
// order its own ensemble's fit would.
struct ShuffleKeys {
  int models_per_seed = 0;  // 0: one seed
  std::uint64_t seed[kMaxEnsembleModels] = {};
  std::uint64_t draw[kMaxEnsembleModels] = {};
};

inline ShuffleKeys single_shuffle_keys(std::uint64_t seed, std::uint64_t draw) {
  ShuffleKeys keys;
  keys.seed[0] = seed;
  keys.draw[0] = draw;
  return keys;
}

// Model `model`'s key: its seed's random bits under the stack-wide model number, so one sort over
// all models keeps each model's slots together and orders them as the seed's own sort would.
MBMPO_HD_INLINE std::uint64_t shuffle_key(const ShuffleKeys& keys, std::uint64_t epoch, int model, std::int64_t i) {
  const int s = keys.models_per_seed > 0 ? model / keys.models_per_seed : 0;
  const int local = model - s * keys.models_per_seed;
  const std::uint64_t own = shuffle_key(keys.seed[s], keys.draw[s], epoch, local, i);
  return (std::uint64_t(model) << 58) | (own & ((std::uint64_t(1) << 58) - 1));
}

namespace cpu {

template <class T, class Raw>
void gather_normalize(const GatherDims& d, const Raw* obs, const Raw* act, const Raw* delta,
                      const std::int32_t* indices, const NormalizerView<T>& norm, T* x, T* target) {
  const int in = d.obs_dim + d.act_dim;
  for (int k = 0; k < d.models; ++k) {
    const NormalizerView<T> norm_k = norm.for_model(k);
    for (int r = 0; r < d.rows; ++r) {
      const std::int64_t src = indices[k * d.index_stride + r];
      T* x_row = x + (std::int64_t(k) * d.rows + r) * in;
      T* t_row = target ? target + (std::int64_t(k) * d.rows + r) * d.obs_dim : nullptr;
      for (int j = 0; j < in; ++j) {
        if (src < 0) {
          x_row[j] = T(0);
          continue;
        }
        const T raw = j < d.obs_dim ? T(obs[src * d.obs_dim + j]) : T(act[src * d.act_dim + j - d.obs_dim]);
        x_row[j] = (raw - norm_k.input_mean[j]) / (norm_k.input_std[j] + norm_k.eps);
      }
      if (!t_row) continue;
      for (int j = 0; j < d.obs_dim; ++j) {
        t_row[j] = src < 0 ? T(0)
                           : (T(delta[src * d.obs_dim + j]) - norm_k.delta_mean[j]) /
                                 (norm_k.delta_std[j] + norm_k.eps);
      }
    }
  }
}

// loss_sum[k] += sum over model k's rows of the squared error; when dy is given,
// dy = d/dy of mean-over-(rows x dim) squared error, per model.
template <class T>
void mse_loss_grad(int models, int rows, int dim, const T* y, const T* target, T* dy, T* loss_sum) {
  const std::int64_t per_model = std::int64_t(rows) * dim;
  const T grad_scale = per_model > 0 ? T(2) / T(per_model) : T(0);
  for (int k = 0; k < models; ++k) {
    T sum = T(0);
    for (std::int64_t i = k * per_model; i < (k + 1) * per_model; ++i) {
      const T e = y[i] - target[i];
      sum += e * e;
      if (dy) dy[i] = grad_scale * e;
    }
    loss_sum[k] += sum;
  }
}

// next_obs[src] = clip(obs[src] + (y + bias) * (delta_std + eps) + delta_mean, +-clip) for every
// non-padding row; bias (the last layer's, [K][obs_dim]) may be null when y already includes it.
template <class T>
void denormalize_scatter(const GatherDims& d, const T* y, const T* bias, const T* obs,
                         const std::int32_t* indices, const NormalizerView<T>& norm, T clip,
                         T* next_obs) {
  for (int k = 0; k < d.models; ++k) {
    const NormalizerView<T> norm_k = norm.for_model(k);
    for (int r = 0; r < d.rows; ++r) {
      const std::int64_t dst = indices[k * d.index_stride + r];
      if (dst < 0) continue;
      const T* y_row = y + (std::int64_t(k) * d.rows + r) * d.obs_dim;
      for (int j = 0; j < d.obs_dim; ++j) {
        const T out = y_row[j] + (bias ? bias[k * d.obs_dim + j] : T(0));
        const T next = obs[dst * d.obs_dim + j] + out * (norm_k.delta_std[j] + norm_k.eps) + norm_k.delta_mean[j];
        next_obs[dst * d.obs_dim + j] = std::min(std::max(next, -clip), clip);
      }
    }
  }
}

// One contiguous run of a model's parameters per (segment, model), one run per OpenMP thread:
// the inner loop has no model lookup and vectorises, and each element is updated by exactly one
// thread (results do not depend on the thread count).
template <class T>
void adam_update(std::int64_t /*count: the segments cover it*/, const AdamStep& step, T* params,
                 const T* grads, T* m, T* v) {
  MBMPO_CHECK(step.segment_count == 0 || step.models > 0,
              "adam_update: AdamStep.models is not set (use adam_step_for)");
  const int runs = step.segment_count * step.models;
  MBMPO_PARALLEL_FOR
  for (int run = 0; run < runs; ++run) {
    const int segment = run / step.models, k = run % step.models;
    if (!step.active[k]) continue;
    const std::int64_t per_model = step.segment_per_model[segment];
    const std::int64_t first = step.segment_offset[segment] + k * per_model;
    const T beta1 = T(step.beta1), beta2 = T(step.beta2), epsilon = T(step.epsilon), lr = T(step.lr_t[k]);
    for (std::int64_t i = first; i < first + per_model; ++i) {
      const T g = grads[i];
      m[i] = beta1 * m[i] + (T(1) - beta1) * g;
      v[i] = beta2 * v[i] + (T(1) - beta2) * g * g;
      params[i] -= lr * m[i] / (std::sqrt(v[i]) + epsilon);
    }
  }
}

// out[k][i] = in[k][order_k(i)], order_k sorting model k's slots by shuffle_key.
inline void shuffle_indices(int models, std::int64_t count, const ShuffleKeys& shuffle, std::uint64_t epoch,
                            const std::int32_t* in, std::int32_t* out) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(count));
  std::vector<std::uint64_t> keys(static_cast<std::size_t>(count));
  for (int k = 0; k < models; ++k) {
    for (std::int64_t i = 0; i < count; ++i) keys[i] = shuffle_key(shuffle, epoch, k, i);
    std::iota(order.begin(), order.end(), std::int64_t(0));
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int64_t a, std::int64_t b) { return keys[a] < keys[b]; });
    for (std::int64_t i = 0; i < count; ++i) out[k * count + i] = in[k * count + order[i]];
  }
}

inline void shuffle_indices(int models, std::int64_t count, std::uint64_t seed, std::uint64_t draw,
                            std::uint64_t epoch, const std::int32_t* in, std::int32_t* out) {
  shuffle_indices(models, count, single_shuffle_keys(seed, draw), epoch, in, out);
}

// Activations of one forward pass, kept for the backward pass.
template <class T>
struct MlpActivations {
  std::vector<std::vector<T>> pre, out;  // per layer, [K][rows][layer.out]
};

// Forward through every layer. When skip_last_bias is set the last layer's bias is not added
// (the caller folds it into the de-normalisation).
template <class T>
void mlp_forward(const EnsembleMlpLayout& layout, const T* params, const T* x, int rows,
                 MlpActivations<T>& acts, bool skip_last_bias = false) {
  const auto& layers = layout.layers();
  acts.pre.resize(layers.size());
  acts.out.resize(layers.size());
  const T* input = x;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const EnsembleMlpLayer& layer = layers[l];
    const std::size_t n = std::size_t(layout.models()) * rows * layer.out;
    acts.pre[l].resize(n);
    acts.out[l].resize(n);
    const bool no_bias = skip_last_bias && l + 1 == layers.size();
    ensemble_linear_forward<T>({layout.models(), rows, layer.in, layer.out}, layer.activation,
                               input, params + layer.v_offset, params + layer.g_offset, nullptr,
                               no_bias ? nullptr : params + layer.b_offset,
                               acts.pre[l].data(), acts.out[l].data());
    input = acts.out[l].data();
  }
}

// Overwrites grads (same layout as params) from dL/d(output) of the last layer.
template <class T>
void mlp_backward(const EnsembleMlpLayout& layout, const T* params, const T* x, int rows,
                  const MlpActivations<T>& acts, const T* dy_last, T* grads) {
  const auto& layers = layout.layers();
  std::vector<T> dy(dy_last, dy_last + std::size_t(layout.models()) * rows * layout.output_dim());
  std::vector<T> dx;
  for (std::size_t l = layers.size(); l-- > 0;) {
    const EnsembleMlpLayer& layer = layers[l];
    const T* input = l == 0 ? x : acts.out[l - 1].data();
    if (l > 0) dx.assign(std::size_t(layout.models()) * rows * layer.in, T(0));
    ensemble_linear_backward<T>({layout.models(), rows, layer.in, layer.out}, layer.activation,
                                input, params + layer.v_offset, params + layer.g_offset, nullptr,
                                acts.pre[l].data(), dy.data(), l > 0 ? dx.data() : nullptr,
                                grads + layer.v_offset, grads + layer.g_offset,
                                grads + layer.b_offset);
    dy.swap(dx);
  }
}

}  // namespace cpu
}  // namespace mbmpo
