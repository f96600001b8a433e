// mbmpo._core: the library's objects and calls for Python (nanobind). Only arrays and settings
// cross here; every computation stays in the C++/CUDA code. The pure-Python layer
// (python/mbmpo/*.py) adds the Gymnasium wrapper, keyword arguments and plots.
//
// Errors: bad input (an InputError, or an array of the wrong dtype, shape or device) is a
// ValueError naming the argument; a failure of the program or machine is a RuntimeError.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "host/core/atomic_file.hpp"
#include "host/core/backend.hpp"
#include "host/core/build_info.hpp"
#include "host/core/context.hpp"
#include "host/core/error.hpp"
#include "host/envs/environment.hpp"
#include "host/envs/task.hpp"
#include "host/data/dataset.hpp"
#include "host/data/episode.hpp"
#include "host/models/dynamics_ensemble.hpp"
#include "host/train/train_config.hpp"
#include "host/train/train_fields.hpp"
#include "host/train/trainer.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace mbmpo::python {
namespace {

using Vector = nb::ndarray<nb::numpy, float, nb::ndim<1>>;

// A NumPy array that owns `values` (freed when Python drops the array).
Vector to_numpy(std::vector<float> values) {
  auto* owned = new std::vector<float>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
  return Vector(owned->data(), {owned->size()}, owner);
}

// The float32 values of a 1-D, C-contiguous host array of `count` entries, or a ValueError naming
// `name` and what was expected.
const float* host_floats(const nb::ndarray<>& array, std::size_t count, const char* name) {
  if (array.device_type() != nb::device::cpu::value) {
    throw InputError(std::string(name) + ": expected an array in host memory (NumPy), got one on another device");
  }
  if (array.dtype() != nb::dtype<float>()) {
    throw InputError(std::string(name) + ": expected dtype float32");
  }
  if (array.ndim() != 1 || array.shape(0) != count) {
    std::string shape = "(";
    for (std::size_t i = 0; i < array.ndim(); ++i) shape += (i ? ", " : "") + std::to_string(array.shape(i));
    throw InputError(std::string(name) + ": expected shape (" + std::to_string(count) + ",), got " + shape +
                     (array.ndim() == 1 ? ",)" : ")"));
  }
  if (count > 1 && array.stride(0) != 1) throw InputError(std::string(name) + ": expected a contiguous array");
  return static_cast<const float*>(array.data());
}

// One real environment: Gymnasium's reset/step over the C++ Environment, with the episode
// counter and time limit that Gymnasium's TimeLimit wrapper would add.
class Env {
 public:
  Env(const std::string& task, std::uint64_t seed, int max_episode_steps)
      : env_(MujocoModel::load(task_spec(task))), seed_(seed), max_episode_steps_(max_episode_steps) {
    if (max_episode_steps <= 0) throw InputError("max_episode_steps must be > 0, got " + std::to_string(max_episode_steps));
  }

  // A new episode: with a seed, the episode stream restarts from it (Gymnasium's reset(seed=...)).
  Vector reset(std::optional<std::uint64_t> seed) {
    if (seed) {
      seed_ = *seed;
      episode_ = 0;
    }
    std::vector<float> obs(env_.task().obs_dim);
    env_.reset(seed_, episode_++, obs.data());
    steps_ = 0;
    started_ = true;
    return to_numpy(std::move(obs));
  }

  // (observation, reward, terminated, truncated, x_velocity).
  nb::tuple step(const nb::ndarray<>& action) {
    if (!started_) throw InputError("step before reset: call reset() first");
    const float* a = host_floats(action, std::size_t(env_.task().act_dim), "action");
    std::vector<float> obs(env_.task().obs_dim);
    StepResult result;
    {
      nb::gil_scoped_release release;
      result = env_.step(a, obs.data());
    }
    ++steps_;
    const bool truncated = !result.terminated && steps_ >= max_episode_steps_;
    if (result.terminated || truncated) started_ = false;
    return nb::make_tuple(to_numpy(std::move(obs)), result.reward, result.terminated, truncated, result.x_velocity);
  }

  const TaskSpec& task() const { return env_.task(); }
  double dt() const { return env_.model().dt(); }
  int max_episode_steps() const { return max_episode_steps_; }

