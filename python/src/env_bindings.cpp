// mbmpo.Env: a real MuJoCo task with Gymnasium's reset/step (python/mbmpo/env.py wraps it).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <mutex>
#include <optional>

#include "host/core/error.hpp"
#include "host/envs/environment.hpp"
#include "python/src/arrays.hpp"
#include "python/src/bindings.hpp"

namespace mbmpo::python {
namespace {

using namespace nb::literals;

// The episode counter and time limit that Gymnasium's TimeLimit wrapper would add.
class Env {
 public:
  Env(const std::string& task, std::uint64_t seed, int max_episode_steps)
      : env_(MujocoModel::load(task_spec(task))), seed_(seed), max_episode_steps_(max_episode_steps) {
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

  // (observation, reward, terminated, truncated, x_velocity).
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
    return nb::make_tuple(to_numpy(std::move(obs), {task().obs_dim}), result.reward, result.terminated, truncated,
                          result.x_velocity);
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
  std::mutex mutex_;
};

}  // namespace

void bind_env(nb::module_& m) {
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
}

}  // namespace mbmpo::python
