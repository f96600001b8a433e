// The training loop: Algorithm 1 of the paper for B seeds at once (docs/algorithm.md). The real
// episodes are in real_episodes.cpp, the run directory's files in run_directory.cpp.
#include "host/train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>

#include "host/core/broadcast_rows.hpp"
#include "host/core/cpu_threads.hpp"
#include "host/core/error.hpp"
#include "host/core/kill_point.hpp"
#include "host/core/nvtx.hpp"
#include "host/core/stream_copy.hpp"
#include "host/envs/sampler.hpp"
#include "host/models/ensemble_stack.hpp"
#include "host/policy/advantages.hpp"
#include "host/policy/gaussian_policy.hpp"
#include "host/policy/imagined_rollout.hpp"
#include "host/policy/inner_step.hpp"
#include "host/policy/meta_update.hpp"
#include "host/train/memory_estimate.hpp"
#include "host/train/real_episodes.hpp"
#include "host/train/run_directory.hpp"
#include "host/train/train_fields.hpp"
#include "host/train/trainer_state.hpp"

namespace fs = std::filesystem;

namespace mbmpo {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

const char* const kPhases[] = {"collect", "fit_models", "rollout_pre", "inner_step", "rollout_post",
                               "meta_gradient", "cg", "line_search", "eval_wait", "checkpoint"};

// What one iteration reports for one seed, filled in as the iteration goes: its progress row.
struct SeedIteration {
  ReturnStats adapted_returns;  // real episodes of the adapted policies (the collected data)
  ReturnStats pre_returns;      // real episodes of the meta-policy (evaluation)
  ModelFitReport fit;
  // Means over the iteration's meta-steps.
  double imagined_pre = 0, imagined_post = 0, kl = 0, accepted = 0, cg_residual = 0, surrogate_gain = 0;
  std::map<std::string, double> seconds;  // by phase (kPhases)
};

// Runs phases and adds their seconds to the seeds' rows: a seed's own phase (its fit, when the
// seeds are fitted one at a time) counts for it alone, a phase of all seeds at once for every seed
// (each waited for the whole of it).
class PhaseClock {
 public:
  static constexpr int kEverySeed = -1;
  PhaseClock(Context& context, std::vector<SeedIteration>& record) : context_(context), record_(record) {
    for (SeedIteration& seed : record_) {
      for (const char* phase : kPhases) seed.seconds[phase] = 0;
    }
  }
  template <class Body>
  void time(const char* phase, int seed, Body&& body) {
    const auto start = Clock::now();
    body();
    context_.synchronize();
    const double elapsed = seconds_since(start);
    for (std::size_t b = 0; b < record_.size(); ++b) {
      if (seed == kEverySeed || seed == int(b)) record_[b].seconds[phase] += elapsed;
    }
    if (context_.backend() == Backend::cpu) rebalance_cpu_threads();
  }

 private:
  Context& context_;
  std::vector<SeedIteration>& record_;
};

}  // namespace

Trainer::State::State(Context& c, const TrainConfig& cfg, const std::string& dir)
    : context(c),
      config(cfg),
      run_dir(dir),
      task(task_spec(cfg.env)),
      layout(policy_layout(cfg)),
      mujoco(MujocoModel::load(task)),
      models(c, task.obs_dim, task.act_dim, model_config(cfg), cfg.seed),
      dataset(task.obs_dim, task.act_dim, std::size_t(cfg.dataset_capacity)),
      theta(Tensor<float>::from_host(c.backend(), {layout.parameter_count()},
                                     initial_policy_parameters(layout, cfg.seed, cfg.init_std), &c)),
      adapted(c.backend(), {cfg.meta_batch, layout.parameter_count()}) {
  broadcast_rows(context, theta, adapted);
}