 private:
  Environment env_;
  std::uint64_t seed_;
  std::uint64_t episode_ = 0;
  int max_episode_steps_;
  int steps_ = 0;
  bool started_ = false;
};


// ---- Arrays of the library's tensors ------------------------------------------------------------

std::string shape_text(const nb::ndarray<>& array) {
  std::string text = "(";
  for (std::size_t i = 0; i < array.ndim(); ++i) text += (i ? ", " : "") + std::to_string(array.shape(i));
  return text + (array.ndim() == 1 ? ",)" : ")");
}

// A float32, C-contiguous [rows][cols] array on `backend` (NumPy on the CPU, e.g. a PyTorch CUDA
// tensor on CUDA), seen without a copy; rows < 0 takes any row count. ValueError naming `name`.
TensorView<float> matrix_view(const nb::ndarray<>& array, Backend backend, std::int64_t rows, std::int64_t cols,
                              const char* name) {
  const bool on_cuda = array.device_type() == nb::device::cuda::value;
  const bool on_cpu = array.device_type() == nb::device::cpu::value;
  if ((backend == Backend::cpu && !on_cpu) || (backend == Backend::cuda && !on_cuda)) {
    throw InputError(std::string(name) + ": expected an array on the ensemble's device (" + to_string(backend) +
                     "), got one on " + (on_cpu ? "cpu" : on_cuda ? "cuda" : "another device"));
  }
  if (array.dtype() != nb::dtype<float>()) throw InputError(std::string(name) + ": expected dtype float32");
  if (array.ndim() != 2 || (rows >= 0 && std::int64_t(array.shape(0)) != rows) ||
      std::int64_t(array.shape(1)) != cols) {
    throw InputError(std::string(name) + ": expected shape (" + (rows >= 0 ? std::to_string(rows) : "N") + ", " +
                     std::to_string(cols) + "), got " + shape_text(array));
  }
  if (array.shape(0) > 1 && (array.stride(1) != 1 || array.stride(0) != std::int64_t(cols))) {
    throw InputError(std::string(name) + ": expected a C-contiguous array (e.g. numpy.ascontiguousarray)");
  }
  return {backend, static_cast<float*>(array.data()), {std::int64_t(array.shape(0)), cols}};
}

// A host copy of a float32 [rows][cols] (rows < 0: any) NumPy array's values; NaN is refused.
std::vector<float> host_matrix(const nb::ndarray<>& array, std::int64_t rows, std::int64_t cols, const char* name) {
  const TensorView<float> view = matrix_view(array, Backend::cpu, rows, cols, name);
  std::vector<float> values(view.data, view.data + view.numel());
  for (float v : values) {
    if (!std::isfinite(v)) throw InputError(std::string(name) + ": contains NaN or infinite values");
  }
  return values;
}

// ---- Dataset and DynamicsEnsemble -------------------------------------------------------------

// Adds one episode's transitions (copied: the dataset keeps its own ring buffer).
void dataset_add(Dataset& data, const nb::ndarray<>& obs, const nb::ndarray<>& act, const nb::ndarray<>& next_obs,
                 const nb::ndarray<>& reward, const nb::ndarray<>& done) {
  Episode episode;
  episode.obs_dim = data.obs_dim();
  episode.act_dim = data.act_dim();
  episode.obs = host_matrix(obs, -1, data.obs_dim(), "obs");
  episode.length = int(episode.obs.size() / std::max(1, data.obs_dim()));
  episode.act = host_matrix(act, episode.length, data.act_dim(), "act");
  episode.next_obs = host_matrix(next_obs, episode.length, data.obs_dim(), "next_obs");
  if (reward.ndim() != 1 || std::int64_t(reward.shape(0)) != episode.length) {
    throw InputError("reward: expected shape (" + std::to_string(episode.length) + ",), got " + shape_text(reward));
  }
  episode.reward.assign(host_floats(reward, std::size_t(episode.length), "reward"),
                        host_floats(reward, std::size_t(episode.length), "reward") + episode.length);
  if (done.ndim() != 1 || std::int64_t(done.shape(0)) != episode.length || done.dtype() != nb::dtype<bool>() ||
      done.device_type() != nb::device::cpu::value || (episode.length > 1 && done.stride(0) != 1)) {
    throw InputError("done: expected a contiguous bool array of shape (" + std::to_string(episode.length) +
                     ",), got " + shape_text(done));
  }
  const bool* flags = static_cast<const bool*>(done.data());
  episode.done.assign(flags, flags + episode.length);
  episode.index = data.total_added();
  data.add(episode);
}

Activation activation_named(const std::string& name) {
  if (name == "relu") return Activation::relu;
  if (name == "tanh") return Activation::tanh;
  if (name == "swish") return Activation::swish;
  throw InputError("activation must be relu, tanh or swish, got '" + name + "'");
}

// An ensemble with the context (backend, CUDA stream) it lives in.
class Ensemble {
 public:
  Ensemble(int obs_dim, int act_dim, int models, std::vector<int> hidden, const std::string& activation,
           std::uint64_t seed, const std::string& device)
      : context_(std::make_unique<Context>(resolve_backend(parse_backend_choice(device)))),
        ensemble_(*context_, obs_dim, act_dim, config(models, std::move(hidden), activation), seed) {}

