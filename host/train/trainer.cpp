#include "host/train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <iomanip>
#include <limits>
#include <map>
#include <sstream>

#include "host/core/atomic_file.hpp"
#include "host/core/broadcast_rows.hpp"
#include "host/core/cpu_threads.hpp"
#include "host/core/error.hpp"
#include "host/core/nvtx.hpp"
#include "host/core/safetensors.hpp"
#include "host/core/stream_copy.hpp"
#include "host/data/dataset.hpp"
#include "host/envs/environment.hpp"
#include "host/envs/sampler.hpp"
#include "host/envs/task.hpp"
#include "host/models/dynamics_ensemble.hpp"
#include "host/policy/advantages.hpp"
#include "host/policy/gaussian_policy.hpp"
#include "host/policy/imagined_rollout.hpp"
#include "host/policy/inner_step.hpp"
#include "host/policy/meta_update.hpp"
#include "host/train/train_fields.hpp"
#include "kernels/policy/gaussian_policy.cuh"

namespace fs = std::filesystem;

namespace mbmpo {

double ReturnStats::mean() const {
  if (returns.empty()) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0;
  for (double r : returns) sum += r;
  return sum / double(returns.size());
}

double ReturnStats::std() const {
  if (returns.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double m = mean();
  double sum = 0;
  for (double r : returns) sum += (r - m) * (r - m);
  return std::sqrt(sum / double(returns.size()));
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Key spaces of the real-environment episodes (reset noise and policy noise derive from them).
constexpr std::uint64_t kEvalEpisodeBase = 1ull << 40;
constexpr std::uint64_t kPolicyNoiseStream = 0x9e3779b97f4a7c15ull;

PolicyLayout policy_layout(const TrainConfig& c) {
  const TaskSpec& task = task_spec(c.env);
  return PolicyLayout(task.obs_dim, task.act_dim, c.policy_hidden);
}

// The settings a checkpoint's contents depend on: a resumed run must agree on every one.
std::vector<std::string> shape_keys() {
  std::vector<std::string> keys;
  for (const TrainField& field : train_fields()) {
    if (field.checkpoint_shape) keys.push_back(field.key);
  }
  return keys;
}

std::string checkpoint_name(int iterations_done) {
  std::ostringstream name;
  name << "iter-" << std::setw(6) << std::setfill('0') << iterations_done;
  return name.str();
}

// The policy used on the real environment: a Gaussian per task, evaluated on the host for the
// batch of running episodes (a handful per step: the CPU is the right place).
BatchPolicy gaussian_batch_policy(const PolicyLayout& layout, const std::vector<float>& params, int tasks,
                                  std::uint64_t first_episode, std::uint64_t seed, float action_limit) {
  const PolicyShape shape = policy_shape(layout);
  return [shape, params, tasks, first_episode, seed, action_limit](const PolicyBatch& batch) {
    for (int e = 0; e < batch.count; ++e) {
      const int task = int((batch.episode[e] - first_episode) % std::uint64_t(tasks));
      const float* theta = params.data() + std::int64_t(task) * shape.parameter_count;
      PolicyActivations<float> acts;
      policy_forward(shape, theta, batch.obs + std::int64_t(e) * batch.obs_dim, acts);
      const float* mean = policy_mean(shape, acts);
      for (int j = 0; j < batch.act_dim; ++j) {
        const float noise = normal_at(seed ^ kPolicyNoiseStream, batch.episode[e],
                                      std::uint64_t(batch.step[e]) * batch.act_dim + j);
        const float a = mean[j] + std::exp(effective_log_std(shape, theta, j)) * noise;
        batch.actions[std::int64_t(e) * batch.act_dim + j] = std::clamp(a, -action_limit, action_limit);
      }
    }
  };
}

const char* const kPhases[] = {"collect", "fit_models", "rollout_pre", "inner_step", "rollout_post",
                               "meta_gradient", "cg", "line_search", "eval_wait", "checkpoint"};

std::string csv_value(const nlohmann::ordered_json& v) {
  if (v.is_null()) return "";
  if (v.is_number_float()) {
    if (!std::isfinite(v.get<double>())) return "";  // as in progress.jsonl, where it is null
    std::ostringstream out;
    out << std::setprecision(9) << v.get<double>();
    return out.str();
  }
  if (v.is_boolean()) return v.get<bool>() ? "1" : "0";
  return v.dump();
}


// What one iteration reports for one seed, filled in as the iteration goes: its progress row.
struct SeedIteration {
  ReturnStats adapted_returns;  // real episodes of the adapted policies (the collected data)
  ReturnStats pre_returns;      // real episodes of the meta-policy (evaluation)
  ModelFitReport fit;
  // Means over the iteration's meta-steps.
  double imagined_pre = 0, imagined_post = 0, kl = 0, accepted = 0, cg_residual = 0, surrogate_gain = 0;
  std::map<std::string, double> seconds;  // by phase (kPhases)
};

// Runs phases and adds their seconds to the seeds' rows: a seed's own phase (collect, fit) counts
// for it alone, a batched one for every seed (each waited for the whole batch).
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

ReturnStats run_policy_episodes(const TrainConfig& config, const std::vector<float>& params, int tasks,
                                int episodes, std::uint64_t seed, std::uint64_t first_episode,
                                const std::function<void(const Episode&)>& on_episode) {
  ReturnStats stats;
  if (episodes <= 0) return stats;
  const TaskSpec& task = task_spec(config.env);
  const PolicyLayout layout = policy_layout(config);
  MBMPO_CHECK(std::int64_t(params.size()) == std::int64_t(tasks) * layout.parameter_count(),
              "policy episodes: ", params.size(), " parameters for ", tasks, " policies of ",
              layout.parameter_count());
  Sampler sampler(MujocoModel::load(task));
  SamplerOptions options;
  options.episodes = episodes;
  options.horizon = config.horizon;
  options.seed = seed;
  options.first_episode = first_episode;
  options.threads = config.threads;
  const auto results = sampler.run(options, gaussian_batch_policy(layout, params, tasks, first_episode, seed,
                                                                  task.action_limit), on_episode);
  for (const Episode& e : results) stats.returns.push_back(e.total_return);
  return stats;
}

struct Trainer::State {
  Context& context;
  TrainConfig config;
  fs::path run_dir;
  const TaskSpec& task;
  PolicyLayout layout;
  std::shared_ptr<const MujocoModel> mujoco;
  DynamicsEnsemble models;
  Dataset dataset;
  Tensor<float> theta, adapted;  // [P], [T][P] (the last meta-step's adapted policies)
  int iterations_done = 0;
  std::int64_t real_steps = 0;
  std::uint64_t episodes_started = 0;
  std::vector<nlohmann::ordered_json> rows;

  State(Context& c, const TrainConfig& cfg, const std::string& dir)
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

  fs::path checkpoints() const { return run_dir / "checkpoints"; }

  void save_checkpoint() {
    MBMPO_NVTX_RANGE("checkpoint");
    const std::string name = checkpoint_name(iterations_done);
    const fs::path partial = checkpoints() / (name + ".partial");
    fs::remove_all(partial);
    fs::create_directories(partial);
    Safetensors policy;
    policy.put_f32("theta", {layout.parameter_count()}, theta.to_host(&context));
    policy.put_f32("adapted", adapted.shape(), adapted.to_host(&context));
    policy.set_metadata("env", config.env);
    policy.save((partial / "policy.safetensors").string());
    models.save((partial / "models.safetensors").string(), true);
    dataset.save((partial / "dataset.bin").string());
    const nlohmann::json state = {{"format", "mbmpo-checkpoint"},
                                  {"version", 1},
                                  {"iterations_done", iterations_done},
                                  {"real_steps", real_steps},
                                  {"episodes_started", episodes_started},
                                  {"config", config_to_json(config)}};
    write_file_atomically((partial / "state.json").string(), state.dump(2) + "\n");
    // The directory becomes visible under its final name only when complete; "latest" moves last.
    const fs::path final_dir = checkpoints() / name;
    fs::remove_all(final_dir);
    fs::rename(partial, final_dir);
    write_file_atomically((checkpoints() / "latest").string(), name + "\n");
    for (const auto& entry : fs::directory_iterator(checkpoints())) {  // keep the newest two
      const std::string other = entry.path().filename().string();
      if (entry.is_directory() && other.rfind("iter-", 0) == 0 && other != name &&
          other != checkpoint_name(iterations_done - 1)) {
        fs::remove_all(entry.path());
      }
    }
  }

  void load_checkpoint() {
    const fs::path latest = checkpoints() / "latest";
    MBMPO_CHECK_INPUT(fs::exists(latest), "cannot resume: ", run_dir.string(),
                      " has no checkpoint (checkpoints/latest is missing)");
    std::string name = read_file(latest.string());
    name.erase(std::remove_if(name.begin(), name.end(), ::isspace), name.end());
    const fs::path dir = checkpoints() / name;
    MBMPO_CHECK_INPUT(!name.empty() && fs::is_directory(dir), "cannot resume: checkpoint '", name,
                      "' named by ", latest.string(), " does not exist");
    nlohmann::json state;
    try {
      state = nlohmann::json::parse(read_file((dir / "state.json").string()));
    } catch (const nlohmann::json::exception& e) {
      throw InputError("cannot resume: " + (dir / "state.json").string() + " is not valid JSON (" + e.what() + ")");
    }
    MBMPO_CHECK_INPUT(state.value("format", "") == "mbmpo-checkpoint" && state.value("version", 0) == 1,
                      "cannot resume: ", (dir / "state.json").string(), " is not an mbmpo checkpoint (version 1)");
    const nlohmann::json saved = state.at("config"), current = config_to_json(config);
    for (const std::string& key : shape_keys()) {
      MBMPO_CHECK_INPUT(saved.contains(key) && saved.at(key) == current.at(key), "cannot resume: the checkpoint has ",
                        key, " = ", saved.contains(key) ? saved.at(key).dump() : "(missing)",
                        " but the configuration says ", current.at(key).dump());
    }
    const Safetensors policy = Safetensors::load((dir / "policy.safetensors").string());
    std::vector<float> theta_host = policy.f32("theta", {layout.parameter_count()});
    std::vector<float> adapted_host = policy.f32("adapted", adapted.shape());
    models.load((dir / "models.safetensors").string());
    Dataset loaded = Dataset::load((dir / "dataset.bin").string());
    MBMPO_CHECK_INPUT(loaded.obs_dim() == task.obs_dim && loaded.act_dim() == task.act_dim &&
                          loaded.capacity() == std::size_t(config.dataset_capacity),
                      "cannot resume: ", (dir / "dataset.bin").string(), " does not match the task or capacity");
    // Nothing changes before every file has been read and checked.
    dataset = std::move(loaded);
    theta.copy_from_host(theta_host, &context);
    adapted.copy_from_host(adapted_host, &context);
    iterations_done = state.at("iterations_done").get<int>();
    real_steps = state.at("real_steps").get<std::int64_t>();
    episodes_started = state.at("episodes_started").get<std::uint64_t>();
    // Progress rows of iterations after the checkpoint are redone.
    const fs::path jsonl = run_dir / "progress.jsonl";
    if (fs::exists(jsonl)) {
      std::istringstream lines(read_file(jsonl.string()));
      for (std::string line; std::getline(lines, line);) {
        if (line.empty()) continue;
        try {
          nlohmann::ordered_json row = nlohmann::ordered_json::parse(line);
          if (row.at("iteration").get<int>() < iterations_done) rows.push_back(std::move(row));
        } catch (const nlohmann::json::exception&) {
          break;  // a row cut short by the interruption
        }
      }
    }
  }

  void write_progress() {
    std::string jsonl;
    for (const auto& row : rows) jsonl += row.dump() + "\n";
    write_file_atomically((run_dir / "progress.jsonl").string(), jsonl);
    std::string csv;
    if (!rows.empty()) {
      bool first = true;
      for (const auto& item : rows.front().items()) {
        csv += (first ? "" : ",") + item.key();
        first = false;
      }
      csv += "\n";
      for (const auto& row : rows) {
        first = true;
        for (const auto& item : rows.front().items()) {
          csv += (first ? "" : ",") + csv_value(row.value(item.key(), nlohmann::ordered_json()));
          first = false;
        }
        csv += "\n";
      }
    }
    write_file_atomically((run_dir / "progress.csv").string(), csv);
  }

  nlohmann::ordered_json finish_iteration(int iteration, const SeedIteration& record,
                                          Clock::time_point iteration_start);

  void save_final_policy() {
    Safetensors final_policy;
    final_policy.put_f32("theta", {layout.parameter_count()}, theta.to_host(&context));
    final_policy.set_metadata("env", config.env);
    final_policy.set_metadata("config", config_to_json(config).dump());
    final_policy.save((run_dir / "policy.safetensors").string());
  }

  // Real data for this iteration: random actions first, then one episode per task with its
  // adapted policy. Returns the returns of the adapted policies' episodes (none at first).
  ReturnStats collect() {
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
};

Trainer::Trainer(Context& context, const TrainConfig& config, const std::string& run_dir, bool resume) {
  validate(config);
  MBMPO_CHECK_INPUT(!run_dir.empty(), "no run directory");
  if (!resume) {
    MBMPO_CHECK_INPUT(!fs::exists(fs::path(run_dir) / "progress.jsonl") && !fs::exists(fs::path(run_dir) / "checkpoints"),
                      "run directory ", run_dir, " already holds a run: pass --resume to continue it, or choose another "
                      "--run-dir (nothing is overwritten)");
  }
  state_ = std::make_unique<State>(context, config, run_dir);
  if (resume) state_->load_checkpoint();
  fs::create_directories(state_->checkpoints());
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
// consecutive groups), summed in the same order as a rollout of its own.
std::vector<double> mean_trajectory_returns(Context& context, const Trajectories& t, int groups) {
  const std::vector<float> reward = t.reward.to_host(&context);
  const std::size_t per_group = reward.size() / std::size_t(groups);
  const std::int64_t rows = t.dims.rows() / groups;
  std::vector<double> means(std::size_t(groups), 0.0);
  for (int g = 0; g < groups; ++g) {
    double sum = 0;
    for (std::size_t i = g * per_group; i < (g + 1) * per_group; ++i) sum += reward[i];
    means[g] = sum / double(std::max<std::int64_t>(1, rows));
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
        meta_options_.group_seeds.push_back(s->config.seed);
      }
      // Several seeds predict with a stack of their ensembles, so every seed's models run in the
      // same layer calls.
      DynamicsEnsembleConfig stacked = model_config(c_);
      stacked.models = B_ * c_.models;
      stack_ = std::make_unique<DynamicsEnsemble>(context_, first_.task.obs_dim, first_.task.act_dim, stacked, 0);
    }
  }

  // Step 2 of Algorithm 1: each seed's ensemble fitted on its own dataset, as one batched fit where
  // the seeds' minibatches have one size; one after another past 64 models.
  void fit_models(PhaseClock& clock, std::vector<SeedIteration>& record) {
    std::vector<DynamicsEnsemble*> members;
    std::vector<const Dataset*> datasets;
    std::vector<ModelFitOptions> options;
    for (Trainer::State* s : seeds_) {
      members.push_back(&s->models);
      datasets.push_back(&s->dataset);
      options.push_back(model_fit_options(s->config));
    }
    if (stack_ && DynamicsEnsemble::can_fit_together(members, datasets, options)) {
      std::vector<ModelFitReport> fits;
      clock.time("fit_models", PhaseClock::kEverySeed, [&] { fits = stack_->fit_together(members, datasets, options); });
      for (int b = 0; b < B_; ++b) record[b].fit = fits[b];
      return;
    }
    for (int b = 0; b < B_; ++b) {
      clock.time("fit_models", b, [&] {
        MBMPO_NVTX_RANGE("fit_models");
        record[b].fit = members[b]->fit(*datasets[b], options[b]);
      });
    }
    if (stack_) stack_->stack(members);
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

  // Step 3 of Algorithm 1, meta-step k of the run (its noise and start states are keyed by k):
  // (a) imagined rollouts of the meta-policy, task t on model t mod K; (b) advantages; (c) the
  // inner step to each task's adapted policy; (d) imagined rollouts of the adapted policies; (e)
  // the TRPO meta-update through the inner step. The means over the iteration's meta-steps go into
  // each seed's record.
  void meta_step(std::uint64_t k, PhaseClock& clock, std::vector<SeedIteration>& record) {
    DynamicsEnsemble& models = stack_ ? *stack_ : first_.models;
    clock.time("rollout_pre", PhaseClock::kEverySeed, [&] {
      MBMPO_NVTX_RANGE("rollout_pre");
      sample_start_states_of_seeds(k);
      broadcast_rows(context_, thetas_, tiled_);  // seed b's meta-policy into each of its tasks' rows
      rollout_.draw = 2 * k;
      rollouts_.run(first_.task.id, models, first_.layout, tiled_, start_, rollout_, pre_);
    });
    clock.time("inner_step", PhaseClock::kEverySeed, [&] {
      compute_advantages(context_, pre_, advantage_, pre_adv_);
      inner_step(context_, first_.layout, theta_view(), pre_, pre_adv_, c_.inner_lr, adapted_);
    });
    clock.time("rollout_post", PhaseClock::kEverySeed, [&] {
      MBMPO_NVTX_RANGE("rollout_post");
      rollout_.draw = 2 * k + 1;
      rollouts_.run(first_.task.id, models, first_.layout, adapted_, start_, rollout_, post_);
      compute_advantages(context_, post_, advantage_, post_adv_);
    });
    const std::vector<double> pre_means = mean_trajectory_returns(context_, pre_, B_);
    const std::vector<double> post_means = mean_trajectory_returns(context_, post_, B_);
    if (!objective_) {
      MetaUpdateOptions meta = meta_options_;
      meta.draw = k;
      objective_ = std::make_unique<MetaObjective>(context_, first_.layout, theta_view(), adapted_, pre_, pre_adv_,
                                                   post_, post_adv_, meta);
    } else {
      objective_->rebind(theta_view(), adapted_, pre_, pre_adv_, post_, post_adv_, k);
    }
    const std::vector<MetaUpdateReport> reports = objective_->update_groups(theta_view());
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

  // Each seed's start states of meta-step k, from its own environment and seed.
  void sample_start_states_of_seeds(std::uint64_t k) {
    const std::int64_t rows_per_seed = std::int64_t(T_) * c_.rollouts_per_task;
    start_host_.clear();
    for (const Trainer::State* s : seeds_) {
      const std::vector<float> own = sample_start_states(s->mujoco, int(rows_per_seed), s->config.seed ^ 0x5eedull,
                                                         k * std::uint64_t(rows_per_seed));
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
  std::unique_ptr<DynamicsEnsemble> stack_;  // B > 1: the seeds' ensembles stacked
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

}  // namespace

// The row, then the checkpoint: a run killed in between redoes this iteration on resume and
// rewrites its row (identically on the CPU backend). The row is written again with the
// checkpoint's and the iteration's seconds.
nlohmann::ordered_json Trainer::State::finish_iteration(int iteration, const SeedIteration& record,
                                                        Clock::time_point iteration_start) {
  iterations_done = iteration + 1;
  nlohmann::ordered_json row = progress_row(*this, iteration, record);
  const auto checkpoint_start = Clock::now();
  rows.push_back(row);
  write_progress();
  save_checkpoint();
  row["seconds_checkpoint"] = seconds_since(checkpoint_start);
  row["seconds_iteration"] = seconds_since(iteration_start);
  rows.back() = row;
  write_progress();
  return row;
}

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
    // 3. The meta-steps.
    batch.load_policies();
    for (int step = 0; step < c.meta_steps; ++step) {
      batch.meta_step(std::uint64_t(iteration) * std::uint64_t(c.meta_steps) + std::uint64_t(step), clock, record);
      if (on_meta_step) {
        context.synchronize();
        on_meta_step(iteration, step);
      }
    }
    batch.store_policies();
    std::vector<ReturnStats> pre_returns;
    clock.time("eval_wait", PhaseClock::kEverySeed, [&] { pre_returns = evaluation.get(); });
    // 4. Each seed's progress row and checkpoint.
    std::vector<nlohmann::ordered_json> rows;
    for (int b = 0; b < B; ++b) {
      record[b].pre_returns = pre_returns[b];
      rows.push_back(seeds[b]->finish_iteration(iteration, record[b], iteration_start));
    }
    if (on_rows) on_rows(rows);
  }

  for (State* s : seeds) s->save_final_policy();
}

SavedPolicy load_saved_policy(const std::string& path) {
  fs::path p(path);
  MBMPO_CHECK_INPUT(fs::exists(p), "no such run directory, checkpoint or policy file: ", path);
  if (fs::is_directory(p) && fs::exists(p / "checkpoints" / "latest")) {
    std::string name = read_file((p / "checkpoints" / "latest").string());
    name.erase(std::remove_if(name.begin(), name.end(), ::isspace), name.end());
    p = p / "checkpoints" / name;
    MBMPO_CHECK_INPUT(fs::is_directory(p), "checkpoint ", p.string(), " named by checkpoints/latest does not exist");
  }
  SavedPolicy saved;
  if (fs::is_directory(p)) {
    MBMPO_CHECK_INPUT(fs::exists(p / "state.json"), path, " is neither a run directory nor a checkpoint (no state.json)");
    nlohmann::json state;
    try {
      state = nlohmann::json::parse(read_file((p / "state.json").string()));
      saved.config = config_from_json(state.at("config"));
    } catch (const nlohmann::json::exception& e) {
      throw InputError((p / "state.json").string() + " is not a valid checkpoint state (" + e.what() + ")");
    }
    const Safetensors policy = Safetensors::load((p / "policy.safetensors").string());
    saved.theta = policy.f32("theta", {policy_layout(saved.config).parameter_count()});
    saved.has_models = true;
    saved.models_path = (p / "models.safetensors").string();
    return saved;
  }
  const Safetensors policy = Safetensors::load(p.string());
  try {
    saved.config = config_from_json(nlohmann::json::parse(policy.metadata("config")));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": the policy file's config metadata is not valid JSON (" + e.what() + ")");
  }
  validate(saved.config);
  saved.theta = policy.f32("theta", {policy_layout(saved.config).parameter_count()});
  return saved;
}

}  // namespace mbmpo