ReturnStats Trainer::State::collect() {
  MBMPO_NVTX_RANGE("collect");
  ReturnStats adapted_returns;
  auto add = [&](const Episode& e) {
    dataset.add(e);
    real_steps += e.length;
  };
  if (iterations_done == 0) {
    Sampler sampler(mujoco);
    std::int64_t steps = 0;
    while (steps < config.random_steps) {
      SamplerOptions options;
      options.episodes = int((config.random_steps - steps + config.horizon - 1) / config.horizon);
      options.horizon = config.horizon;
      options.seed = config.seed;
      options.first_episode = episodes_started;
      options.threads = config.threads;
      episodes_started += std::uint64_t(options.episodes);
      sampler.run(options, uniform_random_policy(config.seed, task.action_limit), [&](const Episode& e) {
        add(e);
        steps += e.length;
      });
    }
    return adapted_returns;
  }
  const int tasks = config.meta_batch;
  adapted_returns = run_policy_episodes(config, adapted.to_host(&context), tasks, tasks, config.seed, episodes_started, add);
  episodes_started += std::uint64_t(tasks);
  return adapted_returns;
}

Trainer::Trainer(Context& context, const TrainConfig& config, const std::string& run_dir, bool resume) {
  validate(config);
  check_training_memory(config, 1, context.backend());
  check_run_dir_path(run_dir);
  if (resume) {
    MBMPO_CHECK_INPUT(fs::is_directory(run_dir), "cannot resume: run directory ", run_dir, " does not exist");
    if (!holds_run(run_dir)) {
      // Killed before its first checkpoint: nothing to keep, so the run starts over.
      std::fprintf(stderr, "mbmpo: %s holds no checkpoint yet (the run stopped before its first one): starting it "
                   "over\n", run_dir.c_str());
      resume = false;
    }
  }
  if (!resume) check_fresh_run_dir(run_dir);
  state_ = std::make_unique<State>(context, config, run_dir);
  if (resume) state_->load_checkpoint();
  try {
    fs::create_directories(state_->checkpoints());
  } catch (const fs::filesystem_error& e) {
    throw InputError("cannot create the run directory " + run_dir + ": " + e.code().message());
  }
}

Trainer::~Trainer() = default;

int Trainer::iterations_done() const { return state_->iterations_done; }
std::int64_t Trainer::real_steps() const { return state_->real_steps; }

void Trainer::run(const std::function<void(const nlohmann::ordered_json& row)>& on_row,
                  const std::function<void(int iteration, int meta_step)>& on_meta_step, int until) {
  run_together({this}, [&](const std::vector<nlohmann::ordered_json>& rows) {
    if (on_row) on_row(rows.front());
  }, on_meta_step, until);
}