  nb::dict fit(const Dataset& data, double learning_rate, int batch_size, int max_epochs, double validation_fraction,
               bool early_stopping, std::uint64_t seed) {
    ModelFitOptions o;
    o.learning_rate = learning_rate;
    o.batch_size = batch_size;
    o.max_epochs = max_epochs;
    o.validation_fraction = validation_fraction;
    o.early_stopping = early_stopping;
    o.seed = seed;
    ModelFitReport r;
    {
      nb::gil_scoped_release release;
      r = ensemble_.fit(data, o);
    }
    nb::dict d;
    d["epochs"] = r.epochs;
    d["train_loss"] = r.train_loss;
    d["validation_loss"] = r.validation_loss;
    d["validation_history"] = r.validation_history;
    d["seconds"] = r.seconds;
    return d;
  }

  // next_obs = model[r](obs[r], act[r]), row r on model (model_of_row[r] or r mod K). Arrays on
  // the ensemble's device are read and written where they are; `out` (given or, on the CPU,
  // allocated) is returned.
  nb::object predict(const nb::ndarray<>& obs, const nb::ndarray<>& act, std::optional<nb::ndarray<>> out,
                     std::optional<std::vector<int>> model_of_row) {
    const Backend backend = context_->backend();
    const TensorView<float> o = matrix_view(obs, backend, -1, ensemble_.obs_dim(), "obs");
    const std::int64_t n = o.dim(0);
    const TensorView<float> a = matrix_view(act, backend, n, ensemble_.act_dim(), "act");
    nb::object result;
    TensorView<float> next;
    if (out) {
      next = matrix_view(*out, backend, n, ensemble_.obs_dim(), "out");
      result = nb::cast(*out);
    } else {
      if (backend != Backend::cpu) throw InputError("out: give the output array on CUDA (e.g. torch.empty_like(obs))");
      auto* owned = new std::vector<float>(std::size_t(n * ensemble_.obs_dim()));
      nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
      nb::ndarray<nb::numpy, float, nb::ndim<2>> array(owned->data(), {std::size_t(n), std::size_t(ensemble_.obs_dim())},
                                                       owner);
      next = {Backend::cpu, owned->data(), {n, ensemble_.obs_dim()}};
      result = nb::cast(array);
    }
    std::vector<int> models = model_of_row ? *model_of_row : std::vector<int>();
    if (!model_of_row) {
      for (std::int64_t r = 0; r < n; ++r) models.push_back(int(r % ensemble_.models()));
    }
    if (std::int64_t(models.size()) != n) {
      throw InputError("model_of_row: expected " + std::to_string(n) + " entries, got " + std::to_string(models.size()));
    }
    const ModelAssignment assignment = ensemble_.assign(models);
    {
      nb::gil_scoped_release release;
      ensemble_.predict(o, a, assignment, next);
      context_->synchronize();
    }
    return result;
  }

  void save(const std::string& path, bool include_optimizer) const { ensemble_.save(path, include_optimizer); }
  void load(const std::string& path) { ensemble_.load(path); }
  Vector parameters() const { return to_numpy(ensemble_.parameters()); }
  const DynamicsEnsemble& get() const { return ensemble_; }
  std::string device() const { return to_string(context_->backend()); }

