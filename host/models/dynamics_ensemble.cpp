#include "host/models/dynamics_ensemble.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <iomanip>
#include <limits>
#include <sstream>

#include "host/core/cpu_threads.hpp"
#include "host/core/cuda_graph.hpp"
#include "host/core/sizes_text.hpp"
#include "host/core/nvtx.hpp"
#include "host/core/safetensors.hpp"
#include "host/core/stream_copy.hpp"
#include "host/models/early_stopping.hpp"
#include "host/models/ensemble_linear.hpp"

#ifdef MBMPO_WITH_CUDA
#include "kernels/models/ensemble_mlp_cuda.hpp"
#endif

namespace mbmpo {
namespace {

// ---- backend dispatch of the ensemble operations (contracts in ensemble_mlp_cpu.hpp) ----------

void gather_normalize(Context& c, const GatherDims& d, const float* obs, const float* act,
                      const float* delta, const std::int32_t* indices,
                      const NormalizerView<float>& norm, float* x, float* target) {
  if (c.backend() == Backend::cpu) return cpu::gather_normalize(d, obs, act, delta, indices, norm, x, target);
#ifdef MBMPO_WITH_CUDA
  cuda::gather_normalize(c.cuda(), d, obs, act, delta, indices, norm, x, target);
#endif
}

void mse_loss_grad(Context& c, int models, int rows, int dim, const float* y, const float* target,
                   float* dy, float* loss_sum) {
  if (c.backend() == Backend::cpu) return cpu::mse_loss_grad(models, rows, dim, y, target, dy, loss_sum);
#ifdef MBMPO_WITH_CUDA
  cuda::mse_loss_grad(c.cuda(), models, rows, dim, y, target, dy, loss_sum);
#endif
}

void denormalize_scatter(Context& c, const GatherDims& d, const float* y, const float* bias,
                         const float* obs, const std::int32_t* indices,
                         const NormalizerView<float>& norm, float clip, float* next_obs) {
  if (c.backend() == Backend::cpu) return cpu::denormalize_scatter(d, y, bias, obs, indices, norm, clip, next_obs);
#ifdef MBMPO_WITH_CUDA
  cuda::denormalize_scatter(c.cuda(), d, y, bias, obs, indices, norm, clip, next_obs);
#endif
}

void adam_update(Context& c, std::int64_t count, const AdamStep& step, float* params,
                 const float* grads, float* m, float* v) {
  if (c.backend() == Backend::cpu) return cpu::adam_update(count, step, params, grads, m, v);
#ifdef MBMPO_WITH_CUDA
  cuda::adam_update(c.cuda(), count, step, params, grads, m, v);
#endif
}

void shuffle_indices(Context& c, int models, std::int64_t count, const ShuffleKeys& keys,
                     std::uint64_t epoch, const std::int32_t* in, std::int32_t* out) {
  if (c.backend() == Backend::cpu) return cpu::shuffle_indices(models, count, keys, epoch, in, out);
#ifdef MBMPO_WITH_CUDA
  cuda::shuffle_indices(c.cuda(), models, count, keys, epoch, in, out);
#endif
}

const char* activation_name(Activation act) {
  switch (act) {
    case Activation::relu: return "relu";
    case Activation::tanh: return "tanh";
    case Activation::swish: return "swish";
    case Activation::identity: return "identity";
  }
  return "?";
}

// A member's normalisation as the ensemble keeps it: input mean (obs, act), input std, delta mean,
// delta std, appended to `out`.
void append_normalization(const DatasetStats& stats, std::vector<float>& out) {
  for (const auto* part : {&stats.obs.mean, &stats.act.mean, &stats.obs.std, &stats.act.std,
                           &stats.delta.mean, &stats.delta.std}) {
    for (double x : *part) out.push_back(static_cast<float>(x));
  }
}

void check_options(const ModelFitOptions& o) {
  MBMPO_CHECK_INPUT(o.learning_rate > 0 && std::isfinite(o.learning_rate),
                    "model fit: learning rate must be positive, got ", o.learning_rate);
  MBMPO_CHECK_INPUT(o.batch_size > 0, "model fit: batch size must be positive, got ", o.batch_size);
  MBMPO_CHECK_INPUT(o.max_epochs >= 0, "model fit: max epochs must be >= 0, got ", o.max_epochs);
  MBMPO_CHECK_INPUT(o.validation_fraction > 0 && o.validation_fraction < 1,
                    "model fit: validation fraction must be in (0, 1), got ", o.validation_fraction);
  MBMPO_CHECK_INPUT(o.rolling_average_persistency >= 0 && o.rolling_average_persistency < 1,
                    "model fit: rolling average persistency must be in [0, 1), got ",
                    o.rolling_average_persistency);
  MBMPO_CHECK_INPUT(o.adam_beta1 >= 0 && o.adam_beta1 < 1 && o.adam_beta2 >= 0 && o.adam_beta2 < 1,
                    "model fit: Adam betas must be in [0, 1)");
  MBMPO_CHECK_INPUT(o.adam_epsilon > 0, "model fit: Adam epsilon must be positive");
  MBMPO_CHECK_INPUT(o.validation_chunk_rows > 0, "model fit: validation chunk must be positive");
}

// The gradients of models [first, first + count) of a layer.
EnsembleLinearGrads layer_grads(const EnsembleMlpLayout& layout, const EnsembleMlpLayer& layer,
                                Backend backend, float* grads, int first = 0, int count = -1) {
  const std::int64_t k = count < 0 ? layout.models() - first : count;
  const std::int64_t wide = std::int64_t(first) * layer.out * layer.in, narrow = std::int64_t(first) * layer.out;
  return {{backend, grads + layer.v_offset + wide, {k, layer.out, layer.in}},
          {backend, grads + layer.g_offset + narrow, {k, layer.out}},
          {backend, grads + layer.b_offset + narrow, {k, layer.out}}};
}

}  // namespace

DynamicsEnsemble::DynamicsEnsemble(Context& context, int obs_dim, int act_dim,
                                   DynamicsEnsembleConfig config, std::uint64_t init_seed)
    : context_(context),
      obs_dim_(obs_dim),
      act_dim_(act_dim),
      config_(std::move(config)),
      layout_(config_.models, obs_dim + act_dim, config_.hidden, obs_dim, config_.activation) {
  MBMPO_CHECK_INPUT(obs_dim > 0 && act_dim > 0, "dynamics ensemble: observation and action sizes must be positive");
  MBMPO_CHECK_INPUT(int(layout_.segments().size()) <= kMaxParameterSegments,
                    "dynamics ensemble: at most ", kMaxParameterSegments / 3, " layers");
  MBMPO_CHECK_INPUT(config_.normalization_eps >= 0, "dynamics ensemble: normalisation eps must be >= 0");
  MBMPO_CHECK_INPUT(config_.next_obs_clip > 0, "dynamics ensemble: the next-observation clip must be positive");

  const Backend backend = context.backend();
  const std::int64_t count = layout_.parameter_count();
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
  // The models of whole members are those members' seeds (one call each on CUDA).
  const std::int64_t per_member = models_per_member();
  if (k > 0 && k % per_member == 0) p.seeds = int(k / per_member);
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
  if (members_ > 1) {
    view.models_per_set = models_per_member();
    view.set_stride = 2 * in + 2 * obs_dim_;
  }
  return view;
}

void DynamicsEnsemble::stack(const std::vector<DynamicsEnsemble*>& members) {
  MBMPO_CHECK(!members.empty(), "ensemble stack: no members");
  const int count = int(members.size());
  const int K = members.front()->models();
  MBMPO_CHECK(K * count == layout_.models(), "ensemble stack: ", count, " ensembles of ", K,
              " models do not make the stack's ", layout_.models());
  for (const DynamicsEnsemble* m : members) {
    MBMPO_CHECK(m->members_ == 1 && m->models() == K && m->obs_dim_ == obs_dim_ && m->act_dim_ == act_dim_ &&
                    m->config_.hidden == config_.hidden && m->config_.activation == config_.activation &&
                    m->config_.normalization_eps == config_.normalization_eps &&
                    m->config_.next_obs_clip == config_.next_obs_clip && m->config_.tf32 == config_.tf32 &&
                    &m->context_ == &context_,
                "ensemble stack: every member must have the stack's architecture and context");
  }
  if (members_ != count) {
    normalization_ = Tensor<float>(context_.backend(), {normalization_.numel() / members_ * count});
    members_ = count;
  }
  exchange(members, true);
}

void DynamicsEnsemble::exchange(const std::vector<DynamicsEnsemble*>& members, bool into_stack) {
  const Backend backend = context_.backend();
  const int K = models_per_member();
  const std::int64_t stats = normalization_.numel() / members_;
  // Ordered on the stream after the work that produced the source.
  auto copy = [&](float* stacked, float* own, std::int64_t n) {
    const TensorView<float> a{backend, stacked, {n}}, b{backend, own, {n}};
    if (into_stack) {
      copy_on_stream(context_, a, b);
    } else {
      copy_on_stream(context_, b, a);
    }
  };
  for (int m = 0; m < int(members.size()); ++m) {
    DynamicsEnsemble& member = *members[m];
    if (into_stack && !member.weights_current_) member.refresh_weights();
    const bool weights = into_stack || weights_current_;
    for (std::size_t l = 0; l < layout_.layers().size(); ++l) {
      const EnsembleMlpLayer& to = layout_.layers()[l];
      const EnsembleMlpLayer& from = member.layout_.layers()[l];
      const std::int64_t vs = std::int64_t(K) * to.out * to.in, gs = std::int64_t(K) * to.out;
      for (auto [stacked, own] : {std::pair{&params_, &member.params_}, std::pair{&adam_m_, &member.adam_m_},
                                  std::pair{&adam_v_, &member.adam_v_}}) {
        copy(stacked->data() + to.v_offset + m * vs, own->data() + from.v_offset, vs);
        copy(stacked->data() + to.g_offset + m * gs, own->data() + from.g_offset, gs);
        copy(stacked->data() + to.b_offset + m * gs, own->data() + from.b_offset, gs);
      }
      if (weights) copy(weights_.data() + weight_offsets_[l] + m * vs, member.weights_.data() + member.weight_offsets_[l], vs);
    }
    copy(normalization_.data() + m * stats, member.normalization_.data(), stats);
    for (int k = 0; k < K; ++k) {
      if (into_stack) {
        adam_steps_[m * K + k] = member.adam_steps_[k];
      } else {
        member.adam_steps_[k] = adam_steps_[m * K + k];
      }
    }
    if (!into_stack) member.weights_current_ = weights_current_;
  }
  if (into_stack) weights_current_ = true;  // the members' own effective weights, copied: no recomputation
}

void DynamicsEnsemble::set_normalization(const DatasetStats& stats) {
  MBMPO_CHECK(int(stats.obs.mean.size()) == obs_dim_ && int(stats.act.mean.size()) == act_dim_ &&
                  int(stats.delta.mean.size()) == obs_dim_,
              "dynamics ensemble: statistics of the wrong sizes");
  std::vector<float> values;
  append_normalization(stats, values);
  normalization_.copy_from_host(values, &context_);
}

ModelFitReport DynamicsEnsemble::fit(const Dataset& data, const ModelFitOptions& options) {
  MBMPO_NVTX_RANGE("fit_models");
  MBMPO_CHECK(members_ == 1, "model fit: a stack of ensembles is fitted through fit_together");
  check_fit_input(data, options);
  return fit_members({&data}, {options}, {fits_done_++}).front();
}

void DynamicsEnsemble::check_fit_input(const Dataset& data, const ModelFitOptions& options) const {
  check_options(options);
  MBMPO_CHECK_INPUT(data.obs_dim() == obs_dim_ && data.act_dim() == act_dim_,
                    "model fit: dataset has obs/act sizes ", data.obs_dim(), "/", data.act_dim(),
                    ", the ensemble ", obs_dim_, "/", act_dim_);
  MBMPO_CHECK_INPUT(data.size() >= 2, "model fit: need at least 2 transitions, the dataset has ",
                    data.size());
  // Adam's per-model settings travel in a fixed-size kernel argument.
  MBMPO_CHECK_INPUT(layout_.models() <= kMaxEnsembleModels, "model fit: at most ", kMaxEnsembleModels,
                    " models in one fit, got ", layout_.models());
}

namespace {

// Every option but the seed: what lets several seeds' fits run as one.
bool same_but_seed(ModelFitOptions a, ModelFitOptions b) {
  a.seed = b.seed = 0;
  return a.learning_rate == b.learning_rate && a.batch_size == b.batch_size && a.max_epochs == b.max_epochs &&
         a.validation_fraction == b.validation_fraction && a.early_stopping == b.early_stopping &&
         a.rolling_average_persistency == b.rolling_average_persistency && a.adam_beta1 == b.adam_beta1 &&
         a.adam_beta2 == b.adam_beta2 && a.adam_epsilon == b.adam_epsilon &&
         a.validation_chunk_rows == b.validation_chunk_rows;
}

}  // namespace

bool DynamicsEnsemble::can_fit_together(const std::vector<DynamicsEnsemble*>& members,
                                        const std::vector<const Dataset*>& data,
                                        const std::vector<ModelFitOptions>& options) {
  if (members.size() < 2 || data.size() != members.size() || options.size() != members.size()) return false;
  if (int(members.size()) * members.front()->models() > kMaxEnsembleModels) return false;
  std::int64_t transitions = 0;  // indexed by int32 in one fit
  for (const Dataset* d : data) transitions += std::int64_t(d->size());
  if (transitions > std::numeric_limits<std::int32_t>::max()) return false;
  for (std::size_t b = 0; b < members.size(); ++b) {
    if (!same_but_seed(options[b], options.front())) return false;
  }
  return true;
}

std::vector<ModelFitReport> DynamicsEnsemble::fit_together(const std::vector<DynamicsEnsemble*>& members,
                                                           const std::vector<const Dataset*>& data,
                                                           const std::vector<ModelFitOptions>& options) {
  MBMPO_NVTX_RANGE("fit_models");
  MBMPO_CHECK(can_fit_together(members, data, options), "fit_together: ", members.size(),
              " members that cannot be fitted as one (see can_fit_together)");
  for (std::size_t b = 0; b < members.size(); ++b) members[b]->check_fit_input(*data[b], options[b]);
  stack(members);
  std::vector<std::uint64_t> draws;
  for (DynamicsEnsemble* member : members) draws.push_back(member->fits_done_++);
  std::vector<ModelFitReport> reports = fit_members(data, options, draws);
  exchange(members, false);
  return reports;
}

namespace {

// Consecutive members [first, last) with the same non-zero key: what one call can cover.
std::vector<std::pair<int, int>> spans(int members, const std::function<std::int64_t(int)>& key) {
  std::vector<std::pair<int, int>> out;
  for (int b = 0; b < members;) {
    const std::int64_t k = key(b);
    int e = b + 1;
    while (e < members && key(e) == k) ++e;
    if (k != 0) out.push_back({b, e});
    b = e;
  }
  return out;
}

}  // namespace

std::vector<ModelFitReport> DynamicsEnsemble::fit_members(const std::vector<const Dataset*>& datasets,
                                                          const std::vector<ModelFitOptions>& member_options,
                                                          const std::vector<std::uint64_t>& draws) {
  const auto start = std::chrono::steady_clock::now();
  const Backend backend = context_.backend();
  const int K = layout_.models();            // every model of the fit
  const int members = int(datasets.size());  // ensembles fitted together (seeds), Km models each
  const int Km = K / members;
  MBMPO_CHECK(members == members_ && Km * members == K, "model fit: ", members, " datasets for ", members_,
              " members");
  const ModelFitOptions& options = member_options.front();  // all but the seed are common

  // Normalisation from each member's dataset.
  std::vector<float> stats_host;
  for (const Dataset* data : datasets) append_normalization(data->stats(), stats_host);
  normalization_.copy_from_host(stats_host, &context_);
  const NormalizerView<float> norm = normalizer_view();

  // The transitions, uploaded once per fit: member b's from row first_row[b] on.
  std::vector<float> obs_host, act_host, delta_host;
  std::vector<std::int64_t> first_row(members + 1, 0);
  for (int b = 0; b < members; ++b) {
    const Dataset& data = *datasets[b];
    const std::int64_t n = static_cast<std::int64_t>(data.size());
    first_row[b + 1] = first_row[b] + n;
    for (std::int64_t i = 0; i < n; ++i) {
      obs_host.insert(obs_host.end(), data.obs(i), data.obs(i) + obs_dim_);
      act_host.insert(act_host.end(), data.act(i), data.act(i) + act_dim_);
      for (int j = 0; j < obs_dim_; ++j) delta_host.push_back(data.next_obs(i)[j] - data.obs(i)[j]);
    }
  }
  MBMPO_CHECK(first_row[members] <= std::numeric_limits<std::int32_t>::max(), "model fit: too many transitions");
  const auto obs = Tensor<float>::from_host(backend, {first_row[members], obs_dim_}, obs_host, &context_);
  const auto act = Tensor<float>::from_host(backend, {first_row[members], act_dim_}, act_host, &context_);
  const auto delta = Tensor<float>::from_host(backend, {first_row[members], obs_dim_}, delta_host, &context_);

  // A fresh split per model, keyed by its member's seed and fit; a member's models get the same
  // counts (members' counts differ with their datasets). Member b's indices are [Km][n_train[b]]
  // from train_at[b] on (validation likewise), so a run of members of one count is one block.
  std::vector<std::int32_t> train_host, val_host;
  std::vector<std::int64_t> n_train(members), n_val(members), train_at(members), val_at(members);
  for (int b = 0; b < members; ++b) {
    train_at[b] = std::int64_t(train_host.size());
    val_at[b] = std::int64_t(val_host.size());
    for (int k = 0; k < Km; ++k) {
      const TrainValidationSplit split =
          datasets[b]->split(options.validation_fraction, member_options[b].seed, k, draws[b]);
      MBMPO_CHECK(k == 0 || (n_train[b] == std::int64_t(split.train.size()) &&
                             n_val[b] == std::int64_t(split.validation.size())),
                  "model fit: the models' splits of one dataset differ in size");
      n_train[b] = std::int64_t(split.train.size());
      n_val[b] = std::int64_t(split.validation.size());
      for (std::size_t i : split.train) train_host.push_back(std::int32_t(first_row[b] + std::int64_t(i)));
      for (std::size_t i : split.validation) val_host.push_back(std::int32_t(first_row[b] + std::int64_t(i)));
    }
  }
  const auto train_indices = Tensor<std::int32_t>::from_host(backend, {std::int64_t(train_host.size())}, train_host, &context_);
  const auto val_indices = Tensor<std::int32_t>::from_host(backend, {std::int64_t(val_host.size())}, val_host, &context_);
  Tensor<std::int32_t> order(backend, {std::int64_t(train_host.size())});

  // Each member's minibatch and validation chunk, as its own fit would take them; activations for
  // the largest.
  std::vector<int> batch(members), chunk(members);
  int max_rows = 1;
  for (int b = 0; b < members; ++b) {
    batch[b] = static_cast<int>(std::min<std::int64_t>(options.batch_size, n_train[b]));
    chunk[b] = static_cast<int>(std::min<std::int64_t>(options.validation_chunk_rows, n_val[b]));
    max_rows = std::max({max_rows, batch[b], chunk[b]});
  }
  const auto& layers = layout_.layers();
  const int in = obs_dim_ + act_dim_;
  Tensor<float> x(backend, {K, max_rows, in}), target(backend, {K, max_rows, obs_dim_});
  std::vector<Tensor<float>> pre, out;
  for (const auto& layer : layers) {
    pre.emplace_back(backend, Shape{K, max_rows, layer.out});
    out.emplace_back(backend, Shape{K, max_rows, layer.out});
  }
  Tensor<float> dy_a(backend, {K, max_rows, layout_.widest()}), dy_b(backend, {K, max_rows, layout_.widest()});
  Tensor<float> loss_sums(backend, {2, K});  // [train; validation]

  AdamStep adam = adam_step_for(layout_);
  adam.beta1 = float(options.adam_beta1);
  adam.beta2 = float(options.adam_beta2);
  adam.epsilon = float(options.adam_epsilon);
  std::vector<bool> active(K, true);

  // One pass over the members [b0, b1) (their models m0 = b0 Km .. b1 Km), `rows` rows each, the
  // rows of member b chosen by indices + at(b) (index stride count(b)): gather and normalise into
  // x (and target), forward through all layers keeping the pre-activations, then the loss sums
  // into loss + m0 and, when training, dL/dy back through the layers into the gradients. The
  // effective weights must be current (refreshed once per minibatch, shared by every span).
  auto pass = [&](int b0, int b1, int rows, const std::int32_t* indices, const std::vector<std::int64_t>& at,
                  const std::vector<std::int64_t>& count, float* loss, bool train) {
    const int m0 = b0 * Km, models = (b1 - b0) * Km;
    auto view = [&](Tensor<float>& t, int width) -> TensorView<float> {
      return {backend, t.data(), {models, rows, width}};
    };
    // Members of one index count share a block of indices: one gather each such run.
    for (const auto& [g0, g1] : spans(b1 - b0, [&](int i) { return count[b0 + i]; })) {
      const GatherDims dims{(g1 - g0) * Km, rows, obs_dim_, act_dim_, count[b0 + g0]};
      const std::int64_t shift = std::int64_t(g0) * Km * rows;
      gather_normalize(context_, dims, obs.data(), act.data(), delta.data(), indices + at[b0 + g0],
                       norm.for_model((b0 + g0) * Km), x.data() + shift * in, target.data() + shift * obs_dim_);
    }
    const float* input = x.data();
    for (std::size_t l = 0; l < layers.size(); ++l) {
      ensemble_linear_forward(context_, layers[l].activation, layer_params(l, true, m0, models),
                              TensorView<const float>{backend, input, {models, rows, layers[l].in}},
                              view(pre[l], layers[l].out), view(out[l], layers[l].out));
      input = out[l].data();
    }
    mse_loss_grad(context_, models, rows, obs_dim_, out.back().data(), target.data(), train ? dy_a.data() : nullptr,
                  loss + m0);
    if (!train) return;
    for (std::size_t l = layers.size(); l-- > 0;) {
      const float* layer_input = l == 0 ? x.data() : out[l - 1].data();
      TensorView<float> dx{backend, l == 0 ? nullptr : dy_b.data(), {models, rows, layers[l].in}};
      ensemble_linear_backward(context_, layers[l].activation, layer_params(l, true, m0, models),
                               TensorView<const float>{backend, layer_input, {models, rows, layers[l].in}},
                               view(pre[l], layers[l].out),
                               TensorView<const float>{backend, dy_a.data(), {models, rows, layers[l].out}}, dx,
                               layer_grads(layout_, layers[l], backend, grads_.data(), m0, models));
      std::swap(dy_a, dy_b);
    }
  };
  const double macs_per_row = double(layout_.forward_macs_per_row());
  const double first_layer_macs = double(layers[0].in) * layers[0].out;
  // Step j of the members' passes of `size` rows over their `count` indices from `first`: each
  // running member's rows (0 once it has none left) and where its indices start.
  auto step = [&](int j, const std::vector<int>& size, const std::vector<std::int64_t>& count,
                  const std::vector<std::int64_t>& first, const std::vector<bool>& running, std::vector<int>& rows,
                  std::vector<std::int64_t>& at) {
    rows.assign(members, 0);
    at.assign(members, 0);
    for (int b = 0; b < members; ++b) {
      const std::int64_t begin = std::int64_t(j) * size[b];
      at[b] = first[b] + begin;
      if (running[b] && begin < count[b]) rows[b] = int(std::min<std::int64_t>(size[b], count[b] - begin));
    }
  };

  // A member's report is what its own fit would report: its epochs end when its own models have
  // all stopped (the others' may go on without it), its minibatches and chunks are its own.
  std::vector<ModelFitReport> reports(members);
  for (int b = 0; b < members; ++b) {
    ModelFitReport& report = reports[b];
    report.epochs.assign(Km, 0);
    report.train_loss.assign(Km, 0.0);
    report.validation_loss.assign(Km, 0.0);
    report.train_rows = n_train[b];
    report.validation_rows = n_val[b];
  }
  std::vector<RollingEarlyStopping> stopping(members, RollingEarlyStopping(Km, options.rolling_average_persistency));

  for (int epoch = 0; epoch < options.max_epochs; ++epoch) {
    std::vector<bool> running(members);
    for (int b = 0; b < members; ++b) {
      running[b] = std::any_of(active.begin() + b * Km, active.begin() + (b + 1) * Km, [](bool a) { return a; });
    }
    if (std::none_of(running.begin(), running.end(), [](bool r) { return r; })) break;
    MBMPO_NVTX_RANGE("model_epoch");
    if (backend == Backend::cpu) rebalance_cpu_threads();
    loss_sums.fill_zero(&context_);
    // Each member's shuffle, keyed by its own seed and fit; members of one count in one call.
    for (const auto& [b0, b1] : spans(members, [&](int b) { return running[b] ? n_train[b] : 0; })) {
      ShuffleKeys keys;
      keys.models_per_member = Km;
      for (int b = b0; b < b1; ++b) {
        keys.seed[b - b0] = member_options[b].seed;
        keys.draw[b - b0] = draws[b];
      }
      shuffle_indices(context_, (b1 - b0) * Km, n_train[b0], keys, std::uint64_t(epoch),
                      train_indices.data() + train_at[b0], order.data() + train_at[b0]);
    }
    // Minibatch j of every running member that has one, members of one row count in one pass.
    for (int j = 0;; ++j) {
      std::vector<int> rows;
      std::vector<std::int64_t> at;
      step(j, batch, n_train, train_at, running, rows, at);
      const auto passes = spans(members, [&](int b) { return rows[b]; });
      if (passes.empty()) break;
      if (!weights_current_) refresh_weights();  // once per minibatch: its forward and backward share W
      for (const auto& [b0, b1] : passes) pass(b0, b1, rows[b0], order.data(), at, n_train, loss_sums.data(), true);
      for (int k = 0; k < K; ++k) {
        adam.active[k] = active[k] && rows[k / Km] > 0;
        if (!adam.active[k]) continue;
        const double t = double(++adam_steps_[k]);
        adam.lr_t[k] = float(options.learning_rate * std::sqrt(1 - std::pow(options.adam_beta2, t)) /
                             (1 - std::pow(options.adam_beta1, t)));
      }
      adam_update(context_, layout_.parameter_count(), adam, params_.data(), grads_.data(),
                  adam_m_.data(), adam_v_.data());
      weights_current_ = false;
      for (int b = 0; b < members; ++b) {
        reports[b].flops += 2.0 * Km * rows[b] * (3 * macs_per_row - first_layer_macs);
      }
    }
    if (!weights_current_) refresh_weights();
    for (int c = 0;; ++c) {
      std::vector<int> rows;
      std::vector<std::int64_t> at;
      step(c, chunk, n_val, val_at, running, rows, at);
      const auto passes = spans(members, [&](int b) { return rows[b]; });
      if (passes.empty()) break;
      for (const auto& [b0, b1] : passes) pass(b0, b1, rows[b0], val_indices.data(), at, n_val, loss_sums.data() + K, false);
      for (int b = 0; b < members; ++b) reports[b].flops += 2.0 * Km * rows[b] * macs_per_row;
    }
    const std::vector<float> sums = loss_sums.to_host(&context_);  // the one synchronisation per epoch
    for (int b = 0; b < members; ++b) {
      if (!running[b]) continue;
      ModelFitReport& report = reports[b];
      std::vector<double> val(Km);
      for (int j = 0; j < Km; ++j) {
        const int k = b * Km + j;
        val[j] = sums[K + k] / double(n_val[b] * obs_dim_);
        if (!active[k]) continue;
        report.epochs[j] = epoch + 1;
        report.train_loss[j] = sums[k] / double(n_train[b] * obs_dim_);
        report.validation_loss[j] = val[j];
      }
      report.validation_history.push_back(val);
      report.epochs_run = epoch + 1;
      for (int j = 0; j < Km; ++j) {
        MBMPO_CHECK(std::isfinite(val[j]), "model fit: validation loss of model ", j,
                    " is not finite at epoch ", epoch, " (diverged?)");
      }
      const std::vector<bool>& stopped = stopping[b].update(val);
      if (options.early_stopping) {
        for (int j = 0; j < Km; ++j) active[b * Km + j] = active[b * Km + j] && !stopped[j];
      }
    }
  }
  context_.synchronize();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (ModelFitReport& report : reports) report.seconds = seconds;
  return reports;
}

ModelAssignment DynamicsEnsemble::assign(const std::vector<int>& model_of_row) const {
  const int K = layout_.models();
  std::vector<std::vector<std::int32_t>> groups(K);
  MBMPO_CHECK(model_of_row.size() <= std::size_t(std::numeric_limits<std::int32_t>::max()),
              "predict: too many rows");
  for (std::size_t r = 0; r < model_of_row.size(); ++r) {
    const int k = model_of_row[r];
    MBMPO_CHECK_INPUT(k >= 0 && k < K, "predict: row ", r, " asks for model ", k, " of ", K);
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

void DynamicsEnsemble::save(const std::string& path, bool include_optimizer) const {
  MBMPO_CHECK(members_ == 1, "dynamics ensemble: a stack of ensembles is not saved (save its members)");
  Safetensors file;
  const std::vector<float> params = params_.to_host(&context_);
  const std::int64_t K = layout_.models();
  for (std::size_t l = 0; l < layout_.layers().size(); ++l) {
    const auto& layer = layout_.layers()[l];
    const std::string prefix = "layer" + std::to_string(l) + ".";
    auto slice = [&](std::int64_t offset, std::int64_t count) {
      return std::vector<float>(params.begin() + offset, params.begin() + offset + count);
    };
    file.put_f32(prefix + "v", {K, layer.out, layer.in}, slice(layer.v_offset, K * layer.out * layer.in));
    file.put_f32(prefix + "g", {K, layer.out}, slice(layer.g_offset, K * layer.out));
    file.put_f32(prefix + "b", {K, layer.out}, slice(layer.b_offset, K * layer.out));
  }
  const std::vector<float> norm = normalization_.to_host(&context_);
  const int in = obs_dim_ + act_dim_;
  file.put_f32("normalization.input_mean", {in}, {norm.begin(), norm.begin() + in});
  file.put_f32("normalization.input_std", {in}, {norm.begin() + in, norm.begin() + 2 * in});
  file.put_f32("normalization.delta_mean", {obs_dim_}, {norm.begin() + 2 * in, norm.begin() + 2 * in + obs_dim_});
  file.put_f32("normalization.delta_std", {obs_dim_}, {norm.begin() + 2 * in + obs_dim_, norm.end()});
  if (include_optimizer) {
    file.put_f32("adam.m", {layout_.parameter_count()}, adam_m_.to_host(&context_));
    file.put_f32("adam.v", {layout_.parameter_count()}, adam_v_.to_host(&context_));
    file.put_i64("adam.steps", {K}, adam_steps_);
    file.put_i64("fits_done", {1}, {std::int64_t(fits_done_)});
  }
  const std::string hidden = join_sizes(layout_.hidden());
  file.set_metadata("format", "mbmpo.dynamics_ensemble.v1");
  file.set_metadata("models", std::to_string(K));
  file.set_metadata("obs_dim", std::to_string(obs_dim_));
  file.set_metadata("act_dim", std::to_string(act_dim_));
  file.set_metadata("hidden", hidden);
  file.set_metadata("activation", activation_name(config_.activation));
  std::ostringstream eps;
  eps << std::setprecision(17) << config_.normalization_eps;
  file.set_metadata("normalization_eps", eps.str());
  file.save(path);
}

void DynamicsEnsemble::load(const std::string& path) {
  MBMPO_CHECK(members_ == 1, "dynamics ensemble: a stack of ensembles is not loaded (load its members)");
  const Safetensors file = Safetensors::load(path);
  MBMPO_CHECK_INPUT(file.metadata("format") == "mbmpo.dynamics_ensemble.v1", path,
                    ": not a dynamics-ensemble file (format '", file.metadata("format"), "')");
  const std::string hidden = join_sizes(layout_.hidden());
  auto expect_meta = [&](const char* key, const std::string& expected) {
    const std::string actual = file.metadata(key);
    MBMPO_CHECK_INPUT(actual == expected, path, ": ", key, " is ", actual, ", this ensemble has ", expected);
  };
  expect_meta("models", std::to_string(layout_.models()));
  expect_meta("obs_dim", std::to_string(obs_dim_));
  expect_meta("act_dim", std::to_string(act_dim_));
  expect_meta("hidden", hidden);
  expect_meta("activation", activation_name(config_.activation));

  const std::int64_t K = layout_.models();
  std::vector<float> params(static_cast<std::size_t>(layout_.parameter_count()));
  for (std::size_t l = 0; l < layout_.layers().size(); ++l) {
    const auto& layer = layout_.layers()[l];
    const std::string prefix = "layer" + std::to_string(l) + ".";
    auto place = [&](const std::vector<float>& values, std::int64_t offset) {
      std::copy(values.begin(), values.end(), params.begin() + offset);
    };
    place(file.f32(prefix + "v", {K, layer.out, layer.in}), layer.v_offset);
    place(file.f32(prefix + "g", {K, layer.out}), layer.g_offset);
    place(file.f32(prefix + "b", {K, layer.out}), layer.b_offset);
  }
  const int in = obs_dim_ + act_dim_;
  std::vector<float> norm;
  for (const auto& [name, size] : {std::pair<const char*, int>{"normalization.input_mean", in},
                                   {"normalization.input_std", in},
                                   {"normalization.delta_mean", obs_dim_},
                                   {"normalization.delta_std", obs_dim_}}) {
    const auto part = file.f32(name, {size});
    norm.insert(norm.end(), part.begin(), part.end());
  }
  for (float value : params) MBMPO_CHECK_INPUT(std::isfinite(value), path, ": non-finite weight");
  for (float value : norm) MBMPO_CHECK_INPUT(std::isfinite(value), path, ": non-finite normalisation statistic");
  const bool with_optimizer = file.has("adam.m");
  std::vector<float> adam_m, adam_v;
  std::vector<std::int64_t> adam_steps;
  std::int64_t fits_done = std::int64_t(fits_done_);
  if (with_optimizer) {
    adam_m = file.f32("adam.m", {layout_.parameter_count()});
    adam_v = file.f32("adam.v", {layout_.parameter_count()});
    adam_steps = file.i64("adam.steps", {K});
    fits_done = file.i64("fits_done", {1})[0];
    MBMPO_CHECK_INPUT(fits_done >= 0, path, ": negative fit count");
  }
  // Everything read and checked: only now replace the state.
  if (with_optimizer) {
    adam_m_.copy_from_host(adam_m, &context_);
    adam_v_.copy_from_host(adam_v, &context_);
    adam_steps_ = adam_steps;
    fits_done_ = static_cast<std::uint64_t>(fits_done);
  }
  params_.copy_from_host(params, &context_);
  weights_current_ = false;
  normalization_.copy_from_host(norm, &context_);
}

}  // namespace mbmpo