namespace {

// Per seed b of B: the mean return of its imagined trajectories (the B seeds' tasks are B equal
// consecutive blocks), summed in the same order as a rollout of its own.
std::vector<double> mean_trajectory_returns(Context& context, const Trajectories& t, int seeds) {
  const std::vector<float> reward = t.reward.to_host(&context);
  const std::size_t per_seed = reward.size() / std::size_t(seeds);
  const std::int64_t rows = t.dims.rows() / seeds;
  std::vector<double> means(std::size_t(seeds), 0.0);
  for (int b = 0; b < seeds; ++b) {
    double sum = 0;
    for (std::size_t i = b * per_seed; i < (b + 1) * per_seed; ++i) sum += reward[i];
    means[b] = sum / double(std::max<std::int64_t>(1, rows));
  }
  return means;
}

// work(b) for b < count, at most `at_once` of them at a time on threads of their own.
void for_each_seed(int count, int at_once, const std::function<void(int)>& work) {
  if (at_once <= 1) {
    for (int b = 0; b < count; ++b) work(b);
    return;
  }
  for (int first = 0; first < count; first += at_once) {
    std::vector<std::future<void>> running;
    for (int b = first; b < std::min(count, first + at_once); ++b) {
      running.push_back(std::async(std::launch::async, work, b));
    }
    for (auto& done : running) done.get();  // the first error, after every one of them has ended
  }
}

// Rows [first, first + count) of a [rows][P] tensor, and row `index` as a [P] vector.
TensorView<float> rows_of(Tensor<float>& t, std::int64_t first, std::int64_t count) {
  const std::int64_t P = t.shape().back();
  return {t.backend(), t.data() + first * P, {count, P}};
}
TensorView<float> row_of(Tensor<float>& t, std::int64_t index) {
  const std::int64_t P = t.shape().back();
  return {t.backend(), t.data() + index * P, {P}};
}



// Everything B seeds' meta-steps work in, allocated once (after the first meta-step, meta-steps
// allocate nothing and record no new CUDA graph), and the meta-step itself. Seed b's tasks are
// [b T, (b + 1) T) of one batch of B T tasks; a single run is B = 1.
class MetaStepBatch {
 public:
  explicit MetaStepBatch(const std::vector<Trainer::State*>& seeds)
      : seeds_(seeds),
        first_(*seeds.front()),
        c_(first_.config),
        context_(first_.context),
        B_(int(seeds.size())),
        T_(c_.meta_batch),
        P_(first_.layout.parameter_count()),
        dims_{B_ * T_, c_.rollouts_per_task, c_.imagined_horizon, first_.task.obs_dim, first_.task.act_dim, B_},
        pre_(context_.backend(), dims_),
        post_(context_.backend(), dims_),
        pre_adv_(context_.backend(), dims_),
        post_adv_(context_.backend(), dims_),
        thetas_(context_.backend(), {B_, P_}),
        tiled_(context_.backend(), {dims_.tasks, P_}),
        adapted_(context_.backend(), {dims_.tasks, P_}),
        start_(context_.backend(), {dims_.tasks, dims_.rollouts, dims_.obs_dim}),
        rollouts_(context_, dims_),
        meta_options_(meta_update_options(c_)),
        advantage_(advantage_options(c_)) {
    rollout_.seed = c_.seed;
    rollout_.cuda_graph = c_.cuda_graph;
    if (B_ > 1) {
      for (const Trainer::State* s : seeds_) {
        rollout_.seeds.push_back(s->config.seed);
        meta_options_.seeds.push_back(s->config.seed);
      }
      // Several seeds predict with a stack of their ensembles, so every seed's models run in the
      // same layer calls.
      stack_ = std::make_unique<EnsembleStack>(context_, first_.task.obs_dim, first_.task.act_dim, model_config(c_), B_);
    }
  }

  // Step 2 of Algorithm 1: each seed's ensemble fitted on its own dataset, as one batched fit where
  // the seeds' minibatches have one size; one after another past 64 models.
  void fit_models(PhaseClock& clock, std::vector<SeedIteration>& record) {
    std::vector<DynamicsEnsemble*> ensembles;
    std::vector<const Dataset*> datasets;
    std::vector<ModelFitOptions> options;
    for (Trainer::State* s : seeds_) {
      ensembles.push_back(&s->models);
      datasets.push_back(&s->dataset);
      options.push_back(model_fit_options(s->config));
    }
    if (stack_ && EnsembleStack::can_fit(ensembles, datasets, options)) {
      std::vector<ModelFitReport> fits;
      clock.time("fit_models", PhaseClock::kEverySeed, [&] { fits = stack_->fit(ensembles, datasets, options); });
      for (int b = 0; b < B_; ++b) record[b].fit = fits[b];
      return;
    }
    for (int b = 0; b < B_; ++b) {
      clock.time("fit_models", b, [&] {
        MBMPO_NVTX_RANGE("fit_models");
        record[b].fit = ensembles[b]->fit(*datasets[b], options[b]);
      });
    }
    if (stack_) stack_->gather(ensembles);
  }

  // Each seed's meta-policy in, and out again with its last adapted policies (its checkpoint, its
  // next real data).
  void load_policies() {
    for (int b = 0; b < B_; ++b) copy_on_stream(context_, row_of(thetas_, b), seeds_[b]->theta.view());
  }
  void store_policies() {
    for (int b = 0; b < B_; ++b) {
      copy_on_stream(context_, seeds_[b]->theta.view(), row_of(thetas_, b));
      copy_on_stream(context_, seeds_[b]->adapted.view(), rows_of(adapted_, std::int64_t(b) * T_, T_));
    }
    context_.synchronize();
  }

