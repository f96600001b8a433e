// mbmpo.Dataset and mbmpo.DynamicsEnsemble: transitions, and the ensemble's fit, predict (in
// place on the caller's arrays), save and load.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

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

// Adds one episode's transitions (copied: the dataset keeps its own ring buffer).
void dataset_add(Dataset& data, const nb::ndarray<>& obs, const nb::ndarray<>& act, const nb::ndarray<>& next_obs,
                 const nb::ndarray<>& reward, const nb::ndarray<>& done) {
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
  episode.index = data.total_added();
  data.add(episode);
}

nb::dict fit(Ensemble& e, const Dataset& data, double learning_rate, int batch_size, int max_epochs,
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
    r = e.get().fit(data, o);
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
nb::object predict(Ensemble& e, const nb::ndarray<>& obs, const nb::ndarray<>& act, std::optional<nb::ndarray<>> out,
                   std::optional<std::vector<int>> model_of_row) {
  DynamicsEnsemble& ensemble = e.get();
  const Backend backend = e.context()->backend();
  const TensorView<float> o = array_view(obs, backend, {-1, ensemble.obs_dim()}, "obs");
  const std::int64_t n = o.dim(0);
  const TensorView<float> a = array_view(act, backend, {n, ensemble.act_dim()}, "act");
  nb::object result;
  TensorView<float> next;
  if (out) {
    next = array_view(*out, backend, {n, ensemble.obs_dim()}, "out");
    result = nb::cast(*out);
  } else {
    if (backend != Backend::cpu) throw InputError("out: give the output array on CUDA (e.g. torch.empty_like(obs))");
    NumpyArray array = to_numpy(std::vector<float>(std::size_t(n * ensemble.obs_dim())), {n, ensemble.obs_dim()});
    next = {Backend::cpu, array.data(), {n, ensemble.obs_dim()}};
    result = nb::cast(array);
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
  const ModelAssignment assignment = ensemble.assign(models);
  {
    nb::gil_scoped_release release;
    ensemble.predict(o, a, assignment, next);
    e.context()->synchronize();
  }
  return result;
}

}  // namespace

Ensemble::Ensemble(int obs_dim, int act_dim, int models, std::vector<int> hidden, const std::string& activation,
                   std::uint64_t seed, const std::string& device)
    : context_(std::make_shared<Context>(resolve_backend(parse_backend_choice(device)))),
      ensemble_(*context_, obs_dim, act_dim, ensemble_config(models, std::move(hidden), activation), seed) {}

void bind_models(nb::module_& m) {
  nb::class_<Dataset>(m, "Dataset")
      .def(nb::init<int, int, std::size_t>(), "obs_dim"_a, "act_dim"_a, "capacity"_a = 100000)
      .def("add", &dataset_add, "obs"_a, "act"_a, "next_obs"_a, "reward"_a, "done"_a,
           "Adds one episode's transitions: obs, act, next_obs [T, dim] float32, reward [T] float32, done [T] bool.")
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
      .def("fit", &fit, "dataset"_a, "learning_rate"_a = 1e-3, "batch_size"_a = 500, "max_epochs"_a = 500,
           "validation_fraction"_a = 0.2, "early_stopping"_a = true, "seed"_a = 0)
      .def("predict", &predict, "obs"_a, "act"_a, "out"_a = nb::none(), "model_of_row"_a = nb::none())
      .def("save", [](const Ensemble& e, const std::string& path, bool optimizer) { e.get().save(path, optimizer); },
           "path"_a, "include_optimizer"_a = true)
      .def("load", [](Ensemble& e, const std::string& path) { e.get().load(path); }, "path"_a)
      .def("parameters", [](const Ensemble& e) {
        std::vector<float> values = e.get().parameters();
        const std::int64_t n = std::int64_t(values.size());
        return to_numpy(std::move(values), {n});
      })
      .def_prop_ro("device", [](const Ensemble& e) { return to_string(e.context()->backend()); })
      .def_prop_ro("models", [](const Ensemble& e) { return e.get().models(); })
      .def_prop_ro("obs_dim", [](const Ensemble& e) { return e.get().obs_dim(); })
      .def_prop_ro("act_dim", [](const Ensemble& e) { return e.get().act_dim(); });
}

}  // namespace mbmpo::python
