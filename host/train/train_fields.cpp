#include "host/train/train_fields.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "host/core/error.hpp"

namespace mbmpo {

const std::vector<TrainField>& train_fields() {
  using C = TrainConfig;
  using S = std::string;
  using Sizes = std::vector<int>;
  const FieldRange any;
  auto in = [](double low, double high) { return FieldRange{low, high}; };            // [low, high]
  auto above = [](double low, double high) { return FieldRange{low, high, true}; };  // (low, high]
  const FieldRange open_fraction{0, 1, true, true};
  // The widest sizes a GEMM's int dimensions and this project's kernels take.
  const double kMaxSize = 1 << 20;
  // key, member, default, help, range, choices, checkpoint_shape. The defaults are the paper's
  // (the authors' code; docs/algorithm.md lists each with its source). The ranges are wide: they
  // refuse what no run can use (a size that cannot be allocated, a step size that diverges at
  // once), not what a researcher might try.
  static const std::vector<TrainField> fields = {
      {"env", &C::env, S(), "Task (see mbmpo envs)", any, {}, true},
      {"iterations", &C::iterations, 100, "Iterations (each: collect, fit, meta-steps)", in(0, 1e6)},
      {"seed", &C::seed, std::uint64_t{0}, "Seed of every random draw", any, {}, true},
      {"device", &C::device, S("auto"), "auto, cpu or cuda", any, {"auto", "cpu", "cuda"}},
      // The authors' code runs batches of 20 random episodes of 200 steps until at least 5,000
      // steps are in, which is 8,000 on tasks that never terminate; RLlib uses 8,000 too.
      {"random_steps", &C::random_steps, 8000, "Real steps with uniform random actions before the first fit",
       in(0, 1e8)},
      {"horizon", &C::horizon, 200, "Real-environment episode length", in(1, 1e6)},
      {"dataset_capacity", &C::dataset_capacity, 100000, "Transitions kept (FIFO)", in(1, 1e9), {}, true},
      {"eval_episodes", &C::eval_episodes, 5, "Real episodes measuring the pre-update policy per iteration",
       in(0, 1e5)},
      {"threads", &C::threads, 2, "MuJoCo worker threads (real episodes, imagined rollouts' start states)",
       in(1, 1024)},
      // Results do not depend on the number (host/core/cpu_threads.hpp).
      {"cpu_threads", &C::cpu_threads, 0,
       "CPU backend threads at most (0: every usable core); fewer while other processes hold the cores", in(0, 1024)},
      // One fit holds at most 64 models (host/models/ensemble_mlp_cpu.hpp).
      {"models", &C::models, 5, "Dynamics models in the ensemble (K)", in(1, 64), {}, true},
      {"model_hidden", &C::model_hidden, Sizes{512, 512}, "Hidden sizes of each model, e.g. 512,512",
       in(1, kMaxSize), {}, true},
      {"model_activation", &C::model_activation, S("relu"), "relu, tanh or swish", any, {"relu", "tanh", "swish"},
       true},
      {"model_lr", &C::model_lr, 1e-3, "Adam learning rate of the models", above(0, 1)},
      {"model_batch", &C::model_batch, 500, "Minibatch size of the model fit", in(1, 1e7)},
      {"model_max_epochs", &C::model_max_epochs, 500, "Epochs per fit at most", in(1, 1e6)},
      {"model_validation", &C::model_validation, 0.2, "Validation fraction per model", open_fraction},
      {"model_early_stopping", &C::model_early_stopping, true, "Per-model early stopping (true/false)"},
      // Its error against FP32 is bounded by tests (docs/training.md).
      {"tf32", &C::tf32, false,
       "CUDA: the ensemble's products on tensor cores in TF32, FP32 accumulation (true/false)"},
      {"meta_batch", &C::meta_batch, 20, "Tasks per meta-step (task t uses model t mod K)", in(1, 1e5), {}, true},
      {"rollouts_per_task", &C::rollouts_per_task, 50, "Imagined rollouts per task", in(1, 1e6)},
      {"imagined_horizon", &C::imagined_horizon, 200, "Imagined rollout length", in(1, 1e5)},
      {"meta_steps", &C::meta_steps, 30, "Meta-steps per iteration", in(0, 1e5)},
      // The policy kernels' widest layer (host/policy/policy_layout.hpp).
      {"policy_hidden", &C::policy_hidden, Sizes{32, 32}, "Hidden sizes of the policy, e.g. 32,32", in(1, 256), {},
       true},
      {"init_std", &C::init_std, 1.0, "Initial policy standard deviation", above(0, 1e3)},
      // 0 is no adaptation (the meta-policy is then a plain TRPO policy over the models).
      {"inner_lr", &C::inner_lr, 1e-3, "Inner (adaptation) step size alpha", in(0, 10)},
      {"discount", &C::discount, 0.99, "Discount of the imagined returns", in(0, 1)},
      {"gae_lambda", &C::gae_lambda, 1.0, "GAE lambda", in(0, 1)},
      {"max_kl", &C::max_kl, 0.01, "Trust region of the outer TRPO step (delta)", above(0, 10)},
      {"cg_iterations", &C::cg_iterations, 10, "Conjugate-gradient iterations", in(1, 1000)},
      {"cg_damping", &C::cg_damping, 1e-5, "Damping added to the curvature", in(0, 1e3)},
      {"backtrack_ratio", &C::backtrack_ratio, 0.8, "Line-search shrink factor", open_fraction},
      {"max_backtracks", &C::max_backtracks, 15, "Line-search candidates at most", in(0, 1000)},
      {"first_order", &C::first_order, false, "Drop the inner step's Hessian (first-order MAML)"},
      {"fisher_subsample", &C::fisher_subsample, 1.0, "Fraction of states used by the Fisher products",
       above(0, 1)},
      {"cuda_graph", &C::cuda_graph, true, "Record rollouts and CG as CUDA graphs"},
  };
  return fields;
}

bool FieldRange::contains(double value) const {
  if (std::isnan(value)) return false;
  return (low_open ? value > low : value >= low) && (high_open ? value < high : value <= high);
}

std::string FieldRange::text() const {
  auto number = [](double value) {
    std::ostringstream out;
    if (value == std::floor(value) && std::fabs(value) < 1e15) out << std::int64_t(value);
    else out << value;
    return out.str();
  };
  return std::string("in ") + (low_open ? "(" : "[") + number(low) + ", " + number(high) + (high_open ? ")" : "]");
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
            toml << "[";  // a TOML array of integers
            for (std::size_t i = 0; i < value.size(); ++i) toml << (i ? ", " : "") << value[i];
            toml << "]";
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
              MBMPO_CHECK_INPUT(field.range.contains(size), flag, " sizes must be ", field.range.text(), ", got ",
                                join_sizes(value));
            }
          } else if constexpr (!std::is_same_v<Value, bool>) {
            MBMPO_CHECK_INPUT(field.range.contains(double(value)), flag, " must be ", field.range.text(), ", got ",
                              value);
          }
        },
        field.member);
  }
}

}  // namespace mbmpo