  // Step 3 of Algorithm 1, meta-step `step` of the run (its noise and start states are keyed by it):
  // (a) imagined rollouts of the meta-policy, task t on model t mod K; (b) advantages; (c) the
  // inner step to each task's adapted policy; (d) imagined rollouts of the adapted policies; (e)
  // the TRPO meta-update through the inner step. The means over the iteration's meta-steps go into
  // each seed's record.
  void meta_step(std::uint64_t step, PhaseClock& clock, std::vector<SeedIteration>& record) {
    DynamicsEnsemble& models = stack_ ? stack_->ensemble() : first_.models;
    clock.time("rollout_pre", PhaseClock::kEverySeed, [&] {
      MBMPO_NVTX_RANGE("rollout_pre");
      sample_start_states_of_seeds(step);
      broadcast_rows(context_, thetas_, tiled_);  // seed b's meta-policy into each of its tasks' rows
      rollout_.draw = 2 * step;
      rollouts_.run(first_.task.id, models, first_.layout, tiled_, start_, rollout_, pre_);
    });
    clock.time("inner_step", PhaseClock::kEverySeed, [&] {
      compute_advantages(context_, pre_, advantage_, pre_adv_);
      inner_step(context_, first_.layout, theta_view(), pre_, pre_adv_, c_.inner_lr, adapted_);
    });
    clock.time("rollout_post", PhaseClock::kEverySeed, [&] {
      MBMPO_NVTX_RANGE("rollout_post");
      rollout_.draw = 2 * step + 1;
      rollouts_.run(first_.task.id, models, first_.layout, adapted_, start_, rollout_, post_);
      compute_advantages(context_, post_, advantage_, post_adv_);
    });
    const std::vector<double> pre_means = mean_trajectory_returns(context_, pre_, B_);
    const std::vector<double> post_means = mean_trajectory_returns(context_, post_, B_);
    if (!objective_) {
      MetaUpdateOptions meta = meta_options_;
      meta.draw = step;
      objective_ = std::make_unique<MetaObjective>(context_, first_.layout, theta_view(), adapted_, pre_, pre_adv_,
                                                   post_, post_adv_, meta);
    } else {
      objective_->rebind(theta_view(), adapted_, pre_, pre_adv_, post_, post_adv_, step);
    }
    const std::vector<MetaUpdateReport> reports = objective_->update_per_seed(theta_view());
    const int steps = c_.meta_steps;
    for (int b = 0; b < B_; ++b) {
      const MetaUpdateReport& report = reports.at(b);
      SeedIteration& r = record[b];
      r.imagined_pre += pre_means[b] / steps;
      r.imagined_post += post_means[b] / steps;
      r.seconds["meta_gradient"] += report.seconds_meta_gradient;
      r.seconds["cg"] += report.seconds_cg;
      r.seconds["line_search"] += report.seconds_line_search;
      r.kl += report.kl / steps;
      r.accepted += (report.accepted ? 1.0 : 0.0) / steps;
      r.cg_residual += report.cg_residual / steps;
      r.surrogate_gain += (report.surrogate_after - report.surrogate_before) / steps;
    }
  }

 private:
  // B seeds' meta-policies [B][P]; one seed's as [P].
  TensorView<float> theta_view() { return B_ > 1 ? thetas_.view() : TensorView<float>{thetas_.backend(), thetas_.data(), {P_}}; }

  // Each seed's start states of meta-step `step`, from its own environment and seed.
  void sample_start_states_of_seeds(std::uint64_t step) {
    const std::int64_t rows_per_seed = std::int64_t(T_) * c_.rollouts_per_task;
    start_host_.clear();
    for (const Trainer::State* s : seeds_) {
      const std::vector<float> own = sample_start_states(s->mujoco, int(rows_per_seed), s->config.seed ^ 0x5eedull,
                                                         step * std::uint64_t(rows_per_seed), c_.threads);
      start_host_.insert(start_host_.end(), own.begin(), own.end());
    }
    start_.copy_from_host(start_host_, &context_);
  }

