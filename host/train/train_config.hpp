// Every setting of an MB-MPO training run. The defaults are the paper's (the authors' code, see
// DESIGN.md); `mbmpo train` exposes each as a flag and a config.toml key of the same name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "host/models/dynamics_ensemble.hpp"
#include "host/policy/advantages.hpp"
#include "host/policy/meta_update.hpp"

namespace mbmpo {

struct TrainConfig {
  std::string env;
  int iterations = 100;
  std::uint64_t seed = 0;
  std::string device = "auto";
  // Real data.
  // Uniform random actions before the first fit: the authors' code runs batches of 20 random
  // episodes of 200 steps until at least 5,000 steps are in, which is 8,000 on tasks that never
  // terminate; RLlib uses 8,000 too.
  int random_steps = 8000;
  int horizon = 200;             // real-environment episode length
  int dataset_capacity = 100000;
  int eval_episodes = 5;         // pre-update policy measured on the real env each iteration
  int threads = 2;               // real-environment worker threads
  // The CPU backend's threads at most; 0: every core this process may use. Fewer run while other
  // processes hold the cores (host/core/cpu_threads.hpp); results do not depend on the number.
  int cpu_threads = 0;
  // Dynamics ensemble.
  int models = 5;
  std::vector<int> model_hidden = {512, 512};
  std::string model_activation = "relu";
  double model_lr = 1e-3;
  int model_batch = 500;
  int model_max_epochs = 500;
  double model_validation = 0.2;
  bool model_early_stopping = true;
  bool tf32 = false;             // CUDA: the ensemble's GEMMs in TF32 (FP32 accumulation)
  // Meta-learning.
  int meta_batch = 20;           // tasks per meta-step (task t uses model t mod K)
  int rollouts_per_task = 50;
  int imagined_horizon = 200;
  int meta_steps = 30;
  std::vector<int> policy_hidden = {32, 32};
  double init_std = 1.0;
  double inner_lr = 1e-3;
  double discount = 0.99;
  double gae_lambda = 1.0;
  double max_kl = 0.01;
  int cg_iterations = 10;
  double cg_damping = 1e-5;
  double backtrack_ratio = 0.8;
  int max_backtracks = 15;
  bool first_order = false;
  double fisher_subsample = 1.0;
  bool cuda_graph = true;
};

// The small configuration of `--preset smoke`: 3 iterations of half_cheetah in seconds on 2 CPU cores.
void apply_smoke_preset(TrainConfig& config);
// `--preset cpu`: the algorithm as the paper has it (ensemble, MAML inner step, second-order TRPO)
// at sizes that learn on a machine without a GPU: (256, 256) models, at most 100 epochs a fit,
// 15 meta-steps an iteration. Measured (bench/RESULTS.md, "Learning"): half_cheetah seed 0 passed
// a pre-update return of 500 after 44k real steps and 19 minutes on 2 cores.
void apply_cpu_preset(TrainConfig& config);

// Throws InputError naming the first bad value (unknown task, sizes <= 0, fractions out of range...).
void validate(const TrainConfig& config);

DynamicsEnsembleConfig model_config(const TrainConfig& config);
ModelFitOptions model_fit_options(const TrainConfig& config);
MetaUpdateOptions meta_update_options(const TrainConfig& config);
AdvantageOptions advantage_options(const TrainConfig& config);

}  // namespace mbmpo
