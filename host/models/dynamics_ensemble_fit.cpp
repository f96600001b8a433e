// The fit of a DynamicsEnsemble (dynamics_ensemble.hpp, fit): Adam on the MSE in normalised-delta
// space over minibatches, a fresh train/validation split per model and fit, early stopping per
// model (docs/algorithm.md, step 2).
//
// fit_seeds fits the models of B seeds' ensembles (an EnsembleStack; B = 1 for one ensemble), each
// seed on its own dataset. For B = 1 it is this loop:
//
//   normalisation and splits from the dataset
//   for epoch < max_epochs, while some model is active:
//     shuffle every model's train indices
//     for each minibatch j: gather + normalise, forward, MSE, backward, Adam on the active models
//     for each validation chunk c: gather + normalise, forward, MSE
//     per model: record the losses, update the rolling average, stop when it rises
//
// For B > 1 the same steps run over the seeds' models in the same calls. Seeds differ only in their
// datasets' sizes, and so in their minibatch counts and last minibatches: step j runs, in one call,
// the consecutive seeds whose minibatch j has the same row count (`spans`), and a seed whose models
// have all stopped drops out. Each seed's models see the data, shuffles and Adam steps of their own
// fit, so each seed ends exactly as its own fit would leave it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>

#include "host/core/cpu_threads.hpp"
#include "host/core/nvtx.hpp"
#include "host/models/dynamics_ensemble.hpp"
#include "host/models/early_stopping.hpp"
#include "host/models/ensemble_linear.hpp"
#include "host/models/ensemble_mlp_ops.hpp"