  const std::vector<Trainer::State*>& seeds_;
  Trainer::State& first_;
  const TrainConfig& c_;  // every setting but the seed is common
  Context& context_;
  const int B_, T_;
  const std::int64_t P_;
  const RolloutDims dims_;
  Trajectories pre_, post_;
  Advantages pre_adv_, post_adv_;
  Tensor<float> thetas_;   // row b: seed b's meta-policy
  Tensor<float> tiled_;    // each seed's row once per task of its own
  Tensor<float> adapted_;  // each task's adapted policy
  Tensor<float> start_;
  std::vector<float> start_host_;
  ImaginedRollout rollouts_;
  RolloutOptions rollout_;
  MetaUpdateOptions meta_options_;
  const AdvantageOptions advantage_;
  std::unique_ptr<EnsembleStack> stack_;  // B > 1: the seeds' ensembles as one
  std::unique_ptr<MetaObjective> objective_;
};


// The trainers must share one context and every setting but the seed, and have done the same
// iterations.
void check_trainers_agree(const std::vector<Trainer::State*>& seeds) {
  const Trainer::State& first = *seeds.front();
  nlohmann::json common = config_to_json(first.config);
  common.erase("seed");
  for (const Trainer::State* s : seeds) {
    nlohmann::json other = config_to_json(s->config);
    other.erase("seed");
    MBMPO_CHECK(&s->context == &first.context && other == common && s->iterations_done == first.iterations_done,
                "run_together: the trainers must share one context, every setting but the seed and their "
                "iterations done");
  }
}

// The meta-policies on the real environment, on threads of their own while the rest runs (their
// episodes are not training data).
std::future<std::vector<ReturnStats>> evaluate_in_background(const std::vector<Trainer::State*>& seeds, int iteration,
                                                             int side_by_side) {
  std::vector<std::vector<float>> theta_hosts;
  for (const Trainer::State* s : seeds) theta_hosts.push_back(s->theta.to_host(&s->context));
  return std::async(std::launch::async, [&seeds, theta_hosts, iteration, side_by_side] {
    std::vector<ReturnStats> stats(seeds.size());
    for_each_seed(int(seeds.size()), side_by_side, [&](int b) {
      const TrainConfig& sc = seeds[b]->config;
      stats[b] = run_policy_episodes(sc, theta_hosts[b], 1, sc.eval_episodes, sc.seed,
                                     kEvalEpisodeBase + std::uint64_t(iteration) * std::uint64_t(sc.eval_episodes));
    });
    return stats;
  });
}

// A seed's progress row of `iteration`, columns in order (docs/progress.md).
nlohmann::ordered_json progress_row(const Trainer::State& s, int iteration, const SeedIteration& r) {
  nlohmann::ordered_json row = {{"iteration", iteration},
                                {"real_steps", s.real_steps},
                                {"return_pre_mean", r.pre_returns.mean()},
                                {"return_pre_std", r.pre_returns.std()},
                                {"return_post_mean", r.adapted_returns.mean()},
                                {"imagined_return_pre", r.imagined_pre},
                                {"imagined_return_post", r.imagined_post}};
  const int K = s.config.models;
  for (int m = 0; m < K; ++m) row["model_val_loss_" + std::to_string(m)] = r.fit.validation_loss.at(m);
  for (int m = 0; m < K; ++m) row["model_epochs_" + std::to_string(m)] = r.fit.epochs.at(m);
  row["meta_kl"] = r.kl;
  row["step_accepted_fraction"] = r.accepted;
  row["cg_residual"] = r.cg_residual;
  row["surrogate_gain"] = r.surrogate_gain;
  for (const char* phase : kPhases) {
    if (std::string(phase) != "checkpoint") row[std::string("seconds_") + phase] = r.seconds.at(phase);
  }
  return row;
}

// The row, then the checkpoint: a run killed in between redoes this iteration on resume and
// rewrites its row (identically on the CPU backend). The row is written again with the
// checkpoint's and the iteration's seconds.
nlohmann::ordered_json finish_iteration(Trainer::State& s, int iteration, const SeedIteration& record,
                                        Clock::time_point iteration_start) {
  s.iterations_done = iteration + 1;
  nlohmann::ordered_json row = progress_row(s, iteration, record);
  const auto checkpoint_start = Clock::now();
  s.rows.push_back(row);
  s.write_progress();
  kill_point("row-written");
  s.save_checkpoint();
  kill_point("checkpoint-saved");
  row["seconds_checkpoint"] = seconds_since(checkpoint_start);
  row["seconds_iteration"] = seconds_since(iteration_start);
  s.rows.back() = row;
  s.write_progress();
  return row;
}

}  // namespace



