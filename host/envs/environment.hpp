// A MuJoCo task as a real environment: one read-only model shared by all workers, one
// Environment (with its own mjData) per worker thread.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "host/envs/task.hpp"

struct mjModel_;
struct mjData_;

namespace mbmpo {

// The compiled model of a task. Thread-safe to share: nothing writes to it after loading.
class MujocoModel {
 public:
  // Parses the task's embedded XML; a MuJoCo error becomes an Error naming the task.
  static std::shared_ptr<const MujocoModel> load(const TaskSpec& task);
  ~MujocoModel();
  MujocoModel(const MujocoModel&) = delete;
  MujocoModel& operator=(const MujocoModel&) = delete;

  const mjModel_* get() const { return model_; }
  const TaskSpec& task() const { return task_; }
  int nq() const;
  int nv() const;
  double dt() const;  // control step: timestep x frame skip

 private:
  MujocoModel(const TaskSpec& task, mjModel_* model) : task_(task), model_(model) {}
  TaskSpec task_;  // a copy: the model must not depend on the caller keeping the spec alive
  mjModel_* model_;
};

struct StepResult {
  double reward;
  bool terminated;
  double x_velocity;  // (x' - x) / dt, the real forward velocity
  // The reward's terms, as Gymnasium v5 reports them in `info` (reward = their sum): forward
  // (x_velocity), -ctrl cost, the healthy reward (inverted_pendulum: its whole reward), -contact cost.
  double reward_forward = 0, reward_ctrl = 0, reward_survive = 0, reward_contact = 0;
};

class Environment {
 public:
  explicit Environment(std::shared_ptr<const MujocoModel> model);
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  const TaskSpec& task() const { return model_->task(); }
  const MujocoModel& model() const { return *model_; }

  // Starts an episode: qpos0/qvel0 plus the task's reset noise, drawn from the Philox stream of
  // (seed, episode) so an episode is the same whichever thread runs it. Writes the observation.
  void reset(std::uint64_t seed, std::uint64_t episode, float* observation);
  // Puts the simulation in the state (qpos: nq values, qvel: nv) as a fresh mjData would hold it
  // (mj_resetData, the state, mj_forward: no solver warm start or kinematics left from earlier
  // steps), so the next step depends only on the state and the action. Writes the observation.
  void set_state(const double* qpos, const double* qvel, float* observation);
  // Clips the action to the task's range and advances frame_skip physics steps. A NaN or infinite
  // action is an InputError; an unstable simulation is an Error.
  StepResult step(const float* action, float* observation);
  StepResult step(const std::vector<float>& action, std::vector<float>& observation);

  // Everything the next step depends on (time, qpos, qvel, act, ctrl, the solver's warm start),
  // as one array; restoring it into an Environment of the same task makes it step bit for bit as
  // this one would (a copy or a pickle of an env).
  std::vector<double> integration_state() const;
  void restore_integration_state(const std::vector<double>& state);

  void observe(float* observation) const;
  const double* qpos() const;
  const double* qvel() const;
  const mjData_* data() const { return data_; }  // what a Renderer draws

 private:
  std::shared_ptr<const MujocoModel> model_;
  mjData_* data_;
};

}  // namespace mbmpo
