#include "host/train/train_config.hpp"

#include <cmath>

#include "host/core/error.hpp"
#include "host/envs/task.hpp"
#include "host/models/ensemble_mlp_cpu.hpp"
#include "host/train/train_fields.hpp"

namespace mbmpo {

namespace {

// `--preset cpu`'s meta-steps an iteration, per task, each chosen by three seeds' curves
// (bench/RESULTS.md, "Learning"): more TRPO steps on the same models help half_cheetah and
// overfit hopper's policy to its models. A task not listed gets kCpuPresetMetaSteps.
struct CpuPresetTask {
  const char* task;
  int meta_steps;
};
constexpr CpuPresetTask kCpuPresetTasks[] = {{"hopper", 10}, {"half_cheetah", 30}};
constexpr int kCpuPresetMetaSteps = 15;

}  // namespace

void apply_cpu_preset(TrainConfig& c, const std::string& env) {
  c.model_hidden = {256, 256};
  c.model_max_epochs = 100;
  c.meta_steps = kCpuPresetMetaSteps;
  const TaskSpec* task = find_task(env);
  if (task == nullptr) return;
  for (const CpuPresetTask& entry : kCpuPresetTasks) {
    if (task->name == entry.task) c.meta_steps = entry.meta_steps;
  }
}

std::string cpu_preset_summary() {
  std::string summary = "(256, 256) models, <= 100 epochs a fit, meta-steps:";
  for (const CpuPresetTask& entry : kCpuPresetTasks) {
    summary += std::string(" ") + entry.task + " " + std::to_string(entry.meta_steps) + ",";
  }
  return summary + " other tasks " + std::to_string(kCpuPresetMetaSteps);
}

void apply_smoke_preset(TrainConfig& c) {
  c.iterations = 3;
  c.random_steps = 2000;
  c.horizon = 200;
  c.eval_episodes = 4;
  c.models = 5;
  c.model_hidden = {128, 128};
  c.model_max_epochs = 40;
  c.meta_batch = 10;
  c.rollouts_per_task = 10;
  c.imagined_horizon = 50;
  c.meta_steps = 10;
  c.inner_lr = 0.05;
  c.max_kl = 0.02;
}

void validate(const TrainConfig& c) {
  MBMPO_CHECK_INPUT(!c.env.empty(), "no task: give --env NAME (see mbmpo envs)");
  task_spec(c.env);  // throws naming the known tasks
  check_field_ranges(c);
  MBMPO_CHECK_INPUT(!c.model_hidden.empty(), "model-hidden needs at least one layer");
  MBMPO_CHECK_INPUT(c.random_steps > 0 || c.iterations == 0,
                    "random-steps must be > 0: the first model fit needs data");
  // The limits that the parts check when they are built, checked here too, so that a run is
  // refused before its directory is made.
  MBMPO_CHECK_INPUT(c.dataset_capacity >= 2 || c.iterations == 0,
                    "dataset-capacity must be >= 2: the model fit needs at least 2 transitions");
  MBMPO_CHECK_INPUT(c.model_hidden.size() < kMaxParameterSegments / 3, "model-hidden: at most ",
                    kMaxParameterSegments / 3 - 1, " hidden layers, got ", c.model_hidden.size());
  policy_layout(c);  // the policy's sizes (at most 3 hidden layers of at most 256)
  validate(meta_update_options(c));
}

PolicyLayout policy_layout(const TrainConfig& c) {
  const TaskSpec& task = task_spec(c.env);
  return PolicyLayout(task.obs_dim, task.act_dim, c.policy_hidden);
}

DynamicsEnsembleConfig model_config(const TrainConfig& c) {
  DynamicsEnsembleConfig m;
  m.models = c.models;
  m.hidden = c.model_hidden;
  m.activation = c.model_activation == "tanh" ? Activation::tanh
                 : c.model_activation == "swish" ? Activation::swish
                                                 : Activation::relu;
  m.tf32 = c.tf32;
  return m;
}

ModelFitOptions model_fit_options(const TrainConfig& c) {
  ModelFitOptions o;
  o.learning_rate = c.model_lr;
  o.batch_size = c.model_batch;
  o.max_epochs = c.model_max_epochs;
  o.validation_fraction = c.model_validation;
  o.early_stopping = c.model_early_stopping;
  o.seed = c.seed;  // each fit draws fresh splits and shuffles from the ensemble's fit counter
  return o;
}

MetaUpdateOptions meta_update_options(const TrainConfig& c) {
  MetaUpdateOptions o;
  o.inner_lr = c.inner_lr;
  o.max_kl = c.max_kl;
  o.damping = c.cg_damping;
  o.cg_iterations = c.cg_iterations;
  o.backtrack_ratio = c.backtrack_ratio;
  o.max_backtracks = c.max_backtracks;
  o.first_order = c.first_order;
  o.fisher_subsample = c.fisher_subsample;
  o.seed = c.seed;
  o.cuda_graph = c.cuda_graph;
  return o;
}

AdvantageOptions advantage_options(const TrainConfig& c) {
  AdvantageOptions o;
  o.discount = c.discount;
  o.gae_lambda = c.gae_lambda;
  return o;
}

}  // namespace mbmpo
