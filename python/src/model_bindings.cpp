// mbmpo.Dataset and mbmpo.DynamicsEnsemble: transitions, and the ensemble's fit, predict (in
// place on the caller's arrays), save and load.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <mutex>
#include <optional>

#include "host/core/error.hpp"
#include "host/data/dataset.hpp"
#include "host/data/episode.hpp"
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
void dataset_add(PyDataset& d, const InputArray& obs, const InputArray& act, const InputArray& next_obs,
                 const InputArray& reward, const InputArray& done) {
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

nb::dict fit(Ensemble& e, PyDataset& data, double learning_rate, int batch_size, int max_epochs,
             double validation_fraction, bool early_stopping, std::uint64_t seed) {
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
nb::object predict(Ensemble& e, const InputArray& obs, const InputArray& act, nb::object out,
                   std::optional<std::vector<int>> model_of_row) {
  DynamicsEnsemble& ensemble = e.get();
  const Backend backend = e.device()->context.backend();
  const TensorView<float> o = array_view(obs, backend, {-1, ensemble.obs_dim()}, "obs");
  const std::int64_t n = o.dim(0);
  const TensorView<float> a = array_view(act, backend, {n, ensemble.act_dim()}, "act");
  TensorView<float> next;
  if (!out.is_none()) {
    next = array_view(writable_array(out, "out"), backend, {n, ensemble.obs_dim()}, "out");
  } else {
    if (backend != Backend::cpu) throw InputError("out: give the output array on CUDA (e.g. torch.empty_like(obs))");
    NumpyArray array = to_numpy(std::vector<float>(std::size_t(n * ensemble.obs_dim())), {n, ensemble.obs_dim()});
    next = {Backend::cpu, array.data(), {n, ensemble.obs_dim()}};
    out = nb::cast(array);
  }
  std::vector<int> models;
  if (model_of_row) {
    models = *model_of_row;
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

void bind_models(nb::module_& m) {
  nb::class_<PyDataset>(m, "Dataset")
      .def(
          "__init__",
          [](PyDataset* d, int obs_dim, int act_dim, std::size_t capacity) {
            new (d) PyDataset{Dataset(obs_dim, act_dim, capacity), {}};
          },
          "obs_dim"_a, "act_dim"_a, "capacity"_a = 100000)
      .def("add", &dataset_add, "obs"_a, "act"_a, "next_obs"_a, "reward"_a, "done"_a,
           "Adds one episode's transitions: obs, act, next_obs [T, dim] float32, reward [T] float32, done [T] bool.")
      .def_prop_ro("obs_dim", [](const PyDataset& d) { return d.data.obs_dim(); })
      .def_prop_ro("act_dim", [](const PyDataset& d) { return d.data.act_dim(); })
      .def_prop_ro("capacity", [](const PyDataset& d) { return d.data.capacity(); })
      .def("__len__", [](const PyDataset& d) { return d.data.size(); })
      .def("save", [](const PyDataset& d, const std::string& path) { d.data.save(path); }, "path"_a)
      .def_static(
          "load", [](const std::string& path) { return new PyDataset{Dataset::load(path), {}}; }, "path"_a,
          nb::rv_policy::take_ownership);

  nb::class_<Ensemble>(m, "DynamicsEnsemble")
      .def(nb::init<int, int, int, std::vector<int>, const std::string&, std::uint64_t, const std::string&>(),
           "obs_dim"_a, "act_dim"_a, "models"_a = 5, "hidden"_a = std::vector<int>{512, 512}, "activation"_a = "relu",
           "seed"_a = 0, "device"_a = "auto")
      .def("fit", &fit, "dataset"_a, "learning_rate"_a = 1e-3, "batch_size"_a = 500, "max_epochs"_a = 500,
           "validation_fraction"_a = 0.2, "early_stopping"_a = true, "seed"_a = 0)
      .def("predict", &predict, "obs"_a, "act"_a, "out"_a = nb::none(), "model_of_row"_a = nb::none(),
           "next_obs[r] = model[model_of_row[r]](obs[r], act[r]) (default model r mod K), in place on the ensemble's "
           "device. On the CPU, NaN or infinite obs or act are refused (ValueError); on CUDA the arrays are not "
           "read on the host: a NaN row gives a NaN row, and the other rows are unaffected.")
      .def(
          "save",
          [](Ensemble& e, const std::string& path, bool optimizer) {
            std::lock_guard<std::mutex> lock(e.device()->mutex);
            e.get().save(path, optimizer);
          },
          "path"_a, "include_optimizer"_a = true)
      .def(
          "load",
          [](Ensemble& e, const std::string& path) {
            std::lock_guard<std::mutex> lock(e.device()->mutex);
            e.get().load(path);
          },
          "path"_a)
      .def("parameters", [](Ensemble& e) {
        std::vector<float> values = [&] {
          std::lock_guard<std::mutex> lock(e.device()->mutex);
          return e.get().parameters();
        }();
        const std::int64_t n = std::int64_t(values.size());
        return to_numpy(std::move(values), {n});
      })
      .def_prop_ro("device", [](const Ensemble& e) { return to_string(e.device()->context.backend()); })
      .def_prop_ro("models", [](const Ensemble& e) { return e.get().models(); })
      .def_prop_ro("obs_dim", [](const Ensemble& e) { return e.get().obs_dim(); })
      .def_prop_ro("act_dim", [](const Ensemble& e) { return e.get().act_dim(); });
}

}  // namespace mbmpo::python
