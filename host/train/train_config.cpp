#include "host/train/train_config.hpp"

#include <cmath>

#include "host/core/error.hpp"
#include "host/envs/task.hpp"

namespace mbmpo {

void apply_cpu_preset(TrainConfig& c) {
  c.model_hidden = {256, 256};
  c.model_max_epochs = 100;
  c.meta_steps = 15;
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

namespace {
void check_positive(int value, const char* name) {
  MBMPO_CHECK_INPUT(value > 0, name, " must be > 0, got ", value);
}
void check_fraction(double value, const char* name, bool zero_ok) {
  MBMPO_CHECK_INPUT(std::isfinite(value) && (zero_ok ? value >= 0 : value > 0) && value <= 1, name,
                    " must be in ", zero_ok ? "[0, 1]" : "(0, 1]", ", got ", value);
}
}  // namespace

void validate(const TrainConfig& c) {
  MBMPO_CHECK_INPUT(!c.env.empty(), "no task: give --env NAME (see mbmpo envs)");
  task_spec(c.env);  // throws naming the known tasks
  MBMPO_CHECK_INPUT(c.iterations >= 0, "iterations must be >= 0, got ", c.iterations);
  MBMPO_CHECK_INPUT(c.random_steps >= 0, "random-steps must be >= 0, got ", c.random_steps);
  check_positive(c.horizon, "horizon");
  check_positive(c.dataset_capacity, "dataset-capacity");
  MBMPO_CHECK_INPUT(c.eval_episodes >= 0, "eval-episodes must be >= 0, got ", c.eval_episodes);
  check_positive(c.threads, "threads");
  MBMPO_CHECK_INPUT(c.cpu_threads >= 0, "cpu-threads must be >= 0 (0: every usable core), got ", c.cpu_threads);
  check_positive(c.models, "models");
  MBMPO_CHECK_INPUT(!c.model_hidden.empty(), "model-hidden needs at least one layer");
  for (int h : c.model_hidden) check_positive(h, "model-hidden sizes");
  MBMPO_CHECK_INPUT(c.model_activation == "relu" || c.model_activation == "tanh" || c.model_activation == "swish",
                    "model-activation must be relu, tanh or swish, got '", c.model_activation, "'");
  MBMPO_CHECK_INPUT(c.model_lr > 0 && std::isfinite(c.model_lr), "model-lr must be > 0, got ", c.model_lr);
  check_positive(c.model_batch, "model-batch");
  check_positive(c.model_max_epochs, "model-max-epochs");
  MBMPO_CHECK_INPUT(c.model_validation > 0 && c.model_validation < 1, "model-validation must be in (0, 1), got ",
                    c.model_validation);
  check_positive(c.meta_batch, "meta-batch");
  check_positive(c.rollouts_per_task, "rollouts-per-task");
  check_positive(c.imagined_horizon, "imagined-horizon");
  MBMPO_CHECK_INPUT(c.meta_steps >= 0, "meta-steps must be >= 0, got ", c.meta_steps);
  for (int h : c.policy_hidden) check_positive(h, "policy-hidden sizes");
  MBMPO_CHECK_INPUT(c.init_std > 0 && std::isfinite(c.init_std), "init-std must be > 0, got ", c.init_std);
  check_fraction(c.discount, "discount", true);
  check_fraction(c.gae_lambda, "gae-lambda", true);
  MBMPO_CHECK_INPUT(c.random_steps > 0 || c.iterations == 0,
                    "random-steps must be > 0: the first model fit needs data");
  validate(meta_update_options(c));
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
