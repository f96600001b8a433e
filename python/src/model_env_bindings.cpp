// The calls behind mbmpo.ModelEnv (python/mbmpo/model_env.py): one learned-model step of a batch
// in place on the ensemble's device (host/models/model_step.hpp), and the tasks' reward and
// termination functions on NumPy arrays.
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <limits>
#include <mutex>

#include "host/core/error.hpp"
#include "host/envs/task.hpp"
#include "host/models/model_step.hpp"
#include "python/src/arguments.hpp"
#include "python/src/arrays.hpp"
#include "python/src/bindings.hpp"

namespace mbmpo::python {
namespace {

using namespace nb::literals;

// The task, checked against the ensemble's sizes.
const TaskSpec& task_of(const Arg<std::string>& task, int obs_dim, int act_dim, const char* what) {
  const TaskSpec& spec = task_spec(text(task, "task"));
  MBMPO_CHECK_INPUT(spec.obs_dim == obs_dim && spec.act_dim == act_dim, "task ", spec.name, " has obs/act sizes ",
                    spec.obs_dim, "/", spec.act_dim, " but the ", what, " has ", obs_dim, "/", act_dim);
  return spec;
}

void model_step_py(const Arg<Ensemble>& ensemble_arg, const Arg<std::string>& task, const Arg<InputArray>& obs_arg,
                   const Arg<InputArray>& act_arg, nb::handle act_env_arg, nb::handle next_obs_arg, nb::handle reward_arg,
                   nb::handle done_arg,
                   const Arg<std::vector<int>>& model_of_row_arg) {
  Ensemble& e = instance(ensemble_arg, "ensemble", "mbmpo.DynamicsEnsemble");
  DynamicsEnsemble& models = e.get();
  const TaskSpec& spec = task_of(task, models.obs_dim(), models.act_dim(), "ensemble");
  const Backend backend = e.device()->context.backend();
  const TensorView<float> obs = array_view(array(obs_arg, "obs"), backend, {-1, spec.obs_dim}, "obs");
  const std::int64_t n = obs.dim(0);
  const TensorView<float> act = array_view(array(act_arg, "actions"), backend, {n, spec.act_dim}, "actions");
  const TensorView<float> act_env =
      array_view(writable_array(act_env_arg, "act_env"), backend, {n, spec.act_dim}, "act_env");
  const TensorView<float> next = array_view(writable_array(next_obs_arg, "next_obs"), backend, {n, spec.obs_dim}, "next_obs");
  const TensorView<float> reward = array_view(writable_array(reward_arg, "reward"), backend, {n}, "reward");
  const TensorView<float> done = array_view(writable_array(done_arg, "done"), backend, {n}, "done");
  const std::vector<int> model_of_row =
      integers(model_of_row_arg, "model_of_row", std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
  MBMPO_CHECK_INPUT(std::int64_t(model_of_row.size()) == n, "model_of_row: expected ", n, " entries, got ",
                    model_of_row.size());
  if (n == 0) return;
  if (backend == Backend::cpu) {
    check_finite(obs, "obs");
    check_finite(act, "actions");
  }
  nb::gil_scoped_release release;
  std::lock_guard<std::mutex> lock(e.device()->mutex);
  Context& context = e.device()->context;
  model_step(context, spec.id, models, models.assign(model_of_row), obs, act, act_env, next, reward, done);
  context.synchronize();
}

// (reward [N] float32, terminated [N] bool) of N transitions of the task, on the CPU.
nb::tuple task_rewards_py(const Arg<std::string>& task, const Arg<InputArray>& obs_arg, const Arg<InputArray>& act_arg,
                          const Arg<InputArray>& next_obs_arg) {
  const TaskSpec& spec = task_spec(text(task, "task"));
  const TensorView<float> obs = array_view(array(obs_arg, "obs"), Backend::cpu, {-1, spec.obs_dim}, "obs");
  const std::int64_t n = obs.dim(0);
  const TensorView<float> act = array_view(array(act_arg, "act"), Backend::cpu, {n, spec.act_dim}, "act");
  const TensorView<float> next = array_view(array(next_obs_arg, "next_obs"), Backend::cpu, {n, spec.obs_dim}, "next_obs");
  check_finite(obs, "obs");
  check_finite(act, "act");
  check_finite(next, "next_obs");
  std::vector<float> reward(static_cast<std::size_t>(n)), done(static_cast<std::size_t>(n));
  task_rewards_cpu(spec.id, n, obs.data, act.data, next.data, reward.data(), done.data());
  bool* ended = new bool[std::max<std::int64_t>(n, 1)];
  nb::capsule owner(ended, [](void* p) noexcept { delete[] static_cast<bool*>(p); });
  for (std::int64_t r = 0; r < n; ++r) ended[r] = done[r] != 0.f;
  const std::size_t shape[1] = {std::size_t(n)};
  return nb::make_tuple(to_numpy(std::move(reward), {n}), nb::ndarray<nb::numpy, bool>(ended, 1, shape, owner));
}

}  // namespace

void bind_model_env(nb::module_& m) {
  m.def("model_step", &model_step_py,
        nb::sig("def model_step(ensemble: DynamicsEnsemble, task: str, obs: numpy.typing.NDArray[numpy.float32], "
                "actions: numpy.typing.NDArray[numpy.float32], act_env: numpy.typing.NDArray[numpy.float32], "
                "next_obs: numpy.typing.NDArray[numpy.float32], "
                "reward: numpy.typing.NDArray[numpy.float32], done: numpy.typing.NDArray[numpy.float32], "
                "model_of_row: collections.abc.Sequence[int]) -> None"),
        "ensemble"_a.none(), "task"_a.none(), "obs"_a.none(), "actions"_a.none(), "act_env"_a.none(), "next_obs"_a.none(), "reward"_a.none(), "done"_a.none(),
        "model_of_row"_a.none(),
        "One learned-model step of N rows, in place on the ensemble's device (mbmpo.ModelEnv calls it): act_env = "
        "the actions clipped to the task's limit, next_obs[r] = model[model_of_row[r]](obs[r], act_env[r]), the task's reward, "
        "and done[r] = 1.0 where the task's termination holds (else 0.0), as an imagined rollout's step.");
  m.def("task_rewards", &task_rewards_py,
        nb::sig("def task_rewards(task: str, obs: numpy.typing.NDArray[numpy.float32], act: "
                "numpy.typing.NDArray[numpy.float32], next_obs: numpy.typing.NDArray[numpy.float32]) -> "
                "tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.bool_]]"),
        "task"_a.none(), "obs"_a.none(), "act"_a.none(), "next_obs"_a.none(),
        "The task's reward and termination of N transitions (obs, next_obs [N, obs_dim], act [N, act_dim] float32 "
        "NumPy arrays): (reward [N], terminated [N] bool), the functions imagined rollouts and mbmpo.ModelEnv use. "
        "They read observations only (forward velocity from next_obs; no contact cost for ant), so they differ from "
        "the real environment's reward by design.");
}

}  // namespace mbmpo::python