// Algorithm 1 of the paper, for B seeds at once (B = 1: a single run).
void Trainer::run_together(const std::vector<Trainer*>& trainers,
                           const std::function<void(const std::vector<nlohmann::ordered_json>& rows)>& on_rows,
                           const std::function<void(int iteration, int meta_step)>& on_meta_step, int until) {
  MBMPO_CHECK(!trainers.empty(), "run_together: no trainers");
  std::vector<State*> seeds;
  for (Trainer* trainer : trainers) seeds.push_back(trainer->state_.get());
  check_trainers_agree(seeds);
  State& first = *seeds.front();
  const TrainConfig& c = first.config;
  Context& context = first.context;
  const int B = int(seeds.size());
  // Seeds whose real-environment episodes run at once, each on --threads workers: as many as the
  // cores hold (one at a time on a small machine). Each seed's episodes are its own, in its own
  // order, whichever run beside them.
  const int side_by_side = std::max(1, usable_cores() / std::max(1, c.threads));
  MetaStepBatch batch(seeds);
  if (context.backend() == Backend::cpu) configure_cpu_threads(c.cpu_threads);

  const int target = until < 0 ? c.iterations : std::min(c.iterations, until);
  while (first.iterations_done < target) {
    kill_point("iteration");
    const int iteration = first.iterations_done;
    const auto iteration_start = Clock::now();
    std::vector<SeedIteration> record(B);
    PhaseClock clock(context, record);
    auto evaluation = evaluate_in_background(seeds, iteration, side_by_side);
    // 1. Real data with the adapted policies (random actions in the first iteration).
    clock.time("collect", PhaseClock::kEverySeed, [&] {
      for_each_seed(B, side_by_side, [&](int b) { record[b].adapted_returns = seeds[b]->collect(); });
    });
    // 2. The ensemble fit.
    batch.fit_models(clock, record);
    kill_point("fitted");
    // 3. The meta-steps.
    batch.load_policies();
    for (int step = 0; step < c.meta_steps; ++step) {
      batch.meta_step(std::uint64_t(iteration) * std::uint64_t(c.meta_steps) + std::uint64_t(step), clock, record);
      if (on_meta_step) {
        context.synchronize();
        on_meta_step(iteration, step);
      }
      kill_point("meta-step");
    }
    batch.store_policies();
    std::vector<ReturnStats> pre_returns;
    clock.time("eval_wait", PhaseClock::kEverySeed, [&] { pre_returns = evaluation.get(); });
    // 4. Each seed's progress row and checkpoint.
    std::vector<nlohmann::ordered_json> rows;
    for (int b = 0; b < B; ++b) {
      record[b].pre_returns = pre_returns[b];
      rows.push_back(finish_iteration(*seeds[b], iteration, record[b], iteration_start));
    }
    if (on_rows) on_rows(rows);
  }

  kill_point("before-final-policy");
  for (State* s : seeds) s->save_final_files();
}

}  // namespace mbmpo
