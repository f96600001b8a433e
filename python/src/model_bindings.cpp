// mbmpo.Dataset and mbmpo.DynamicsEnsemble: transitions, and the ensemble's fit, predict (in
// place on the caller's arrays), save and load.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>

#include "host/core/error.hpp"
#include "host/data/dataset.hpp"
#include "host/data/episode.hpp"
#include "host/core/broadcast_rows.hpp"
#include "host/models/model_spread.hpp"
#include "host/train/run_directory.hpp"
#include "python/src/arguments.hpp"
#include "python/src/arrays.hpp"
#include "python/src/bindings.hpp"

namespace mbmpo::python {

namespace {

using namespace nb::literals;

DynamicsEnsembleConfig ensemble_config(int models, std::vector<int> hidden, const std::string& activation) {
  if (models <= 0) throw InputError("models must be > 0, got " + std::to_string(models));
  for (int h : hidden) {
    if (h <= 0) throw InputError("hidden sizes must be > 0, got " + std::to_string(h));
  }
  DynamicsEnsembleConfig c;
  c.models = models;
  c.hidden = std::move(hidden);
  if (activation == "relu") c.activation = Activation::relu;
  else if (activation == "tanh") c.activation = Activation::tanh;
  else if (activation == "swish") c.activation = Activation::swish;
  else throw InputError("activation must be relu, tanh or swish, got '" + activation + "'");
  return c;
}

// A dataset and the lock that keeps an add() from running during a fit() on another thread.
struct PyDataset {
  Dataset data;
  std::mutex mutex;
};

// Adds one episode's transitions (copied: the dataset keeps its own ring buffer).
void dataset_add(PyDataset& d, const Arg<InputArray>& obs_arg, const Arg<InputArray>& act_arg,
                 const Arg<InputArray>& next_obs_arg, const Arg<InputArray>& reward_arg,
                 const Arg<InputArray>& done_arg) {
  const InputArray obs = array(obs_arg, "obs"), act = array(act_arg, "act"), next_obs = array(next_obs_arg, "next_obs"),
                   reward = array(reward_arg, "reward"), done = array(done_arg, "done");
  const Dataset& data = d.data;
  Episode episode;
  episode.obs_dim = data.obs_dim();
  episode.act_dim = data.act_dim();
  episode.obs = finite_host_copy(obs, {-1, data.obs_dim()}, "obs");
  const std::int64_t n = std::int64_t(episode.obs.size()) / data.obs_dim();
  episode.length = int(n);
  episode.act = finite_host_copy(act, {n, data.act_dim()}, "act");
  episode.next_obs = finite_host_copy(next_obs, {n, data.obs_dim()}, "next_obs");
  episode.reward = finite_host_copy(reward, {n}, "reward");
  if (done.ndim() != 1 || std::int64_t(done.shape(0)) != n || done.dtype() != nb::dtype<bool>() ||
      done.device_type() != nb::device::cpu::value || (n > 1 && done.stride(0) != 1)) {
    throw InputError("done: expected a contiguous bool array of shape (" + std::to_string(n) + ",)");
  }
  const bool* flags = static_cast<const bool*>(done.data());
  episode.done.assign(flags, flags + n);
  nb::gil_scoped_release release;
  std::lock_guard<std::mutex> lock(d.mutex);
  episode.index = d.data.total_added();
  d.data.add(episode);
}

constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();

nb::dict fit(Ensemble& e, const Arg<PyDataset>& dataset, const Arg<double>& learning_rate, const Arg<std::int64_t>& batch_size,
             const Arg<std::int64_t>& max_epochs, const Arg<double>& validation_fraction, const Arg<bool>& early_stopping,
             const Arg<std::uint64_t>& seed_arg) {
  PyDataset& data = instance(dataset, "dataset", "mbmpo.Dataset");
  ModelFitOptions o;
  o.learning_rate = real(learning_rate, "learning_rate");
  o.batch_size = int(integer(batch_size, "batch_size", 1, kIntMax));
  o.max_epochs = int(integer(max_epochs, "max_epochs", 1, kIntMax));
  o.validation_fraction = real(validation_fraction, "validation_fraction");
  o.early_stopping = flag(early_stopping, "early_stopping");
  o.seed = seed(seed_arg, "seed");
  ModelFitReport r;
  {
    nb::gil_scoped_release release;
    std::lock_guard<std::mutex> device_lock(e.device()->mutex);
    std::lock_guard<std::mutex> data_lock(data.mutex);
    r = e.get().fit(data.data, o);
  }
  nb::dict report;
  report["epochs"] = r.epochs;
  report["train_loss"] = r.train_loss;
  report["validation_loss"] = r.validation_loss;
  report["validation_history"] = r.validation_history;
  report["seconds"] = r.seconds;
  return report;
}

// next_obs = model[r](obs[r], act[r]), row r on model_of_row[r] (default r mod K). The arrays are
// read and written where they are, on the ensemble's device; `out` (given or, on the CPU,
// allocated) is returned.
nb::object predict(Ensemble& e, const Arg<InputArray>& obs, const Arg<InputArray>& act, nb::object out,
                   const Arg<std::vector<int>>& model_of_row) {
  DynamicsEnsemble& ensemble = e.get();
  const Backend backend = e.device()->context.backend();
  const TensorView<float> o = array_view(array(obs, "obs"), backend, {-1, ensemble.obs_dim()}, "obs");
  const std::int64_t n = o.dim(0);
  const TensorView<float> a = array_view(array(act, "act"), backend, {n, ensemble.act_dim()}, "act");
  const TensorView<float> next = output_view(out, backend, {n, ensemble.obs_dim()}, "torch.empty_like(obs)");
  std::vector<int> models;
  if (!model_of_row.object.is_none()) {
    models = integers(model_of_row, "model_of_row", std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
  } else {
    for (std::int64_t r = 0; r < n; ++r) models.push_back(int(r % ensemble.models()));
  }
  if (std::int64_t(models.size()) != n) {
    throw InputError("model_of_row: expected " + std::to_string(n) + " entries, got " + std::to_string(models.size()));
  }
  if (n == 0) return out;
  // On CUDA the arrays are not read on the host (predict takes them in place, without a copy):
  // there a NaN row gives a NaN row, and no other row is touched.
  if (backend == Backend::cpu) {
    check_finite(o, "obs");
    check_finite(a, "act");
  }
  nb::gil_scoped_release release;
  std::lock_guard<std::mutex> lock(e.device()->mutex);
  const ModelAssignment assignment = ensemble.assign(models);
  ensemble.predict(o, a, assignment, next);
  e.device()->context.synchronize();
  return out;
}

// The models' predictions of every row: all [K, N, obs_dim], all[k] = model k at (obs, act), in
// place on the ensemble's device: the rows tiled K times, block k on model k, in one prediction.
void predict_each_model(Ensemble& e, const TensorView<float>& o, const TensorView<float>& a, TensorView<float> all) {
  DynamicsEnsemble& ensemble = e.get();
  Context& context = e.device()->context;
  const std::int64_t K = ensemble.models(), n = o.dim(0), O = ensemble.obs_dim(), A = ensemble.act_dim();
  Tensor<float> obs(context.backend(), {K, n * O}), act(context.backend(), {K, n * A});
  broadcast_rows(context, TensorView<const float>{o.backend, o.data, {n * O}}, obs);
  broadcast_rows(context, TensorView<const float>{a.backend, a.data, {n * A}}, act);
  ensemble.predict(TensorView<const float>{obs.backend(), obs.data(), {K * n, O}},
                   TensorView<const float>{act.backend(), act.data(), {K * n, A}},
                   ensemble.grouped_assignment(int(n)), TensorView<float>{all.backend, all.data, {K * n, O}});
}

// The inputs of predict_all and disagreement: obs [N, obs_dim] and act [N, act_dim] on the
// ensemble's device (finite, checked on the CPU).
std::pair<TensorView<float>, TensorView<float>> model_inputs(Ensemble& e, const Arg<InputArray>& obs,
                                                             const Arg<InputArray>& act) {
  const Backend backend = e.device()->context.backend();
  const TensorView<float> o = array_view(array(obs, "obs"), backend, {-1, e.get().obs_dim()}, "obs");
  const TensorView<float> a = array_view(array(act, "act"), backend, {o.dim(0), e.get().act_dim()}, "act");
  if (backend == Backend::cpu) {
    check_finite(o, "obs");
    check_finite(a, "act");
  }
  return {o, a};
}

nb::object predict_all(Ensemble& e, const Arg<InputArray>& obs, const Arg<InputArray>& act, nb::object out) {
  const auto [o, a] = model_inputs(e, obs, act);
  const TensorView<float> all = output_view(out, e.device()->context.backend(),
                                            {e.get().models(), o.dim(0), e.get().obs_dim()}, "torch.empty(K, n, obs_dim)");
  if (o.dim(0) == 0) return out;
  nb::gil_scoped_release release;
  std::lock_guard<std::mutex> lock(e.device()->mutex);
  predict_each_model(e, o, a, all);
  e.device()->context.synchronize();
  return out;
}

nb::object disagreement(Ensemble& e, const Arg<InputArray>& obs, const Arg<InputArray>& act, nb::object out) {
  const auto [o, a] = model_inputs(e, obs, act);
  const TensorView<float> spread =
      output_view(out, e.device()->context.backend(), {o.dim(0), e.get().obs_dim()}, "torch.empty_like(obs)");
  if (o.dim(0) == 0) return out;
  nb::gil_scoped_release release;
  std::lock_guard<std::mutex> lock(e.device()->mutex);
  Context& context = e.device()->context;
  Tensor<float> all(context.backend(), {e.get().models(), o.dim(0), e.get().obs_dim()});
  predict_each_model(e, o, a, all);
  model_spread(context, all, spread);
  context.synchronize();
  return out;
}

// The transitions of a dataset file, of a run directory's latest sound checkpoint, or of a
// checkpoint directory.
PyDataset* load_dataset(const Arg<std::string>& path_arg) {
  const std::string path = file_path(path_arg, "path");
  nb::gil_scoped_release release;
  if (!std::filesystem::is_directory(path)) return new PyDataset{Dataset::load(path), {}};
  const SavedPolicy saved = load_saved_policy(path);
  return new PyDataset{Dataset::load((std::filesystem::path(saved.checkpoint_dir) / "dataset.bin").string()), {}};
}

// A copy of one field of every transition, oldest first: [size, width] (width 0: [size]).
template <class T, class Read>
nb::ndarray<nb::numpy, T> dataset_field(PyDataset& d, int width, Read read) {
  const std::size_t w = std::size_t(std::max(width, 1));
  std::unique_ptr<T[]> copy;
  std::size_t n = 0;
  {
    nb::gil_scoped_release release;  // a fit on another thread holds the dataset's lock
    std::lock_guard<std::mutex> lock(d.mutex);
    n = d.data.size();
    copy.reset(new T[std::max<std::size_t>(n * w, 1)]);
    for (std::size_t i = 0; i < n; ++i) read(i, copy.get() + i * w);
  }
  T* values = copy.release();
  nb::capsule owner(values, [](void* p) noexcept { delete[] static_cast<T*>(p); });
  std::vector<std::size_t> shape{n};
  if (width > 0) shape.push_back(w);
  return nb::ndarray<nb::numpy, T>(values, shape.size(), shape.data(), owner);
}

// A model file, or the models.safetensors of a run directory's latest sound checkpoint (as `mbmpo
// eval --adapt` reads them) or of a checkpoint directory.
std::string model_file_of(const std::string& path) {
  if (!std::filesystem::is_directory(path)) return path;
  const SavedPolicy saved = load_saved_policy(path);
  MBMPO_CHECK_INPUT(saved.has_models, path, ": holds no models");
  return saved.models_path;
}

Ensemble* load_ensemble(const Arg<std::string>& path_arg, const Arg<std::string>& device_arg) {
  const std::string path = file_path(path_arg, "path"), device = text(device_arg, "device");
  parse_backend_choice(device);
  std::unique_ptr<Ensemble> e;
  {
    nb::gil_scoped_release release;
    const std::string file = model_file_of(path);
    e = std::make_unique<Ensemble>(read_model_file_architecture(file), device);
    e->get().load(file);
  }
  return e.release();
}

}  // namespace

// Checked before the members are made, whose own checks would name the layout's sizes instead.
static std::shared_ptr<Device> checked_device(int obs_dim, int act_dim, const std::string& device) {
  MBMPO_CHECK_INPUT(obs_dim > 0 && act_dim > 0, "DynamicsEnsemble: obs_dim and act_dim must be positive, got ", obs_dim,
                    " and ", act_dim);
  return std::make_shared<Device>(resolve_backend(parse_backend_choice(device)));
}

Ensemble::Ensemble(int obs_dim, int act_dim, int models, std::vector<int> hidden, const std::string& activation,
                   std::uint64_t seed, const std::string& device)
    : device_(checked_device(obs_dim, act_dim, device)),
      ensemble_(device_->context, obs_dim, act_dim, ensemble_config(models, std::move(hidden), activation), seed) {}

Ensemble::Ensemble(const ModelFileArchitecture& architecture, const std::string& device)
    : device_(checked_device(architecture.obs_dim, architecture.act_dim, device)),
      ensemble_(device_->context, architecture.obs_dim, architecture.act_dim, architecture.config, 0) {}

void bind_models(nb::module_& m) {
  nb::class_<PyDataset>(m, "Dataset",
                        "Real transitions (obs, act, next_obs [T, dim] float32, reward [T] float32, done [T] bool) in a "
                        "ring buffer of `capacity`, the newest kept: what the ensemble is fitted on. Read back as arrays "
                        "(obs, act, next_obs, reward, done, oldest first); saved and loaded with a checksum; "
                        "Dataset.load also reads a run directory's latest checkpoint.")
      .def(
          "__init__",
          [](PyDataset* d, const Arg<std::int64_t>& obs_dim, const Arg<std::int64_t>& act_dim,
             const Arg<std::int64_t>& capacity) {
            new (d) PyDataset{Dataset(int(integer(obs_dim, "obs_dim", 1, kIntMax)),
                                      int(integer(act_dim, "act_dim", 1, kIntMax)),
                                      std::size_t(integer(capacity, "capacity", 2, std::int64_t(1) << 62))),
                              {}};
          },
          nb::sig("def __init__(self, obs_dim: int, act_dim: int, capacity: int = 100000) -> None"),
          "obs_dim"_a.none(), "act_dim"_a.none(), "capacity"_a.none() = 100000,
          "Transitions of obs_dim-wide observations and act_dim-wide actions; the newest `capacity` are kept.")
      .def("add", &dataset_add,
           nb::sig("def add(self, obs: numpy.typing.NDArray[numpy.float32], act: numpy.typing.NDArray[numpy.float32], next_obs: "
                   "numpy.typing.NDArray[numpy.float32], reward: numpy.typing.NDArray[numpy.float32], done: numpy.typing.NDArray[numpy.bool_]) -> None"),
           "obs"_a.none(), "act"_a.none(), "next_obs"_a.none(), "reward"_a.none(), "done"_a.none(),
           "Adds one episode's transitions: obs, act, next_obs [T, dim] float32, reward [T] float32, done [T] bool.")
      .def_prop_ro("obs_dim", [](const PyDataset& d) { return d.data.obs_dim(); }, "The observation's size.")
      .def_prop_ro("act_dim", [](const PyDataset& d) { return d.data.act_dim(); }, "The action's size.")
      .def_prop_ro("capacity", [](const PyDataset& d) { return d.data.capacity(); },
                   "The most transitions held; adding more drops the oldest.")
      .def("__len__", [](const PyDataset& d) { return d.data.size(); }, "The number of transitions held.")
      .def_prop_ro(
          "obs",
          [](PyDataset& d) {
            const int w = d.data.obs_dim();
            return dataset_field<float>(d, w, [&](std::size_t i, float* o) { std::copy_n(d.data.obs(i), w, o); });
          },
          nb::sig("def obs(self) -> numpy.typing.NDArray[numpy.float32]"),
          "A copy of the observations, oldest first: [len, obs_dim] float32.", nb::rv_policy::automatic)
      .def_prop_ro(
          "act",
          [](PyDataset& d) {
            const int w = d.data.act_dim();
            return dataset_field<float>(d, w, [&](std::size_t i, float* o) { std::copy_n(d.data.act(i), w, o); });
          },
          nb::sig("def act(self) -> numpy.typing.NDArray[numpy.float32]"),
          "A copy of the actions, oldest first: [len, act_dim] float32.", nb::rv_policy::automatic)
      .def_prop_ro(
          "next_obs",
          [](PyDataset& d) {
            const int w = d.data.obs_dim();
            return dataset_field<float>(d, w, [&](std::size_t i, float* o) { std::copy_n(d.data.next_obs(i), w, o); });
          },
          nb::sig("def next_obs(self) -> numpy.typing.NDArray[numpy.float32]"),
          "A copy of the next observations, oldest first: [len, obs_dim] float32.", nb::rv_policy::automatic)
      .def_prop_ro(
          "reward",
          [](PyDataset& d) { return dataset_field<float>(d, 0, [&](std::size_t i, float* o) { *o = d.data.reward(i); }); },
          nb::sig("def reward(self) -> numpy.typing.NDArray[numpy.float32]"), "A copy of the rewards: [len] float32.", nb::rv_policy::automatic)
      .def_prop_ro(
          "done",
          [](PyDataset& d) { return dataset_field<bool>(d, 0, [&](std::size_t i, bool* o) { *o = d.data.done(i); }); },
          nb::sig("def done(self) -> numpy.typing.NDArray[numpy.bool_]"),
          "A copy of the episode ends (terminated, not truncated): [len] bool.", nb::rv_policy::automatic)
      .def(
          "save",
          [](PyDataset& d, const Arg<std::string>& path_arg) {
            const std::string path = file_path(path_arg, "path");
            nb::gil_scoped_release release;
            std::lock_guard<std::mutex> lock(d.mutex);  // not while an add() or fit() on another thread runs
            d.data.save(path);
          },
          nb::sig("def save(self, path: str | os.PathLike[str]) -> None"), "path"_a.none(),
          "Writes the dataset file (a header, the transitions and a checksum; atomic).")
      .def_static("load", &load_dataset, nb::sig("def load(path: str | os.PathLike[str]) -> Dataset"),
                  "path"_a.none(), nb::rv_policy::take_ownership,
                  "The transitions of a dataset file, of a run directory's latest checkpoint, or of a checkpoint "
                  "directory (the data the run's models were fitted on).");

  nb::class_<Ensemble>(m, "DynamicsEnsemble",
                       "K dynamics models, MLPs that predict the change of the observation, s' = s + f_k(s, a), "
                       "with inputs and targets normalised by the data's statistics; fitted together (fit), evaluated "
                       "together (predict, predict_all, disagreement) on the CPU or CUDA, saved and loaded "
                       "(save, DynamicsEnsemble.load, load_weights).")
      .def(
          "__init__",
          [](Ensemble* e, const Arg<std::int64_t>& obs_dim, const Arg<std::int64_t>& act_dim,
             const Arg<std::int64_t>& models, const Arg<std::vector<int>>& hidden, const Arg<std::string>& activation,
             const Arg<std::uint64_t>& seed_arg, const Arg<std::string>& device) {
            new (e) Ensemble(int(integer(obs_dim, "obs_dim", 1, kIntMax)), int(integer(act_dim, "act_dim", 1, kIntMax)),
                             int(integer(models, "models", 1, kIntMax)), integers(hidden, "hidden", 1, int(kIntMax)),
                             text(activation, "activation"), seed(seed_arg, "seed"), text(device, "device"));
          },
          nb::sig("def __init__(self, obs_dim: int, act_dim: int, models: int = 5, "
                  "hidden: collections.abc.Sequence[int] = [512, 512], activation: str = 'relu', seed: int = 0, "
                  "device: str = 'auto') -> None"),
          "obs_dim"_a.none(), "act_dim"_a.none(), "models"_a.none() = 5,
          "hidden"_a.none() = std::vector<int>{512, 512}, "activation"_a.none() = "relu", "seed"_a.none() = 0,
          "device"_a.none() = "auto",
          "K models, each an MLP of the hidden sizes predicting the change of the observation; device: 'cpu', "
          "'cuda' or 'auto'.")
      .def("fit", &fit,
           nb::sig("def fit(self, dataset: Dataset, learning_rate: float = 0.001, batch_size: int = 500, "
                   "max_epochs: int = 500, validation_fraction: float = 0.2, early_stopping: bool = True, "
                   "seed: int = 0) -> dict[str, typing.Any]"),
           "dataset"_a.none(), "learning_rate"_a.none() = 1e-3, "batch_size"_a.none() = 500,
           "max_epochs"_a.none() = 500, "validation_fraction"_a.none() = 0.2, "early_stopping"_a.none() = true,
           "seed"_a.none() = 0,
           "Fits every model on the dataset (Adam, minibatches, per-model early stopping on a held-out fraction); "
           "returns the report: epochs, train_loss, validation_loss, validation_history, seconds.")
      .def("predict", &predict,
           nb::sig("def predict(self, obs: numpy.typing.NDArray[numpy.float32], act: numpy.typing.NDArray[numpy.float32], out: "
                   "numpy.typing.NDArray[numpy.float32] | None = None, model_of_row: collections.abc.Sequence[int] | None = None) "
                   "-> numpy.typing.NDArray[numpy.float32]"),
           "obs"_a.none(), "act"_a.none(), "out"_a = nb::none(), "model_of_row"_a.none() = nb::none(),
           "next_obs[r] = model[model_of_row[r]](obs[r], act[r]) (default model r mod K): obs [N, obs_dim] and act "
           "[N, act_dim] float32 give next_obs [N, obs_dim] float32 (`out` when given, the same object), in place on "
           "the ensemble's device. On the CPU, NaN or infinite obs or act are refused (ValueError); on CUDA the arrays are not "
           "read on the host: a NaN row gives a NaN row, and the other rows are unaffected.")
      .def("predict_all", &predict_all,
           nb::sig("def predict_all(self, obs: numpy.typing.NDArray[numpy.float32], act: "
                   "numpy.typing.NDArray[numpy.float32], out: numpy.typing.NDArray[numpy.float32] | None = None) -> "
                   "numpy.typing.NDArray[numpy.float32]"),
           "obs"_a.none(), "act"_a.none(), "out"_a = nb::none(),
           "Every model's prediction of every row: obs [N, obs_dim], act [N, act_dim] float32 give [K, N, obs_dim], "
           "out[k] = model k's next_obs, in place on the ensemble's device (on CUDA give `out`).")
      .def("disagreement", &disagreement,
           nb::sig("def disagreement(self, obs: numpy.typing.NDArray[numpy.float32], act: "
                   "numpy.typing.NDArray[numpy.float32], out: numpy.typing.NDArray[numpy.float32] | None = None) -> "
                   "numpy.typing.NDArray[numpy.float32]"),
           "obs"_a.none(), "act"_a.none(), "out"_a = nb::none(),
           "How much the models disagree: [N, obs_dim], the standard deviation over the K models of each predicted "
           "element (population std, predict_all(obs, act).std(axis=0)), on the ensemble's device.")
      .def(
          "save",
          [](Ensemble& e, const Arg<std::string>& path_arg, const Arg<bool>& optimizer) {
            const std::string path = file_path(path_arg, "path");
            const bool include_optimizer = flag(optimizer, "include_optimizer");
            std::lock_guard<std::mutex> lock(e.device()->mutex);
            e.get().save(path, include_optimizer);
          },
          nb::sig("def save(self, path: str | os.PathLike[str], include_optimizer: bool = True) -> None"),
          "path"_a.none(), "include_optimizer"_a.none() = true,
          "Writes the model file (.safetensors: per layer v, g, b [K, out, in]; the normalisation; with "
          "include_optimizer the Adam state); the architecture in its metadata. Atomic: a temporary name, then "
          "renamed.")
      .def_static("load", &load_ensemble,
                  nb::sig("def load(path: str | os.PathLike[str], device: str = 'auto') -> DynamicsEnsemble"),
                  "path"_a.none(), "device"_a.none() = "auto", nb::rv_policy::take_ownership,
                  "A new ensemble from a model file (its architecture read from the file's metadata), or from the "
                  "models of a run directory's latest checkpoint, or of a checkpoint directory.")
      .def(
          "load_weights",
          [](Ensemble& e, const Arg<std::string>& path_arg) {
            const std::string path = file_path(path_arg, "path");
            std::lock_guard<std::mutex> lock(e.device()->mutex);
            e.get().load(path);
          },
          nb::sig("def load_weights(self, path: str | os.PathLike[str]) -> None"), "path"_a.none(),
          "Reads a model file into this ensemble; the file's architecture must be this one's (ValueError naming "
          "the difference otherwise). Nothing changes unless the whole file reads and checks.")
      .def("parameters", [](Ensemble& e) {
        std::vector<float> values = [&] {
          std::lock_guard<std::mutex> lock(e.device()->mutex);
          return e.get().parameters();
        }();
        const std::int64_t n = std::int64_t(values.size());
        return to_numpy(std::move(values), {n});
      }, nb::sig("def parameters(self) -> numpy.typing.NDArray[numpy.float32]"),
      "A copy of every model's weights as one flat float32 vector (per layer: directions v [K, out, in], gains "
      "g [K, out], biases b [K, out]; the model file's tensors).")
      .def_prop_ro("device", [](const Ensemble& e) { return to_string(e.device()->context.backend()); },
                   "'cpu' or 'cuda': where the models' arrays live.")
      .def_prop_ro("models", [](const Ensemble& e) { return e.get().models(); }, "K, the number of models.")
      .def_prop_ro("obs_dim", [](const Ensemble& e) { return e.get().obs_dim(); }, "The observation's size.")
      .def_prop_ro("act_dim", [](const Ensemble& e) { return e.get().act_dim(); }, "The action's size.");
}

}  // namespace mbmpo::python
