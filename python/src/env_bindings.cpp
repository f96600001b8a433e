// mbmpo.Env: a real MuJoCo task with Gymnasium's reset/step (python/mbmpo/env.py wraps it).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/ndarray.h>

#include <cmath>
#include <memory>
#include <mutex>
#include <optional>

#include "host/core/error.hpp"
#include "host/envs/environment.hpp"
#include "host/envs/renderer.hpp"
#include "python/src/arrays.hpp"
#include "python/src/bindings.hpp"

namespace mbmpo::python {
namespace {

using namespace nb::literals;

// The episode counter and time limit that Gymnasium's TimeLimit wrapper would add.
// The task's spec with the v5 constructor keywords the environment supports (python/mbmpo/env.py
// checks which apply to which task).
TaskSpec with_overrides(const std::string& task, const nb::dict& overrides) {
  TaskSpec spec = task_spec(task);
  for (auto [key, value] : overrides) {
    const std::string name = nb::cast<std::string>(key);
    const double v = nb::cast<double>(value);
    if (name == "ctrl_cost_weight") spec.ctrl_cost_weight = v;
    else if (name == "healthy_reward") spec.healthy_reward = v;
    else if (name == "contact_cost_weight") spec.contact_cost_weight = v;
    else if (name == "reset_noise_scale") spec.reset_noise.qpos_scale = spec.reset_noise.qvel_scale = v;
    else throw InputError("unknown task keyword '" + name + "'");
  }
  return spec;
}

// A float64 NumPy array that owns `values` (MuJoCo's state is double).
using DoubleArray = nb::ndarray<nb::numpy, double>;
DoubleArray to_numpy_f64(std::vector<double> values) {
  auto* owned = new std::vector<double>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<double>*>(p); });
  const std::size_t size = owned->size();
  return DoubleArray(owned->data(), 1, &size, owner);
}

// A float64 host copy of a 1-D array of n values (any real dtype), finite, or ValueError naming it.
std::vector<double> finite_doubles(nb::handle array, std::size_t n, const char* name) {
  nb::ndarray<nb::numpy, const double, nb::ndim<1>, nb::c_contig> values;
  if (!nb::try_cast(array, values, true) || values.shape(0) != n) {
    throw InputError(std::string(name) + ": expected " + std::to_string(n) + " numbers (a 1-D array)");
  }
  std::vector<double> out(values.data(), values.data() + n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(out[i])) throw InputError(std::string(name) + "[" + std::to_string(i) + "] is not finite");
  }
  return out;
}

class Env {
 public:
  Env(const std::string& task, std::uint64_t seed, int max_episode_steps, const nb::dict& overrides)
      : env_(MujocoModel::load(with_overrides(task, overrides))), seed_(seed), max_episode_steps_(max_episode_steps) {
    if (max_episode_steps <= 0) throw InputError("max_episode_steps must be > 0, got " + std::to_string(max_episode_steps));
  }

