#include "host/models/ensemble_stack.hpp"

#include <cstdint>
#include <limits>
#include <utility>

#include "host/core/error.hpp"
#include "host/core/nvtx.hpp"
#include "host/core/stream_copy.hpp"

namespace mbmpo {
namespace {

DynamicsEnsembleConfig with_models(DynamicsEnsembleConfig config, int models) {
  config.models = models;
  return config;
}

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

EnsembleStack::EnsembleStack(Context& context, int obs_dim, int act_dim, const DynamicsEnsembleConfig& config,
                             int seeds)
    : context_(context), stacked_(context, obs_dim, act_dim, with_models(config, seeds * config.models), 0) {
  stacked_.split_into_seeds(seeds);
}

void EnsembleStack::gather(const std::vector<DynamicsEnsemble*>& seeds) {
  MBMPO_CHECK(int(seeds.size()) == stacked_.seeds(), "ensemble stack: ", seeds.size(), " ensembles for a stack of ",
              stacked_.seeds());
  const DynamicsEnsemble& s = stacked_;
  for (const DynamicsEnsemble* m : seeds) {
    MBMPO_CHECK(m->seeds_ == 1 && m->models() == s.models_per_seed() && m->obs_dim_ == s.obs_dim_ &&
                    m->act_dim_ == s.act_dim_ && m->config_.hidden == s.config_.hidden &&
                    m->config_.activation == s.config_.activation &&
                    m->config_.normalization_eps == s.config_.normalization_eps &&
                    m->config_.next_obs_clip == s.config_.next_obs_clip && m->config_.tf32 == s.config_.tf32 &&
                    &m->context_ == &context_,
                "ensemble stack: every seed's ensemble must have the stack's architecture and context");
  }
  exchange(seeds, true);
}

void EnsembleStack::exchange(const std::vector<DynamicsEnsemble*>& seeds, bool into_stack) {
  DynamicsEnsemble& s = stacked_;
  const Backend backend = context_.backend();
  const int K = s.models_per_seed();
  const std::int64_t stats = s.normalization_.numel() / s.seeds_;
  // Ordered on the stream after the work that produced the source.
  auto copy = [&](float* stacked, float* own, std::int64_t n) {
    const TensorView<float> a{backend, stacked, {n}}, b{backend, own, {n}};
    if (into_stack) {
      copy_on_stream(context_, a, b);
    } else {
      copy_on_stream(context_, b, a);
    }
  };
  for (int b = 0; b < int(seeds.size()); ++b) {
    DynamicsEnsemble& own = *seeds[b];
    if (into_stack && !own.weights_current_) own.refresh_weights();
    const bool weights = into_stack || s.weights_current_;
    for (std::size_t l = 0; l < s.layout_.layers().size(); ++l) {
      const EnsembleMlpLayer& to = s.layout_.layers()[l];
      const EnsembleMlpLayer& from = own.layout_.layers()[l];
      const std::int64_t vs = std::int64_t(K) * to.out * to.in, gs = std::int64_t(K) * to.out;
      for (auto [stacked, mine] : {std::pair{&s.params_, &own.params_}, std::pair{&s.adam_m_, &own.adam_m_},
                                   std::pair{&s.adam_v_, &own.adam_v_}}) {
        copy(stacked->data() + to.v_offset + b * vs, mine->data() + from.v_offset, vs);
        copy(stacked->data() + to.g_offset + b * gs, mine->data() + from.g_offset, gs);
        copy(stacked->data() + to.b_offset + b * gs, mine->data() + from.b_offset, gs);
      }
      if (weights) copy(s.weights_.data() + s.weight_offsets_[l] + b * vs, own.weights_.data() + own.weight_offsets_[l], vs);
    }
    copy(s.normalization_.data() + b * stats, own.normalization_.data(), stats);
    for (int k = 0; k < K; ++k) {
      if (into_stack) {
        s.adam_steps_[b * K + k] = own.adam_steps_[k];
      } else {
        own.adam_steps_[k] = s.adam_steps_[b * K + k];
      }
    }
    if (!into_stack) own.weights_current_ = s.weights_current_;
  }
  if (into_stack) s.weights_current_ = true;  // the seeds' own effective weights, copied: no recomputation
}

bool EnsembleStack::can_fit(const std::vector<DynamicsEnsemble*>& seeds, const std::vector<const Dataset*>& data,
                            const std::vector<ModelFitOptions>& options) {
  if (seeds.size() < 2 || data.size() != seeds.size() || options.size() != seeds.size()) return false;
  if (int(seeds.size()) * seeds.front()->models() > kMaxEnsembleModels) return false;
  std::int64_t transitions = 0;  // indexed by int32 in one fit
  for (const Dataset* d : data) transitions += std::int64_t(d->size());
  if (transitions > std::numeric_limits<std::int32_t>::max()) return false;
  for (std::size_t b = 0; b < seeds.size(); ++b) {
    if (!same_but_seed(options[b], options.front())) return false;
  }
  return true;
}

std::vector<ModelFitReport> EnsembleStack::fit(const std::vector<DynamicsEnsemble*>& seeds,
                                               const std::vector<const Dataset*>& data,
                                               const std::vector<ModelFitOptions>& options) {
  MBMPO_NVTX_RANGE("fit_models");
  MBMPO_CHECK(can_fit(seeds, data, options), "ensemble stack: ", seeds.size(),
              " ensembles that cannot be fitted as one (see EnsembleStack::can_fit)");
  for (std::size_t b = 0; b < seeds.size(); ++b) seeds[b]->check_fit_input(*data[b], options[b]);
  gather(seeds);
  std::vector<std::uint64_t> draws;
  for (DynamicsEnsemble* own : seeds) draws.push_back(own->fits_done_++);
  std::vector<ModelFitReport> reports = stacked_.fit_seeds(data, options, draws);
  exchange(seeds, false);
  return reports;
}

}  // namespace mbmpo
