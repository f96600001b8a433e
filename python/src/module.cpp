// mbmpo._core: the library's objects and calls for Python (nanobind). Only arrays and settings
// cross here; every computation stays in the C++/CUDA code. The pure-Python layer
// (python/mbmpo/*.py) adds the Gymnasium wrapper, keyword arguments and plots. This file: the
// module, build facts, the training settings and train(); env_bindings.cpp, model_bindings.cpp
// and policy_bindings.cpp the rest.
//
// Errors: bad input (an InputError, or an array of the wrong dtype, shape, device or layout) is a
// ValueError naming the argument; a failure of the program or machine is a RuntimeError.
#include <nanobind/nanobind.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <filesystem>
#include <limits>
#include <type_traits>
#include <string>
#include <vector>

#include "host/core/atomic_file.hpp"
#include "host/core/backend.hpp"
#include "host/core/build_info.hpp"
#include "host/core/context.hpp"
#include "host/core/error.hpp"
#include "host/envs/task.hpp"
#include "host/train/train_config.hpp"
#include "host/train/evaluation.hpp"
#include "host/train/train_fields.hpp"
#include "host/train/run_directory.hpp"
#include "host/train/seed_group.hpp"
#include "host/train/trainer.hpp"
#include "python/src/arguments.hpp"
#include "python/src/bindings.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace mbmpo::python {
namespace {

const TrainField* find_field(const std::string& name) {
  for (const TrainField& field : train_fields()) {
    if (name == field.key || name == flag_name(field)) return &field;
  }
  return nullptr;
}

// Whether `value` may set a field of type Value: Python's bools only set bool fields (True is an
// int to Python, not a size or a rate), and NumPy's bools set them too.
template <class Value>
bool cast_setting(nb::handle value, Value& out) {
  const bool is_bool = PyBool_Check(value.ptr()) ||
                       nb::cast<std::string>(nb::str(nb::handle(value.type()).attr("__name__"))) == "bool_" ||
                       nb::cast<std::string>(nb::str(nb::handle(value.type()).attr("__name__"))) == "bool";
  if constexpr (std::is_same_v<Value, bool>) {
    if (!is_bool) return false;
    out = PyObject_IsTrue(value.ptr()) == 1;
    return true;
  } else {
    if (is_bool) return false;
    return nb::try_cast<Value>(value, out);
  }
}

// The run's saved settings when resuming (as `mbmpo train --resume` reads its config.toml), else
// the preset's; then every setting by its key. A wrong key or type is a ValueError naming it.
TrainConfig config_from(const std::string& preset, const nb::dict& settings, bool resume, const std::string& run_dir) {
  TrainConfig config;
  if (preset == "smoke") apply_smoke_preset(config);
  else if (preset == "cpu") {
    // The task picks the preset's meta-steps; a wrong or missing env is named below or by validate().
    std::string env;
    if (settings.contains("env")) nb::try_cast<std::string>(settings["env"], env);
    apply_cpu_preset(config, env);
  }
  else if (!preset.empty()) throw InputError("preset must be 'smoke', 'cpu' or empty, got '" + preset + "'");
  if (resume) {
    MBMPO_CHECK_INPUT(std::filesystem::is_directory(run_dir), "cannot resume: run directory ", run_dir,
                      " does not exist");
    // A run killed before its first checkpoint saved nothing: it starts over with the settings
    // given (the trainer says so).
    if (holds_run(run_dir)) config = load_saved_policy(run_dir).config;
  }
  for (auto [key, value] : settings) {
    const std::string name = nb::cast<std::string>(nb::str(key));
    const TrainField* field = find_field(name);
    if (!field) throw InputError("unknown training setting '" + name + "' (mbmpo.config_fields() lists them)");
    std::visit(
        [&](auto member) {
          if (!cast_setting(value, config.*member)) {
            throw InputError("training setting '" + name + "': cannot use " +
                             nb::cast<std::string>(nb::repr(value)) + " here");
          }
        },
        field->member);
  }
  validate(config);
  config.env = task_spec(config.env).name;  // the task's own name, also when given by its Gymnasium id
  return config;
}

// Python's KeyboardInterrupt, carried through the trainer's C++ frames to the Python caller.
struct Interrupted {};

// Several seeds in one process (`mbmpo train --seeds`): RUN_DIR/seed-S each; every row carries its
// "seed". Resuming reads the settings of the first seed that has a checkpoint.
void train_seed_group(const std::string& run_dir, const std::string& preset, const nb::dict& settings, bool resume,
                      const std::string& seeds_text, const std::function<void(const std::string&)>& on_iteration) {
  const std::vector<std::uint64_t> seeds = parse_seed_list(seeds_text);
  std::string settings_dir = run_dir;
  if (resume) {
    for (std::uint64_t seed : seeds) {
      if (holds_run(seed_run_dir(run_dir, seed))) {
        settings_dir = seed_run_dir(run_dir, seed);
        break;
      }
    }
  }
  const TrainConfig config = config_from(preset, settings, resume && settings_dir != run_dir, settings_dir);
  SeedGroup group(resolve_backend(parse_backend_choice(config.device)), config, seeds, run_dir, resume);
  write_seed_group_configs(run_dir, config, seeds, seeds_text);
  bool interrupted = false;
  try {
    nb::gil_scoped_release release;
    group.run([&](const std::vector<nlohmann::ordered_json>& rows) {
      nb::gil_scoped_acquire acquire;
      for (std::size_t i = 0; i < rows.size(); ++i) {
        if (!rows[i].is_object() || !on_iteration) continue;
        nlohmann::ordered_json row = {{"seed", seeds[i]}};
        row.update(rows[i]);
        on_iteration(row.dump());
      }
      // Ctrl-C is seen between iterations; every seed's last complete checkpoint stays.
      if (PyErr_CheckSignals() != 0) throw Interrupted{};
    });
  } catch (const Interrupted&) {
    interrupted = true;  // the Python error (KeyboardInterrupt) is still set
  }
  if (interrupted) throw nb::python_error();
}

void train(const std::string& run_dir, const std::string& preset, const nb::dict& settings, bool resume,
           const std::string& seeds, const std::function<void(const std::string& row_json)>& on_iteration) {
  if (!seeds.empty()) return train_seed_group(run_dir, preset, settings, resume, seeds, on_iteration);
  const TrainConfig config = config_from(preset, settings, resume, run_dir);
  Context context(resolve_backend(parse_backend_choice(config.device)));
  Trainer trainer(context, config, run_dir, resume);
  write_file_atomically((std::filesystem::path(run_dir) / "config.toml").string(), config_to_toml(config));
  bool interrupted = false;
  try {
    nb::gil_scoped_release release;
    trainer.run(
        [&](const nlohmann::ordered_json& row) {
          nb::gil_scoped_acquire acquire;
          if (on_iteration) on_iteration(row.dump());
          if (PyErr_CheckSignals() != 0) throw Interrupted{};
        },
        // Ctrl-C is seen between meta-steps; the last complete iteration's checkpoint stays.
        [&](int, int) {
          nb::gil_scoped_acquire acquire;
          if (PyErr_CheckSignals() != 0) throw Interrupted{};
        });
  } catch (const Interrupted&) {
    interrupted = true;  // the Python error (KeyboardInterrupt) is still set
  }
  if (interrupted) throw nb::python_error();
}

// The configuration `train` would use for these settings, as config.json has it, or the
// ValueError that train would raise; nothing is written.
std::string check_settings(const std::string& preset, const nb::dict& settings) {
  return config_to_json(config_from(preset, settings, false, "")).dump();
}

// A saved policy (a run directory, a checkpoint or a policy file) on the real environment.
nb::dict evaluate(const Arg<std::string>& path_arg, const Arg<std::int64_t>& episodes_arg, const Arg<bool>& adapt_arg,
                  const Arg<std::uint64_t>& seed_arg, const Arg<std::int64_t>& threads, const Arg<std::string>& device) {
  const std::string path = file_path(path_arg, "path");
  // Their ranges are those of `mbmpo eval`, checked by evaluate_saved_policy.
  constexpr std::int64_t low = std::numeric_limits<int>::min(), high = std::numeric_limits<int>::max();
  const int episodes = int(integer(episodes_arg, "episodes", low, high));
  const bool adapt = flag(adapt_arg, "adapt");
  EvaluationOptions options;
  options.episodes = episodes;
  options.adapt = adapt;
  options.seed = seed(seed_arg, "seed");
  options.threads = int(integer(threads, "threads", low, high));
  options.device = text(device, "device");
  Evaluation evaluation;
  {
    nb::gil_scoped_release release;
    evaluation = evaluate_saved_policy(path, options);
  }
  nb::dict result;
  result["env"] = evaluation.env;
  result["episodes"] = episodes;
  result["adapted"] = adapt;
  result["return_mean"] = evaluation.stats.mean();
  result["return_std"] = evaluation.stats.std();
  result["returns"] = evaluation.stats.returns;
  return result;
}

nb::dict info() {
  const BuildInfo b = build_info();
  nb::dict d;
  d["version"] = b.version;
  d["build_type"] = b.build_type;
  d["compiler"] = b.compiler;
  d["cuda_backend"] = b.cuda_backend;
  d["cuda_architectures"] = b.cuda_architectures;
  d["mujoco_version"] = b.mujoco_version;
  d["eigen_version"] = b.eigen_version;
  d["cpu_arch"] = b.cpu_arch;
  d["cpu_isa"] = b.cpu_isa;
  d["cpu_supports"] = b.cpu_supports;
  d["hardware_threads"] = b.hardware_threads;
  const CudaAvailability cuda = cuda_availability();
  d["cuda_usable"] = cuda.usable;
  d["cuda_reason"] = cuda.reason;
  return d;
}

nb::list config_fields() {
  const TrainConfig defaults;
  nb::list fields;
  for (const TrainField& field : train_fields()) {
    nb::dict d;
    d["key"] = field.key;
    d["flag"] = "--" + flag_name(field);
    d["help"] = field.help;
    std::visit([&](auto member) { d["default"] = defaults.*member; }, field.member);
    fields.append(d);
  }
  return fields;
}

}  // namespace
}  // namespace mbmpo::python

