#include "host/train/train_fields.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "host/core/error.hpp"

namespace mbmpo {

const std::vector<TrainField>& train_fields() {
  using R = FieldRange;
  using C = TrainConfig;
  using S = std::string;
  using Sizes = std::vector<int>;
  // key, member, default, help, range, choices, checkpoint_shape. The defaults are the paper's
  // (the authors' code; docs/algorithm.md lists each with its source).
  static const std::vector<TrainField> fields = {
      {"env", &C::env, S(), "Task (see mbmpo envs)", R::any, {}, true},
      {"iterations", &C::iterations, 100, "Iterations (each: collect, fit, meta-steps)", R::non_negative},
      {"seed", &C::seed, std::uint64_t{0}, "Seed of every random draw", R::any, {}, true},
      {"device", &C::device, S("auto"), "auto, cpu or cuda", R::any, {"auto", "cpu", "cuda"}},
      // The authors' code runs batches of 20 random episodes of 200 steps until at least 5,000
      // steps are in, which is 8,000 on tasks that never terminate; RLlib uses 8,000 too.
      {"random_steps", &C::random_steps, 8000, "Real steps with uniform random actions before the first fit",
       R::non_negative},
      {"horizon", &C::horizon, 200, "Real-environment episode length", R::positive},
      {"dataset_capacity", &C::dataset_capacity, 100000, "Transitions kept (FIFO)", R::positive, {}, true},
      {"eval_episodes", &C::eval_episodes, 5, "Real episodes measuring the pre-update policy per iteration",
       R::non_negative},
      {"threads", &C::threads, 2, "Real-environment worker threads", R::positive},
      // Results do not depend on the number (host/core/cpu_threads.hpp).
      {"cpu_threads", &C::cpu_threads, 0,
       "CPU backend threads at most (0: every usable core); fewer while other processes hold the cores",
       R::non_negative},
      {"models", &C::models, 5, "Dynamics models in the ensemble (K)", R::positive, {}, true},
      {"model_hidden", &C::model_hidden, Sizes{512, 512}, "Hidden sizes of each model, e.g. 512,512", R::positive, {},
       true},
      {"model_activation", &C::model_activation, S("relu"), "relu, tanh or swish", R::any, {"relu", "tanh", "swish"},
       true},
      {"model_lr", &C::model_lr, 1e-3, "Adam learning rate of the models", R::positive},
      {"model_batch", &C::model_batch, 500, "Minibatch size of the model fit", R::positive},
      {"model_max_epochs", &C::model_max_epochs, 500, "Epochs per fit at most", R::positive},
      {"model_validation", &C::model_validation, 0.2, "Validation fraction per model", R::open_fraction},
      {"model_early_stopping", &C::model_early_stopping, true, "Per-model early stopping (true/false)"},
      // Its error against FP32 is bounded by tests (docs/training.md).
      {"tf32", &C::tf32, false,
       "CUDA: the ensemble's products on tensor cores in TF32, FP32 accumulation (true/false)"},
      {"meta_batch", &C::meta_batch, 20, "Tasks per meta-step (task t uses model t mod K)", R::positive, {}, true},
      {"rollouts_per_task", &C::rollouts_per_task, 50, "Imagined rollouts per task", R::positive},
      {"imagined_horizon", &C::imagined_horizon, 200, "Imagined rollout length", R::positive},
      {"meta_steps", &C::meta_steps, 30, "Meta-steps per iteration", R::non_negative},
      {"policy_hidden", &C::policy_hidden, Sizes{32, 32}, "Hidden sizes of the policy, e.g. 32,32", R::positive, {},
       true},
      {"init_std", &C::init_std, 1.0, "Initial policy standard deviation", R::positive},
      {"inner_lr", &C::inner_lr, 1e-3, "Inner (adaptation) step size alpha"},
      {"discount", &C::discount, 0.99, "Discount of the imagined returns", R::closed_fraction},
      {"gae_lambda", &C::gae_lambda, 1.0, "GAE lambda", R::closed_fraction},
      {"max_kl", &C::max_kl, 0.01, "Trust region of the outer TRPO step (delta)"},
      {"cg_iterations", &C::cg_iterations, 10, "Conjugate-gradient iterations"},
      {"cg_damping", &C::cg_damping, 1e-5, "Damping added to the curvature"},
      {"backtrack_ratio", &C::backtrack_ratio, 0.8, "Line-search shrink factor"},
      {"max_backtracks", &C::max_backtracks, 15, "Line-search candidates at most"},
      {"first_order", &C::first_order, false, "Drop the inner step's Hessian (first-order MAML)"},
      {"fisher_subsample", &C::fisher_subsample, 1.0, "Fraction of states used by the Fisher products"},
      {"cuda_graph", &C::cuda_graph, true, "Record rollouts and CG as CUDA graphs"},
  };
  return fields;
}

TrainConfig::TrainConfig() {
  for (const TrainField& field : train_fields()) {
    std::visit(
        [&](auto member) {
          using Value = std::decay_t<decltype(this->*member)>;
          const Value* value = std::get_if<Value>(&field.default_value);
          // A default of another type than its member is a mistake in the table above.
          MBMPO_CHECK(value != nullptr, "train field ", field.key, ": its default has another type than the field");
          this->*member = *value;
        },
        field.member);
  }
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
