#include "host/models/dynamics_ensemble.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "host/core/cuda_graph.hpp"
#include "host/core/memory_budget.hpp"
#include "host/core/sizes_text.hpp"
#include "host/core/nvtx.hpp"
#include "host/models/ensemble_linear.hpp"
#include "host/models/ensemble_mlp_ops.hpp"

namespace mbmpo {

DynamicsEnsemble::DynamicsEnsemble(Context& context, int obs_dim, int act_dim,
                                   DynamicsEnsembleConfig config, std::uint64_t init_seed)
    : context_(context),
      obs_dim_(obs_dim),
      act_dim_(act_dim),
      config_(std::move(config)),
      layout_(config_.models, obs_dim + act_dim, config_.hidden, obs_dim, config_.activation) {
  MBMPO_CHECK_INPUT(obs_dim > 0 && act_dim > 0, "dynamics ensemble: observation and action sizes (obs_dim, act_dim) must be positive, got ",
                    obs_dim, " and ", act_dim);
  MBMPO_CHECK_INPUT(int(layout_.segments().size()) <= kMaxParameterSegments,
                    "dynamics ensemble: at most ", kMaxParameterSegments / 3, " layers");
  MBMPO_CHECK_INPUT(config_.normalization_eps >= 0, "dynamics ensemble: normalisation eps must be >= 0");
  MBMPO_CHECK_INPUT(config_.next_obs_clip > 0, "dynamics ensemble: the next-observation clip must be positive");

  const Backend backend = context.backend();
  const std::int64_t count = layout_.parameter_count();
  // The weights, their gradient and Adam's two moments, before any activation.
  check_memory(backend, 4.0 * sizeof(float) * double(count),
               "a dynamics ensemble of " + std::to_string(config_.models) + " models with hidden sizes " +
                   join_sizes(config_.hidden));
  std::vector<float> init(static_cast<std::size_t>(count), 0.f);
  for (const EnsembleMlpLayer& layer : layout_.layers()) {
    const float limit = std::sqrt(6.f / float(layer.in + layer.out));  // Xavier-uniform
    const std::int64_t n = std::int64_t(layout_.models()) * layer.out * layer.in;
    for (std::int64_t i = 0; i < n; ++i) {
      const float u = uniform_at(init_seed, static_cast<std::uint64_t>(layer.v_offset), static_cast<std::uint64_t>(i));
      init[layer.v_offset + i] = limit * (2.f * u - 1.f);
    }
    std::fill_n(init.begin() + layer.g_offset, std::int64_t(layout_.models()) * layer.out, 1.f);
  }
  params_ = Tensor<float>::from_host(backend, {count}, init, &context_);
  std::int64_t weight_count = 0;
  for (const EnsembleMlpLayer& layer : layout_.layers()) {
    weight_offsets_.push_back(weight_count);
    weight_count += std::int64_t(layout_.models()) * layer.out * layer.in;
  }
  weights_ = Tensor<float>(backend, {weight_count});
  grads_ = Tensor<float>(backend, {count});
  adam_m_ = Tensor<float>(backend, {count});
  adam_v_ = Tensor<float>(backend, {count});
  adam_m_.fill_zero(&context_);
  adam_v_.fill_zero(&context_);
  adam_steps_.assign(layout_.models(), 0);

  const int in = obs_dim + act_dim;
  std::vector<float> identity(static_cast<std::size_t>(2 * in + 2 * obs_dim), 0.f);
  std::fill_n(identity.begin() + in, in, 1.f);
  std::fill_n(identity.begin() + 2 * in + obs_dim, obs_dim, 1.f);
  normalization_ = Tensor<float>::from_host(backend, {std::int64_t(identity.size())}, identity, &context_);
}

EnsembleLinearParams DynamicsEnsemble::layer_params(std::size_t l, bool with_weights, int first, int count) const {
  const EnsembleMlpLayer& layer = layout_.layers()[l];
  const Backend backend = context_.backend();
  const std::int64_t k = count < 0 ? layout_.models() - first : count;
  const std::int64_t wide = std::int64_t(first) * layer.out * layer.in, narrow = std::int64_t(first) * layer.out;
  const float* params = params_.data();
  EnsembleLinearParams p{{backend, params + layer.v_offset + wide, {k, layer.out, layer.in}},
                         {backend, params + layer.g_offset + narrow, {k, layer.out}},
                         {backend, params + layer.b_offset + narrow, {k, layer.out}},
                         {backend, nullptr, {k, layer.out, layer.in}}};
  p.tf32 = config_.tf32;
  // Whole blocks of a stack's seeds: one call per seed on CUDA, as in the seed's own ensemble.
  const std::int64_t per_seed = models_per_seed();
  if (k > 0 && k % per_seed == 0) p.seeds = int(k / per_seed);
  if (with_weights) {
    MBMPO_CHECK(weights_current_, "dynamics ensemble: effective weights used while stale");
    p.w.data = weights_.data() + weight_offsets_[l] + wide;
  }
  return p;
}

void DynamicsEnsemble::refresh_weights() {
  const Backend backend = context_.backend();
  for (std::size_t l = 0; l < layout_.layers().size(); ++l) {
    const EnsembleLinearParams p = layer_params(l, false);
    ensemble_weight_norm(context_, p, {backend, weights_.data() + weight_offsets_[l], p.v.shape});
  }
  weights_current_ = true;
}

NormalizerView<float> DynamicsEnsemble::normalizer_view() const {
  const int in = obs_dim_ + act_dim_;
  const float* n = normalization_.data();
  NormalizerView<float> view{n, n + in, n + 2 * in, n + 2 * in + obs_dim_,
                             static_cast<float>(config_.normalization_eps)};
  if (seeds_ > 1) {
    view.models_per_seed = models_per_seed();
    view.seed_stride = 2 * in + 2 * obs_dim_;
  }
  return view;
}

void DynamicsEnsemble::split_into_seeds(int seeds) {
  MBMPO_CHECK(seeds >= 1 && layout_.models() % seeds == 0, "dynamics ensemble: ", layout_.models(),
              " models do not split into ", seeds, " seeds");
  if (seeds == seeds_) return;
  normalization_ = Tensor<float>(context_.backend(), {normalization_.numel() / seeds_ * seeds});
  seeds_ = seeds;
}

void DynamicsEnsemble::append_normalization(const DatasetStats& stats, std::vector<float>& out) {
  for (const auto* part : {&stats.obs.mean, &stats.act.mean, &stats.obs.std, &stats.act.std,
                           &stats.delta.mean, &stats.delta.std}) {
    for (double x : *part) out.push_back(static_cast<float>(x));
  }
}

void DynamicsEnsemble::set_normalization(const DatasetStats& stats) {
  MBMPO_CHECK(int(stats.obs.mean.size()) == obs_dim_ && int(stats.act.mean.size()) == act_dim_ &&
                  int(stats.delta.mean.size()) == obs_dim_,
              "dynamics ensemble: statistics of the wrong sizes");
  std::vector<float> values;
  append_normalization(stats, values);
  normalization_.copy_from_host(values, &context_);
}

ModelAssignment DynamicsEnsemble::assign(const std::vector<int>& model_of_row) const {
  const int K = layout_.models();
  std::vector<std::vector<std::int32_t>> groups(K);
  MBMPO_CHECK(model_of_row.size() <= std::size_t(std::numeric_limits<std::int32_t>::max()),
              "model_of_row: too many rows");
  for (std::size_t r = 0; r < model_of_row.size(); ++r) {
    const int k = model_of_row[r];
    MBMPO_CHECK_INPUT(k >= 0 && k < K, "model_of_row[", r, "] is ", k, ", not one of the ", K, " models");
    groups[k].push_back(static_cast<std::int32_t>(r));
  }
  int rows = 0;
  for (const auto& g : groups) rows = std::max(rows, int(g.size()));
  std::vector<std::int32_t> indices(std::size_t(K) * rows, -1);
  for (int k = 0; k < K; ++k) std::copy(groups[k].begin(), groups[k].end(), indices.begin() + std::size_t(k) * rows);
  return {K, rows, std::int64_t(model_of_row.size()),
          Tensor<std::int32_t>::from_host(context_.backend(), {K, rows}, indices, &context_)};
}

ModelAssignment DynamicsEnsemble::grouped_assignment(int rows_per_model) const {
  MBMPO_CHECK(rows_per_model >= 0, "grouped assignment: negative rows");
  const int K = layout_.models();
  std::vector<std::int32_t> indices(std::size_t(K) * rows_per_model);
  for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<std::int32_t>(i);
  return {K, rows_per_model, std::int64_t(indices.size()),
          Tensor<std::int32_t>::from_host(context_.backend(), {K, rows_per_model}, indices, &context_)};
}

void DynamicsEnsemble::predict(TensorView<const float> obs, TensorView<const float> act,
                               const ModelAssignment& assignment, TensorView<float> next_obs) {
  MBMPO_NVTX_RANGE("model_predict");
  const Backend backend = context_.backend();
  MBMPO_CHECK(obs.shape.size() == 2, "predict: obs must be [rows, obs_dim], got ", shape_to_string(obs.shape));
  const std::int64_t n = obs.dim(0);
  expect_shape(obs, {n, obs_dim_}, backend, "predict obs");
  expect_shape(act, {n, act_dim_}, backend, "predict act");
  expect_shape(next_obs, {n, obs_dim_}, backend, "predict next_obs");
  MBMPO_CHECK(assignment.models == layout_.models() &&
                  assignment.indices.backend() == backend,
              "predict: the model assignment was made for another ensemble");
  MBMPO_CHECK(assignment.total_rows == n, "predict: the model assignment is for ",
              assignment.total_rows, " rows, the call has ", n);
  run_predict(obs.data, act.data, assignment, next_obs.data);
}

void DynamicsEnsemble::prepare_predict(const ModelAssignment& assignment) {
  if (!weights_current_) refresh_weights();
  const std::int64_t needed = std::int64_t(layout_.models()) * assignment.rows_per_model * layout_.widest();
  if (predict_a_.numel() < needed) {
    MBMPO_CHECK(!stream_capture_active(), "predict: its workspace must be prepared (prepare_predict) before a "
                "CUDA graph records it");
    context_.synchronize();  // an earlier predict may still be reading the buffers being replaced
    predict_a_ = Tensor<float>(context_.backend(), {needed});
    predict_b_ = Tensor<float>(context_.backend(), {needed});
  }
}

void DynamicsEnsemble::run_predict(const float* obs, const float* act,
                                   const ModelAssignment& assignment, float* next_obs) {
  const Backend backend = context_.backend();
  const int K = layout_.models(), rows = assignment.rows_per_model;
  if (rows == 0) return;
  prepare_predict(assignment);
  const GatherDims dims{K, rows, obs_dim_, act_dim_, rows};
  const NormalizerView<float> norm = normalizer_view();
  gather_normalize(context_, dims, obs, act, nullptr, assignment.indices.data(), norm,
                   predict_a_.data(), nullptr);
  const auto& layers = layout_.layers();
  float* input = predict_a_.data();
  float* output = predict_b_.data();
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const bool last = l + 1 == layers.size();
    EnsembleLinearParams p = layer_params(l, true);
    if (last) p.b.data = nullptr;  // the bias is added in the fused de-normalisation below
    ensemble_linear_forward(context_, layers[l].activation, p,
                            TensorView<const float>{backend, input, {K, rows, layers[l].in}},
                            TensorView<float>{backend, nullptr, {K, rows, layers[l].out}},
                            TensorView<float>{backend, output, {K, rows, layers[l].out}});
    std::swap(input, output);
  }
  const float* last_bias = params_.data() + layers.back().b_offset;
  denormalize_scatter(context_, dims, input, last_bias, obs, assignment.indices.data(), norm,
                      static_cast<float>(config_.next_obs_clip), next_obs);
}

}  // namespace mbmpo