  // A new episode: with a seed, the episode stream restarts from it (Gymnasium's reset(seed=...)).
  NumpyArray reset(std::optional<std::uint64_t> seed) {
    if (seed) {
      seed_ = *seed;
      episode_ = 0;
    }
    std::vector<float> obs(task().obs_dim);
    const std::uint64_t episode = episode_++;
    {
      nb::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex_);
      env_.reset(seed_, episode, obs.data());
    }
    steps_ = 0;
    started_ = true;
    return to_numpy(std::move(obs), {task().obs_dim});
  }

  // (observation, reward, terminated, truncated, info): info has x_position, x_velocity and the
  // reward's terms (reward_forward, reward_ctrl, reward_survive, reward_contact).
  nb::tuple step(const InputArray& action) {
    if (!started_) throw InputError("step before reset: call reset() first");
    const TensorView<float> a = array_view(action, Backend::cpu, {task().act_dim}, "action");
    std::vector<float> obs(task().obs_dim);
    StepResult result;
    {
      nb::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex_);  // one simulation: one step at a time
      result = env_.step(a.data, obs.data());
    }
    ++steps_;
    const bool truncated = !result.terminated && steps_ >= max_episode_steps_;
    if (result.terminated || truncated) started_ = false;
    nb::dict info;
    info["x_position"] = env_.qpos()[0];
    info["x_velocity"] = result.x_velocity;
    info["reward_forward"] = result.reward_forward;
    info["reward_ctrl"] = result.reward_ctrl;
    info["reward_survive"] = result.reward_survive;
    info["reward_contact"] = result.reward_contact;
    return nb::make_tuple(to_numpy(std::move(obs), {task().obs_dim}), result.reward, result.terminated, truncated,
                          info);
  }

  // (qpos, qvel) as float64 copies.
  nb::tuple get_state() {
    std::lock_guard<std::mutex> lock(mutex_);
    const int nq = env_.model().nq(), nv = env_.model().nv();
    return nb::make_tuple(to_numpy_f64(std::vector<double>(env_.qpos(), env_.qpos() + nq)),
                          to_numpy_f64(std::vector<double>(env_.qvel(), env_.qvel() + nv)));
  }

  // The simulation put in (qpos, qvel) as Gymnasium's MujocoEnv.set_state does; the episode goes
  // on from there (a reset() is needed first). Returns the observation.
  NumpyArray set_state(nb::handle qpos, nb::handle qvel) {
    if (!started_) throw InputError("set_state before reset: call reset() first");
    const std::vector<double> q = finite_doubles(qpos, std::size_t(env_.model().nq()), "qpos");
    const std::vector<double> v = finite_doubles(qvel, std::size_t(env_.model().nv()), "qvel");
    std::vector<float> obs(task().obs_dim);
    std::lock_guard<std::mutex> lock(mutex_);
    env_.set_state(q.data(), v.data(), obs.data());
    return to_numpy(std::move(obs), {task().obs_dim});
  }

  // Everything a copy needs to go on exactly as this env would: (seed, episode counter, steps in
  // the episode, whether an episode is running, the simulation's integration state).
  nb::tuple snapshot() {
    std::lock_guard<std::mutex> lock(mutex_);
    return nb::make_tuple(seed_, episode_, steps_, started_, to_numpy_f64(env_.integration_state()));
  }
  void restore(std::uint64_t seed, std::uint64_t episode, int steps, bool started, nb::handle state) {
    const std::vector<double> values = [&] {
      std::lock_guard<std::mutex> lock(mutex_);
      return env_.integration_state();
    }();
    const std::vector<double> restored = finite_doubles(state, values.size(), "state");
    std::lock_guard<std::mutex> lock(mutex_);
    env_.restore_integration_state(restored);
    seed_ = seed;
    episode_ = episode;
    steps_ = steps;
    started_ = started;
  }

  // The present state as [height, width, 3] uint8 RGB (the renderer is made at the first call and
  // kept while the size stays).
  nb::ndarray<nb::numpy, std::uint8_t> render(int width, int height) {
    std::vector<std::uint8_t> picture;
    {
      nb::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex_);
      if (!renderer_ || renderer_->width() != width || renderer_->height() != height) {
        renderer_.reset();
        renderer_ = std::make_unique<Renderer>(env_.model(), width, height);
      }
      picture = renderer_->render(env_);
    }
    auto* owned = new std::vector<std::uint8_t>(std::move(picture));
    nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<std::uint8_t>*>(p); });
    const std::size_t shape[3] = {std::size_t(height), std::size_t(width), 3};
    return nb::ndarray<nb::numpy, std::uint8_t>(owned->data(), 3, shape, owner);
  }

  const TaskSpec& task() const { return env_.task(); }
  int nq() const { return env_.model().nq(); }
  int nv() const { return env_.model().nv(); }
  double dt() const { return env_.model().dt(); }
  int max_episode_steps() const { return max_episode_steps_; }

 private:
  Environment env_;
  std::uint64_t seed_;
  std::uint64_t episode_ = 0;
  int max_episode_steps_;
  int steps_ = 0;
  bool started_ = false;
  std::unique_ptr<Renderer> renderer_;
  std::mutex mutex_;
};

}  // namespace

void bind_env(nb::module_& m) {
  nb::class_<Env>(m, "Env")
      .def(nb::init<const std::string&, std::uint64_t, int, const nb::dict&>(),
           nb::sig("def __init__(self, task: str, seed: int, max_episode_steps: int, overrides: dict[str, float]) "
                   "-> None"),
           "task"_a, "seed"_a, "max_episode_steps"_a, "overrides"_a)
      .def("reset", &Env::reset, "seed"_a = nb::none())
      .def("step", &Env::step,
           nb::sig("def step(self, action: numpy.typing.NDArray[numpy.float32]) -> tuple[numpy.typing.NDArray["
                   "numpy.float32], float, bool, bool, dict[str, float]]"),
           "action"_a)
      .def("get_state", &Env::get_state,
           nb::sig("def get_state(self) -> tuple[numpy.typing.NDArray[numpy.float64], "
                   "numpy.typing.NDArray[numpy.float64]]"))
      .def("set_state", &Env::set_state, "qpos"_a, "qvel"_a)
      .def("snapshot", &Env::snapshot,
           nb::sig("def snapshot(self) -> tuple[int, int, int, bool, numpy.typing.NDArray[numpy.float64]]"))
      .def("render", &Env::render, "width"_a, "height"_a, nb::rv_policy::automatic)
      .def("restore", &Env::restore, "seed"_a, "episode"_a, "steps"_a, "started"_a, "state"_a)
      .def_prop_ro("nq", [](const Env& e) { return e.nq(); })
      .def_prop_ro("nv", [](const Env& e) { return e.nv(); })
      .def_prop_ro("task", [](const Env& e) { return e.task().name; })
      .def_prop_ro("obs_dim", [](const Env& e) { return e.task().obs_dim; })
      .def_prop_ro("act_dim", [](const Env& e) { return e.task().act_dim; })
      .def_prop_ro("action_limit", [](const Env& e) { return e.task().action_limit; })
      .def_prop_ro("dt", &Env::dt)
      .def_prop_ro("max_episode_steps", &Env::max_episode_steps);
}

}  // namespace mbmpo::python