NB_MODULE(_core, m) {
  using namespace mbmpo;
  using namespace mbmpo::python;
  m.doc() = "mbmpo's C++/CUDA library (use the mbmpo package, not this module)";
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const InputError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const FileError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    }
  });

  m.def("info", &info, nb::sig("def info() -> dict[str, typing.Any]"), "Build and device facts: version, CUDA backend and whether a GPU is usable.");
  m.def(
      "tasks",
      [] {
        std::vector<std::string> names;
        for (const TaskSpec& t : all_tasks()) names.push_back(t.name);
        return names;
      },
      "The task names.");
  m.def("task_name", [](const std::string& name) { return task_spec(name).name; }, "name"_a,
        "The task's name, also for its Gymnasium id; ValueError naming the known tasks.");
  m.def(
      "task_sizes",
      [](const std::string& name) {
        const TaskSpec& t = task_spec(name);
        nb::dict sizes;
        sizes["obs_dim"] = t.obs_dim;
        sizes["act_dim"] = t.act_dim;
        sizes["action_limit"] = t.action_limit;
        return sizes;
      },
      nb::sig("def task_sizes(name: str) -> dict[str, typing.Any]"), "name"_a,
      "The task's observation and action sizes and its action limit.");
  m.def("gymnasium_id", [](const std::string& name) { return std::string(task_spec(name).gymnasium_id); }, "name"_a,
        "The Gymnasium v5 id of the task (\"Hopper-v5\").");
  m.def("config_fields", &config_fields, nb::sig("def config_fields() -> list[dict[str, typing.Any]]"), "Every training setting: key, flag, help and default.");
  m.def("train", &train,
        nb::sig("def train(run_dir: str, preset: str, settings: dict[str, typing.Any], resume: bool, seeds: str, "
                "on_iteration: collections.abc.Callable[[str], None] | None) -> None"),
        "run_dir"_a, "preset"_a, "settings"_a, "resume"_a, "seeds"_a, "on_iteration"_a.none(),
        "Trains into run_dir as `mbmpo train` does (seeds: as --seeds, or empty); on_iteration gets each progress "
        "row as JSON.");
  m.def("parse_seeds", &parse_seed_list, "text"_a, "The seeds of a --seeds list (\"0-4\", \"0,3,7\"); ValueError if bad.");
  m.def("check_settings", &check_settings,
        nb::sig("def check_settings(preset: str, settings: dict[str, typing.Any]) -> str"), "preset"_a, "settings"_a,
        "The configuration train would use, as JSON; ValueError naming a bad setting.");
  m.def("eval", &evaluate,
        nb::sig("def eval(path: str | os.PathLike[str], episodes: int = 10, adapt: bool = False, seed: int = 1000, "
                "threads: int = 2, device: str = 'auto') -> dict[str, typing.Any]"),
        "path"_a.none(), "episodes"_a.none() = 10, "adapt"_a.none() = false, "seed"_a.none() = 1000, "threads"_a.none() = 2,
        "device"_a.none() = "auto",
        "Real-environment returns of a saved policy (as `mbmpo eval --json`); adapt: after one inner step per model.");
  bind_env(m);
  bind_models(m);
  bind_policy(m);
  bind_trained_policy(m);
  bind_model_env(m);
}