 private:
  static DynamicsEnsembleConfig config(int models, std::vector<int> hidden, const std::string& activation) {
    if (models <= 0) throw InputError("models must be > 0, got " + std::to_string(models));
    for (int h : hidden) {
      if (h <= 0) throw InputError("hidden sizes must be > 0, got " + std::to_string(h));
    }
    DynamicsEnsembleConfig c;
    c.models = models;
    c.hidden = std::move(hidden);
    c.activation = activation_named(activation);
    return c;
  }
  std::unique_ptr<Context> context_;  // before the ensemble, which keeps a reference to it
  DynamicsEnsemble ensemble_;
};

const TrainField* find_field(const std::string& name) {
  for (const TrainField& field : train_fields()) {
    if (name == field.key || name == flag_name(field)) return &field;
  }
  return nullptr;
}

// The preset first, then every setting by its key; a wrong key or type is a ValueError naming it.
TrainConfig config_from(const std::string& preset, const nb::dict& settings) {
  TrainConfig config;
  if (preset == "smoke") apply_smoke_preset(config);
  else if (preset == "cpu") apply_cpu_preset(config);
  else if (!preset.empty()) throw InputError("preset must be 'smoke', 'cpu' or empty, got '" + preset + "'");
  for (auto [key, value] : settings) {
    const std::string name = nb::cast<std::string>(nb::str(key));
    const TrainField* field = find_field(name);
    if (!field) throw InputError("unknown training setting '" + name + "' (mbmpo.config_fields() lists them)");
    std::visit(
        [&](auto member) {
          using Value = std::decay_t<decltype(config.*member)>;
          if (!nb::try_cast<Value>(value, config.*member)) {
            throw InputError("training setting '" + name + "': cannot use " +
                             nb::cast<std::string>(nb::repr(value)) + " here");
          }
        },
        field->member);
  }
  validate(config);
  return config;
}

// Python's KeyboardInterrupt, carried through the trainer's C++ frames to the Python caller.
struct Interrupted {};

void train(const std::string& run_dir, const std::string& preset, const nb::dict& settings, bool resume,
           const std::function<void(const std::string& row_json)>& on_iteration) {
  const TrainConfig config = config_from(preset, settings);
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
    }
  });

  m.def("info", &info, "Build and device facts: version, CUDA backend and whether a GPU is usable.");
  m.def(
      "tasks",
      [] {
        std::vector<std::string> names;
        for (const TaskSpec& t : all_tasks()) names.push_back(t.name);
        return names;
      },
      "The task names.");
  m.def("config_fields", &config_fields, "Every training setting: key, flag, help and default.");
  m.def("train", &train, "run_dir"_a, "preset"_a, "settings"_a, "resume"_a, "on_iteration"_a.none(),
        "Trains into run_dir as `mbmpo train` does; on_iteration gets each progress row as JSON.");

  nb::class_<Env>(m, "Env")
      .def(nb::init<const std::string&, std::uint64_t, int>(), "task"_a, "seed"_a = 0, "max_episode_steps"_a = 1000)
      .def("reset", &Env::reset, "seed"_a = nb::none())
      .def("step", &Env::step, "action"_a)
      .def_prop_ro("task", [](const Env& e) { return e.task().name; })
      .def_prop_ro("obs_dim", [](const Env& e) { return e.task().obs_dim; })
      .def_prop_ro("act_dim", [](const Env& e) { return e.task().act_dim; })
      .def_prop_ro("action_limit", [](const Env& e) { return e.task().action_limit; })
      .def_prop_ro("dt", &Env::dt)
      .def_prop_ro("max_episode_steps", &Env::max_episode_steps);

  nb::class_<Dataset>(m, "Dataset")
      .def(nb::init<int, int, std::size_t>(), "obs_dim"_a, "act_dim"_a, "capacity"_a = 100000)
      .def("add", &dataset_add, "obs"_a, "act"_a, "next_obs"_a, "reward"_a, "done"_a)
      .def_prop_ro("obs_dim", &Dataset::obs_dim)
      .def_prop_ro("act_dim", &Dataset::act_dim)
      .def_prop_ro("capacity", &Dataset::capacity)
      .def("__len__", &Dataset::size)
      .def("save", &Dataset::save, "path"_a)
      .def_static("load", &Dataset::load, "path"_a);

  nb::class_<Ensemble>(m, "DynamicsEnsemble")
      .def(nb::init<int, int, int, std::vector<int>, const std::string&, std::uint64_t, const std::string&>(),
           "obs_dim"_a, "act_dim"_a, "models"_a = 5, "hidden"_a = std::vector<int>{512, 512}, "activation"_a = "relu",
           "seed"_a = 0, "device"_a = "auto")
      .def("fit", &Ensemble::fit, "dataset"_a, "learning_rate"_a = 1e-3, "batch_size"_a = 500, "max_epochs"_a = 500,
           "validation_fraction"_a = 0.2, "early_stopping"_a = true, "seed"_a = 0)
      .def("predict", &Ensemble::predict, "obs"_a, "act"_a, "out"_a = nb::none(), "model_of_row"_a = nb::none())
      .def("save", &Ensemble::save, "path"_a, "include_optimizer"_a = true)
      .def("load", &Ensemble::load, "path"_a)
      .def("parameters", &Ensemble::parameters)
      .def_prop_ro("device", &Ensemble::device)
      .def_prop_ro("models", [](const Ensemble& e) { return e.get().models(); })
      .def_prop_ro("obs_dim", [](const Ensemble& e) { return e.get().obs_dim(); })
      .def_prop_ro("act_dim", [](const Ensemble& e) { return e.get().act_dim(); });
}