namespace mbmpo {
namespace {

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

// Consecutive seeds [first, last) with the same non-zero key: what one call can cover.
std::vector<std::pair<int, int>> spans(int seeds, const std::function<std::int64_t(int)>& key) {
  std::vector<std::pair<int, int>> out;
  for (int b = 0; b < seeds;) {
    const std::int64_t k = key(b);
    int e = b + 1;
    while (e < seeds && key(e) == k) ++e;
    if (k != 0) out.push_back({b, e});
    b = e;
  }
  return out;
}

}  // namespace

ModelFitReport DynamicsEnsemble::fit(const Dataset& data, const ModelFitOptions& options) {
  MBMPO_NVTX_RANGE("fit_models");
  MBMPO_CHECK(seeds_ == 1, "model fit: a stack of ensembles is fitted through EnsembleStack::fit");
  check_fit_input(data, options);
  return fit_seeds({&data}, {options}, {fits_done_++}).front();
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

std::vector<ModelFitReport> DynamicsEnsemble::fit_seeds(const std::vector<const Dataset*>& datasets,
                                                        const std::vector<ModelFitOptions>& seed_options,
                                                        const std::vector<std::uint64_t>& draws) {
  const auto start = std::chrono::steady_clock::now();
  const Backend backend = context_.backend();
  const int BK = layout_.models();     // every model of the fit
  const int B = int(datasets.size());  // seeds fitted together, K models each
  const int K = BK / B;
  MBMPO_CHECK(B == seeds_ && K * B == BK, "model fit: ", B, " datasets for ", seeds_, " seeds");
  const ModelFitOptions& options = seed_options.front();  // all but the seed are common

  // Normalisation from each seed's dataset.
  std::vector<float> stats_host;
  for (const Dataset* data : datasets) append_normalization(data->stats(), stats_host);
  normalization_.copy_from_host(stats_host, &context_);
  const NormalizerView<float> norm = normalizer_view();

  // The transitions, uploaded once per fit: seed b's from row first_row[b] on.
  std::vector<float> obs_host, act_host, delta_host;
  std::vector<std::int64_t> first_row(B + 1, 0);
  for (int b = 0; b < B; ++b) {
    const Dataset& data = *datasets[b];
    const std::int64_t n = static_cast<std::int64_t>(data.size());
    first_row[b + 1] = first_row[b] + n;
    for (std::int64_t i = 0; i < n; ++i) {
      obs_host.insert(obs_host.end(), data.obs(i), data.obs(i) + obs_dim_);
      act_host.insert(act_host.end(), data.act(i), data.act(i) + act_dim_);
      for (int j = 0; j < obs_dim_; ++j) delta_host.push_back(data.next_obs(i)[j] - data.obs(i)[j]);
    }
  }
  MBMPO_CHECK(first_row[B] <= std::numeric_limits<std::int32_t>::max(), "model fit: too many transitions");
  const auto obs = Tensor<float>::from_host(backend, {first_row[B], obs_dim_}, obs_host, &context_);
  const auto act = Tensor<float>::from_host(backend, {first_row[B], act_dim_}, act_host, &context_);
  const auto delta = Tensor<float>::from_host(backend, {first_row[B], obs_dim_}, delta_host, &context_);

  // A fresh split per model, keyed by its seed and fit; a seed's models get the same counts (the
  // seeds' counts differ with their datasets). Seed b's indices are [K][n_train[b]] from
  // train_at[b] on (validation likewise), so a run of seeds of one count is one block.
  std::vector<std::int32_t> train_host, val_host;
  std::vector<std::int64_t> n_train(B), n_val(B), train_at(B), val_at(B);
  for (int b = 0; b < B; ++b) {
    train_at[b] = std::int64_t(train_host.size());
    val_at[b] = std::int64_t(val_host.size());
    for (int k = 0; k < K; ++k) {
      const TrainValidationSplit split =
          datasets[b]->split(options.validation_fraction, seed_options[b].seed, k, draws[b]);
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

  // Each seed's minibatch and validation chunk, as its own fit would take them; activations for
  // the largest.
  std::vector<int> batch(B), chunk(B);
  int max_rows = 1;
  for (int b = 0; b < B; ++b) {
    batch[b] = static_cast<int>(std::min<std::int64_t>(options.batch_size, n_train[b]));
    chunk[b] = static_cast<int>(std::min<std::int64_t>(options.validation_chunk_rows, n_val[b]));
    max_rows = std::max({max_rows, batch[b], chunk[b]});
  }
  const auto& layers = layout_.layers();
  const int in = obs_dim_ + act_dim_;
  Tensor<float> x(backend, {BK, max_rows, in}), target(backend, {BK, max_rows, obs_dim_});
  std::vector<Tensor<float>> pre, out;
  for (const auto& layer : layers) {
    pre.emplace_back(backend, Shape{BK, max_rows, layer.out});
    out.emplace_back(backend, Shape{BK, max_rows, layer.out});
  }
  Tensor<float> dy_a(backend, {BK, max_rows, layout_.widest()}), dy_b(backend, {BK, max_rows, layout_.widest()});
  Tensor<float> loss_sums(backend, {2, BK});  // [train; validation]

  AdamStep adam = adam_step_for(layout_);
  adam.beta1 = float(options.adam_beta1);
  adam.beta2 = float(options.adam_beta2);
  adam.epsilon = float(options.adam_epsilon);
  std::vector<bool> active(BK, true);

  // One pass over the seeds [b0, b1) (their models m0 = b0 K .. b1 K), `rows` rows each, the
  // rows of seed b chosen by indices + at(b) (index stride count(b)): gather and normalise into
  // x (and target), forward through all layers keeping the pre-activations, then the loss sums
  // into loss + m0 and, when training, dL/dy back through the layers into the gradients. The
  // effective weights must be current (refreshed once per minibatch, shared by every span).
  auto pass = [&](int b0, int b1, int rows, const std::int32_t* indices, const std::vector<std::int64_t>& at,
                  const std::vector<std::int64_t>& count, float* loss, bool train) {
    const int m0 = b0 * K, models = (b1 - b0) * K;
    auto view = [&](Tensor<float>& t, int width) -> TensorView<float> {
      return {backend, t.data(), {models, rows, width}};
    };
    // Seeds of one index count share a block of indices: one gather each such run.
    for (const auto& [g0, g1] : spans(b1 - b0, [&](int i) { return count[b0 + i]; })) {
      const GatherDims dims{(g1 - g0) * K, rows, obs_dim_, act_dim_, count[b0 + g0]};
      const std::int64_t shift = std::int64_t(g0) * K * rows;
      gather_normalize(context_, dims, obs.data(), act.data(), delta.data(), indices + at[b0 + g0],
                       norm.for_model((b0 + g0) * K), x.data() + shift * in, target.data() + shift * obs_dim_);
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
  // Step j of the seeds' passes of `size` rows over their `count` indices from `first`: each
  // running seed's rows (0 once it has none left) and where its indices start.
  auto step = [&](int j, const std::vector<int>& size, const std::vector<std::int64_t>& count,
                  const std::vector<std::int64_t>& first, const std::vector<bool>& running, std::vector<int>& rows,
                  std::vector<std::int64_t>& at) {
    rows.assign(B, 0);
    at.assign(B, 0);
    for (int b = 0; b < B; ++b) {
      const std::int64_t begin = std::int64_t(j) * size[b];
      at[b] = first[b] + begin;
      if (running[b] && begin < count[b]) rows[b] = int(std::min<std::int64_t>(size[b], count[b] - begin));
    }
  };

  // A seed's report is what its own fit would report: its epochs end when its own models have
  // all stopped (the others' may go on without it), its minibatches and chunks are its own.
  std::vector<ModelFitReport> reports(B);
  for (int b = 0; b < B; ++b) {
    ModelFitReport& report = reports[b];
    report.epochs.assign(K, 0);
    report.train_loss.assign(K, 0.0);
    report.validation_loss.assign(K, 0.0);
    report.train_rows = n_train[b];
    report.validation_rows = n_val[b];
  }
  std::vector<RollingEarlyStopping> stopping(B, RollingEarlyStopping(K, options.rolling_average_persistency));

  for (int epoch = 0; epoch < options.max_epochs; ++epoch) {
    std::vector<bool> running(B);
    for (int b = 0; b < B; ++b) {
      running[b] = std::any_of(active.begin() + b * K, active.begin() + (b + 1) * K, [](bool a) { return a; });
    }
    if (std::none_of(running.begin(), running.end(), [](bool r) { return r; })) break;
    MBMPO_NVTX_RANGE("model_epoch");
    if (backend == Backend::cpu) rebalance_cpu_threads();
    loss_sums.fill_zero(&context_);
    // Each seed's shuffle, keyed by its own seed and fit; seeds of one count in one call.
    for (const auto& [b0, b1] : spans(B, [&](int b) { return running[b] ? n_train[b] : 0; })) {
      ShuffleKeys keys;
      keys.models_per_seed = K;
      for (int b = b0; b < b1; ++b) {
        keys.seed[b - b0] = seed_options[b].seed;
        keys.draw[b - b0] = draws[b];
      }
      shuffle_indices(context_, (b1 - b0) * K, n_train[b0], keys, std::uint64_t(epoch),
                      train_indices.data() + train_at[b0], order.data() + train_at[b0]);
    }
    // Minibatch j of every running seed that has one, seeds of one row count in one pass.
    for (int j = 0;; ++j) {
      std::vector<int> rows;
      std::vector<std::int64_t> at;
      step(j, batch, n_train, train_at, running, rows, at);
      const auto passes = spans(B, [&](int b) { return rows[b]; });
      if (passes.empty()) break;
      if (!weights_current_) refresh_weights();  // once per minibatch: its forward and backward share W
      for (const auto& [b0, b1] : passes) pass(b0, b1, rows[b0], order.data(), at, n_train, loss_sums.data(), true);
      for (int k = 0; k < BK; ++k) {
        adam.active[k] = active[k] && rows[k / K] > 0;
        if (!adam.active[k]) continue;
        const double t = double(++adam_steps_[k]);
        adam.lr_t[k] = float(options.learning_rate * std::sqrt(1 - std::pow(options.adam_beta2, t)) /
                             (1 - std::pow(options.adam_beta1, t)));
      }
      adam_update(context_, layout_.parameter_count(), adam, params_.data(), grads_.data(),
                  adam_m_.data(), adam_v_.data());
      weights_current_ = false;
      for (int b = 0; b < B; ++b) {
        reports[b].flops += 2.0 * K * rows[b] * (3 * macs_per_row - first_layer_macs);
      }
    }
    if (!weights_current_) refresh_weights();
    for (int c = 0;; ++c) {
      std::vector<int> rows;
      std::vector<std::int64_t> at;
      step(c, chunk, n_val, val_at, running, rows, at);
      const auto passes = spans(B, [&](int b) { return rows[b]; });
      if (passes.empty()) break;
      for (const auto& [b0, b1] : passes) pass(b0, b1, rows[b0], val_indices.data(), at, n_val, loss_sums.data() + BK, false);
      for (int b = 0; b < B; ++b) reports[b].flops += 2.0 * K * rows[b] * macs_per_row;
    }
    const std::vector<float> sums = loss_sums.to_host(&context_);  // the one synchronisation per epoch
    for (int b = 0; b < B; ++b) {
      if (!running[b]) continue;
      ModelFitReport& report = reports[b];
      std::vector<double> val(K);
      for (int j = 0; j < K; ++j) {
        const int k = b * K + j;
        val[j] = sums[BK + k] / double(n_val[b] * obs_dim_);
        if (!active[k]) continue;
        report.epochs[j] = epoch + 1;
        report.train_loss[j] = sums[k] / double(n_train[b] * obs_dim_);
        report.validation_loss[j] = val[j];
      }
      report.validation_history.push_back(val);
      report.epochs_run = epoch + 1;
      for (int j = 0; j < K; ++j) {
        MBMPO_CHECK(std::isfinite(val[j]), "model fit: validation loss of model ", j,
                    " is not finite at epoch ", epoch, " (diverged?)");
      }
      const std::vector<bool>& stopped = stopping[b].update(val);
      if (options.early_stopping) {
        for (int j = 0; j < K; ++j) active[b * K + j] = active[b * K + j] && !stopped[j];
      }
    }
  }
  context_.synchronize();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (ModelFitReport& report : reports) report.seconds = seconds;
  return reports;
}

}  // namespace mbmpo
