#include "host/train/train_fields.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "host/core/error.hpp"

namespace mbmpo {

const std::vector<TrainField>& train_fields() {
  using R = FieldRange;
  using C = TrainConfig;
  static const std::vector<TrainField> fields = {
      {"env", &C::env, "Task (see mbmpo envs)", R::any, {}, true},
      {"iterations", &C::iterations, "Iterations (each: collect, fit, meta-steps)", R::non_negative},
      {"seed", &C::seed, "Seed of every random draw", R::any, {}, true},
      {"device", &C::device, "auto, cpu or cuda", R::any, {"auto", "cpu", "cuda"}},
      {"random_steps", &C::random_steps, "Real steps with uniform random actions before the first fit",
       R::non_negative},
      {"horizon", &C::horizon, "Real-environment episode length", R::positive},
      {"dataset_capacity", &C::dataset_capacity, "Transitions kept (FIFO)", R::positive, {}, true},
      {"eval_episodes", &C::eval_episodes, "Real episodes measuring the pre-update policy per iteration",
       R::non_negative},
      {"threads", &C::threads, "Real-environment worker threads", R::positive},
      {"cpu_threads", &C::cpu_threads,
       "CPU backend threads at most (0: every usable core); fewer while other processes hold the cores",
       R::non_negative},
      {"models", &C::models, "Dynamics models in the ensemble (K)", R::positive, {}, true},
      {"model_hidden", &C::model_hidden, "Hidden sizes of each model, e.g. 512,512", R::positive, {}, true},
      {"model_activation", &C::model_activation, "relu, tanh or swish", R::any, {"relu", "tanh", "swish"}, true},
      {"model_lr", &C::model_lr, "Adam learning rate of the models", R::positive},
      {"model_batch", &C::model_batch, "Minibatch size of the model fit", R::positive},
      {"model_max_epochs", &C::model_max_epochs, "Epochs per fit at most", R::positive},
      {"model_validation", &C::model_validation, "Validation fraction per model", R::open_fraction},
      {"model_early_stopping", &C::model_early_stopping, "Per-model early stopping (true/false)"},
      {"tf32", &C::tf32, "CUDA: the ensemble's products on tensor cores in TF32, FP32 accumulation (true/false)"},
      {"meta_batch", &C::meta_batch, "Tasks per meta-step (task t uses model t mod K)", R::positive, {}, true},
      {"rollouts_per_task", &C::rollouts_per_task, "Imagined rollouts per task", R::positive},
      {"imagined_horizon", &C::imagined_horizon, "Imagined rollout length", R::positive},
      {"meta_steps", &C::meta_steps, "Meta-steps per iteration", R::non_negative},
      {"policy_hidden", &C::policy_hidden, "Hidden sizes of the policy, e.g. 32,32", R::positive, {}, true},
      {"init_std", &C::init_std, "Initial policy standard deviation", R::positive},
      {"inner_lr", &C::inner_lr, "Inner (adaptation) step size alpha"},
      {"discount", &C::discount, "Discount of the imagined returns", R::closed_fraction},
      {"gae_lambda", &C::gae_lambda, "GAE lambda", R::closed_fraction},
      {"max_kl", &C::max_kl, "Trust region of the outer TRPO step (delta)"},
      {"cg_iterations", &C::cg_iterations, "Conjugate-gradient iterations"},
      {"cg_damping", &C::cg_damping, "Damping added to the curvature"},
      {"backtrack_ratio", &C::backtrack_ratio, "Line-search shrink factor"},
      {"max_backtracks", &C::max_backtracks, "Line-search candidates at most"},
      {"first_order", &C::first_order, "Drop the inner step's Hessian (first-order MAML)"},
      {"fisher_subsample", &C::fisher_subsample, "Fraction of states used by the Fisher products"},
      {"cuda_graph", &C::cuda_graph, "Record rollouts and CG as CUDA graphs"},
  };
  return fields;
}

std::string flag_name(const TrainField& field) {
  std::string name = field.key;
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

nlohmann::json config_to_json(const TrainConfig& config) {
  nlohmann::json json = nlohmann::json::object();
  for (const TrainField& field : train_fields()) {
    std::visit([&](auto member) { json[field.key] = config.*member; }, field.member);
  }
  return json;
}

TrainConfig config_from_json(const nlohmann::json& json) {
  TrainConfig config;
  for (const TrainField& field : train_fields()) {
    if (!json.contains(field.key)) continue;
    std::visit(
        [&](auto member) {
          using Value = std::decay_t<decltype(config.*member)>;
          try {
            config.*member = json.at(field.key).get<Value>();
          } catch (const nlohmann::json::exception&) {
            throw InputError(std::string("configuration key '") + field.key + "' has the wrong type: " +
                             json.at(field.key).dump());
          }
        },
        field.member);
  }
  return config;
}

std::string config_to_toml(const TrainConfig& config) {
  std::ostringstream toml;
  toml << "# mbmpo train configuration (use with: mbmpo train --config this-file)\n[train]\n";
  toml.precision(17);
  for (const TrainField& field : train_fields()) {
    toml << flag_name(field) << "=";
    std::visit(
        [&](auto member) {
          const auto& value = config.*member;
          using Value = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<Value, std::string>) {
            toml << nlohmann::json(value).dump();  // a quoted, escaped string
          } else if constexpr (std::is_same_v<Value, std::vector<int>>) {
            toml << '"' << join_sizes(value) << '"';
          } else if constexpr (std::is_same_v<Value, bool>) {
            toml << (value ? "true" : "false");
          } else {
            toml << value;
          }
        },
        field.member);
    toml << "\n";
  }
  return toml.str();
}

namespace {

template <class T>
bool in_range(T value, FieldRange range) {
  if constexpr (std::is_unsigned_v<T>) return range != FieldRange::positive || value > 0;
  if constexpr (std::is_same_v<T, double>) {
    if (range != FieldRange::any && !std::isfinite(value)) return false;
  }
  switch (range) {
    case FieldRange::any: return true;
    case FieldRange::non_negative: return value >= T(0);
    case FieldRange::positive: return value > T(0);
    case FieldRange::open_fraction: return value > T(0) && value < T(1);
    case FieldRange::closed_fraction: return value >= T(0) && value <= T(1);
  }
  return true;
}

const char* range_text(FieldRange range) {
  switch (range) {
    case FieldRange::any: return "";
    case FieldRange::non_negative: return ">= 0";
    case FieldRange::positive: return "> 0";
    case FieldRange::open_fraction: return "in (0, 1)";
    case FieldRange::closed_fraction: return "in [0, 1]";
  }
  return "";
}

}  // namespace

void check_field_ranges(const TrainConfig& config) {
  for (const TrainField& field : train_fields()) {
    const std::string flag = flag_name(field);
    std::visit(
        [&](auto member) {
          const auto& value = config.*member;
          using Value = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<Value, std::string>) {
            if (field.choices.empty()) return;
            std::string list;
            for (const std::string& choice : field.choices) list += (list.empty() ? "" : ", ") + choice;
            MBMPO_CHECK_INPUT(std::find(field.choices.begin(), field.choices.end(), value) != field.choices.end(),
                              flag, " must be one of ", list, ", got '", value, "'");
          } else if constexpr (std::is_same_v<Value, std::vector<int>>) {
            for (int size : value) {
              MBMPO_CHECK_INPUT(in_range(size, field.range), flag, " sizes must be ", range_text(field.range), ", got ",
                                join_sizes(value));
            }
          } else if constexpr (!std::is_same_v<Value, bool>) {
            MBMPO_CHECK_INPUT(in_range(value, field.range), flag, " must be ", range_text(field.range), ", got ",
                              value);
          }
        },
        field.member);
  }
}

}  // namespace mbmpo
