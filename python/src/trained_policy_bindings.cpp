// mbmpo.Policy: a trained meta-policy read from a run directory, a checkpoint or a policy file
// (host/train/policy_file.hpp), its actions on a batch of observations on its device, its
// parameters by name, and its file.
#include <nanobind/stl/map.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <limits>
#include <map>
#include <memory>
#include <mutex>

#include "host/core/error.hpp"
#include "host/envs/task.hpp"
#include "host/policy/gaussian_policy.hpp"
#include "host/train/policy_file.hpp"
#include "host/train/run_directory.hpp"
#include "python/src/arguments.hpp"
#include "python/src/arrays.hpp"
#include "python/src/bindings.hpp"

namespace mbmpo::python {
namespace {

using namespace nb::literals;

struct TrainedPolicy {
  std::shared_ptr<Device> device;
  TrainConfig config;  // what it was trained with (its task and sizes among it)
  PolicyLayout layout;
  Tensor<float> theta;  // on the device
};

TrainedPolicy* load_policy(const Arg<std::string>& path_arg, const Arg<std::string>& device_arg) {
  const std::string path = file_path(path_arg, "path");
  const std::string device = text(device_arg, "device");
  const BackendChoice choice = parse_backend_choice(device);
  SavedPolicy saved;
  {
    nb::gil_scoped_release release;
    saved = load_saved_policy(path);
  }
  auto policy = std::make_unique<TrainedPolicy>(
      TrainedPolicy{std::make_shared<Device>(resolve_backend(choice)), saved.config, policy_layout(saved.config), {}});
  policy->theta = Tensor<float>::from_host(policy->device->context.backend(), {policy->layout.parameter_count()},
                                           saved.theta, &policy->device->context);
  return policy.release();
}

std::vector<float> host_theta(TrainedPolicy& p) {
  std::lock_guard<std::mutex> lock(p.device->mutex);
  return p.theta.to_host(&p.device->context);
}

// act = the policy's actions at obs ([N, obs_dim] or one [obs_dim]), in place on its device.
nb::object predict(TrainedPolicy& p, const Arg<InputArray>& obs_arg, const Arg<bool>& deterministic_arg,
                   const Arg<std::uint64_t>& seed_arg, nb::object out) {
  const bool deterministic = flag(deterministic_arg, "deterministic");
  const std::uint64_t noise_seed = seed(seed_arg, "seed");
  const InputArray obs_array = array(obs_arg, "obs");
  const Backend backend = p.device->context.backend();
  const PolicyLayout& layout = p.layout;
  const bool single = obs_array.ndim() == 1;
  // One observation is a batch of one; its action comes back as one row.
  const Shape obs_shape = single ? Shape{layout.obs_dim()} : Shape{-1, layout.obs_dim()};
  TensorView<float> obs = array_view(obs_array, backend, obs_shape, "obs");
  const std::int64_t n = single ? 1 : obs.dim(0);
  obs.shape = {n, layout.obs_dim()};
  const Shape act_shape = single ? Shape{layout.act_dim()} : Shape{n, layout.act_dim()};
  TensorView<float> act = output_view(out, backend, act_shape, "torch.empty(n, act_dim)");
  act.shape = {n, layout.act_dim()};
  if (n == 0) return out;
  if (backend == Backend::cpu) check_finite(obs, "obs");
  const float limit = task_spec(p.config.env).action_limit;
  nb::gil_scoped_release release;
  std::lock_guard<std::mutex> lock(p.device->mutex);
  policy_actions(p.device->context, layout, p.theta, obs, !deterministic, noise_seed, limit, act);
  p.device->context.synchronize();
  return out;
}

// The named tensors of the policy file, as NumPy copies.
nb::dict parameters(TrainedPolicy& p) {
  const std::vector<float> theta = host_theta(p);
  nb::dict named;
  for (const PolicyTensor& t : policy_tensors(p.layout)) {
    named[t.name.c_str()] = to_numpy(std::vector<float>(theta.begin() + t.offset, theta.begin() + t.offset + t.count),
                                      t.shape);
  }
  return named;
}

}  // namespace

void bind_trained_policy(nb::module_& m) {
  nb::class_<TrainedPolicy>(m, "Policy",
                            "A trained Gaussian meta-policy: a tanh MLP giving the action's mean, and a log-std per "
                            "action. Policy.load reads it from a run directory, a checkpoint or a policy.safetensors.")
      .def_static("load", &load_policy,
                  nb::sig("def load(path: str | os.PathLike[str], device: str = 'auto') -> Policy"),
                  "path"_a.none(), "device"_a.none() = "auto", nb::rv_policy::take_ownership,
                  "The policy of a run directory (its latest sound checkpoint, as `mbmpo eval`), of a checkpoint "
                  "directory, or of a policy file; device: 'cpu', 'cuda' or 'auto'.")
      .def("predict", &predict,
           nb::sig("def predict(self, obs: numpy.typing.NDArray[numpy.float32], deterministic: bool = True, "
                   "seed: int = 0, out: numpy.typing.NDArray[numpy.float32] | None = None) -> "
                   "numpy.typing.NDArray[numpy.float32]"),
           "obs"_a.none(), "deterministic"_a.none() = true, "seed"_a.none() = 0, "out"_a = nb::none(),
           "Actions at obs: float32 [N, obs_dim] gives [N, act_dim], one [obs_dim] gives [act_dim]. deterministic: "
           "the mean; otherwise mean + std * noise, the noise of row n and element j drawn from Philox(seed) at (n, "
           "j). Clipped to the task's action limit, as the environment does. On the CPU obs is a NumPy array (NaN or "
           "infinite values are refused); on CUDA a device array (e.g. a PyTorch tensor) and `out` must be given.")
      .def_prop_ro("parameters", &parameters,
                   nb::sig("def parameters(self) -> dict[str, numpy.typing.NDArray[numpy.float32]]"),
                   "Copies of the policy file's named tensors: '0.weight' [hidden, obs_dim], '0.bias', '2.weight', "
                   "..., 'log_std' [act_dim]; the names of torch.nn.Sequential(Linear, Tanh, ..., Linear)'s "
                   "state_dict, plus log_std.")
      .def_prop_ro(
          "theta",
          [](TrainedPolicy& p) { return to_numpy(host_theta(p), {p.layout.parameter_count()}); },
          nb::sig("def theta(self) -> numpy.typing.NDArray[numpy.float32]"),
          "A copy of the parameters as one flat vector (the order of GaussianPolicy, imagined_rollout's params).",
          nb::rv_policy::automatic)
      .def_prop_ro(
          "layout", [](const TrainedPolicy& p) { return p.layout; },
          nb::sig("def layout(self) -> GaussianPolicy"), "The policy's GaussianPolicy (its sizes).")
      .def(
          "save",
          [](TrainedPolicy& p, const Arg<std::string>& path_arg) {
            const std::string path = file_path(path_arg, "path");
            const std::vector<float> theta = host_theta(p);
            nb::gil_scoped_release release;
            save_policy_file(path, p.config, theta);
          },
          nb::sig("def save(self, path: str | os.PathLike[str]) -> None"), "path"_a.none(),
          "Writes the policy file (atomically: a temporary name, then renamed).")
      .def_prop_ro("task", [](const TrainedPolicy& p) { return p.config.env; }, "The task it was trained on.")
      .def_prop_ro("obs_dim", [](const TrainedPolicy& p) { return p.layout.obs_dim(); }, "The observation's size.")
      .def_prop_ro("act_dim", [](const TrainedPolicy& p) { return p.layout.act_dim(); }, "The action's size.")
      .def_prop_ro("hidden", [](const TrainedPolicy& p) { return p.layout.hidden(); }, "The hidden layers' sizes.")
      .def_prop_ro("device", [](const TrainedPolicy& p) { return to_string(p.device->context.backend()); },
                   "'cpu' or 'cuda': where predict reads and writes its arrays.")
      .def("__repr__", [](const TrainedPolicy& p) {
        return "mbmpo.Policy(task='" + p.config.env + "', hidden=" + nb::cast<std::string>(nb::repr(nb::cast(p.layout.hidden()))) +
               ", device='" + to_string(p.device->context.backend()) + "')";
      });
}

}  // namespace mbmpo::python
