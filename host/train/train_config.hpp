// Every setting of an MB-MPO training run; `mbmpo train` exposes each as a flag and a config.toml
// key of the same name. The presets and the options each part of the library takes from it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "host/models/dynamics_ensemble.hpp"
#include "host/policy/advantages.hpp"
#include "host/policy/meta_update.hpp"
#include "host/policy/policy_layout.hpp"

namespace mbmpo {

// Every setting of a run. Its fields, their defaults (the paper's: the authors' code, see
// docs/algorithm.md), help and ranges are one table, host/train/train_fields.cpp; a
// default-constructed TrainConfig holds the defaults.
struct TrainConfig {
  TrainConfig();  // the table's defaults

  std::string env;
  int iterations;
  std::uint64_t seed;
  std::string device;
  // Real data.
  int random_steps;
  int horizon;
  int dataset_capacity;
  int eval_episodes;
  int threads;
  int cpu_threads;
  // Dynamics ensemble.
  int models;
  std::vector<int> model_hidden;
  std::string model_activation;
  double model_lr;
  int model_batch;
  int model_max_epochs;
  double model_validation;
  bool model_early_stopping;
  bool tf32;
  // Meta-learning.
  int meta_batch;
  int rollouts_per_task;
  int imagined_horizon;
  int meta_steps;
  std::vector<int> policy_hidden;
  double init_std;
  double inner_lr;
  double discount;
  double gae_lambda;
  double max_kl;
  int cg_iterations;
  double cg_damping;
  double backtrack_ratio;
  int max_backtracks;
  bool first_order;
  double fisher_subsample;
  bool cuda_graph;
};

// The small configuration of `--preset smoke`: 3 iterations of half_cheetah in seconds on 2 CPU cores.
void apply_smoke_preset(TrainConfig& config);
// `--preset cpu`: the algorithm as the paper has it (ensemble, MAML inner step, second-order TRPO)
// at sizes that learn on a machine without a GPU: (256, 256) models, at most 100 epochs a fit,
// and the task's number of meta-steps an iteration (`env`: a task's name or Gymnasium id; any
// other text gets the default, and validate() names the unknown task). How it learns:
// bench/RESULTS.md, "Learning".
void apply_cpu_preset(TrainConfig& config, const std::string& env);
// The preset's settings in words, for the help text.
std::string cpu_preset_summary();

// Throws InputError naming the first bad value (unknown task, sizes <= 0, fractions out of range...).
void validate(const TrainConfig& config);

PolicyLayout policy_layout(const TrainConfig& config);  // the task's sizes and policy_hidden
DynamicsEnsembleConfig model_config(const TrainConfig& config);
ModelFitOptions model_fit_options(const TrainConfig& config);
MetaUpdateOptions meta_update_options(const TrainConfig& config);
AdvantageOptions advantage_options(const TrainConfig& config);

}  // namespace mbmpo
