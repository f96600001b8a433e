#include "host/envs/environment.hpp"

#include <mujoco/mujoco.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <mutex>

#include "host/core/error.hpp"
#include "kernels/core/philox.cuh"

namespace mbmpo {

namespace {

// MuJoCo reports fatal errors through mju_user_error, whose default handler exits the process;
// ours throws instead so a bad model never aborts. Warnings are counted per mjData and checked
// after each step.
void throw_mujoco_error(const char* message) { throw Error(std::string("MuJoCo error: ") + message); }
void ignore_mujoco_warning(const char*) {}

void install_mujoco_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    mju_user_error = throw_mujoco_error;
    mju_user_warning = ignore_mujoco_warning;
  });
}

// Distinct Philox key for reset noise, so it never shares numbers with other uses of a seed.
constexpr std::uint64_t kResetKey = 0x7265736574ull;  // "reset"

}  // namespace

std::shared_ptr<const MujocoModel> MujocoModel::load(const TaskSpec& task) {
  install_mujoco_handlers();
  mjVFS vfs;
  mj_defaultVFS(&vfs);
  const std::string file_name = task.name + ".xml";
  const int size = static_cast<int>(std::strlen(task.xml));
  if (mj_makeEmptyFileVFS(&vfs, file_name.c_str(), size) != 0) {
    mj_deleteVFS(&vfs);
    throw Error("MuJoCo: cannot create the in-memory file for task " + task.name);
  }
  std::memcpy(vfs.filedata[vfs.nfile - 1], task.xml, static_cast<std::size_t>(size));
  std::array<char, 1024> error{};
  mjModel* model = mj_loadXML(file_name.c_str(), &vfs, error.data(), static_cast<int>(error.size()));
  mj_deleteVFS(&vfs);
  if (!model) throw Error("MuJoCo could not load the model of task " + task.name + ": " + error.data());
  if (model->nu != task.act_dim) {
    mj_deleteModel(model);
    throw Error("model of task " + task.name + " has " + std::to_string(model->nu) +
                " actuators, expected " + std::to_string(task.act_dim));
  }
  return std::shared_ptr<const MujocoModel>(new MujocoModel(task, model));
}

MujocoModel::~MujocoModel() { mj_deleteModel(model_); }
int MujocoModel::nq() const { return model_->nq; }
int MujocoModel::nv() const { return model_->nv; }
double MujocoModel::dt() const { return model_->opt.timestep * task_.frame_skip; }

Environment::Environment(std::shared_ptr<const MujocoModel> model) : model_(std::move(model)) {
  data_ = mj_makeData(model_->get());
  if (!data_) throw Error("MuJoCo could not allocate data for task " + task().name);
  const int obs_dim = model_->nq() - task().qpos_skipped + model_->nv();
  MBMPO_CHECK(obs_dim == task().obs_dim, "task ", task().name, ": model gives ", obs_dim,
              " observations, expected ", task().obs_dim);
}

Environment::~Environment() { mj_deleteData(data_); }

const double* Environment::qpos() const { return data_->qpos; }
const double* Environment::qvel() const { return data_->qvel; }

void Environment::reset(std::uint64_t seed, std::uint64_t episode, float* observation) {
  const mjModel* m = model_->get();
  mj_resetData(m, data_);
  const ResetNoise& noise = task().reset_noise;
  const std::uint64_t key = seed ^ kResetKey;
  for (int i = 0; i < m->nq; ++i) {
    const double u = uniform_at(key, episode, static_cast<std::uint64_t>(i));
    data_->qpos[i] = m->qpos0[i] + noise.qpos_scale * (2 * u - 1);
  }
  for (int i = 0; i < m->nv; ++i) {
    const auto index = static_cast<std::uint64_t>(m->nq + i);
    data_->qvel[i] = noise.qvel_gaussian
                         ? noise.qvel_scale * normal_at(key, episode, index)
                         : noise.qvel_scale * (2 * uniform_at(key, episode, index) - 1);
  }
  mj_forward(m, data_);
  observe(observation);
}

void Environment::set_state(const double* qpos, const double* qvel, float* observation) {
  const mjModel* m = model_->get();
  mj_resetData(m, data_);
  std::copy(qpos, qpos + m->nq, data_->qpos);
  std::copy(qvel, qvel + m->nv, data_->qvel);
  mj_forward(m, data_);
  observe(observation);
}

namespace {
// The parts of mjData that integration_state holds, in order, with their lengths.
template <class Data, class Visit>
void integration_parts(const mjModel* m, Data* d, Visit visit) {
  visit(&d->time, 1);
  visit(d->qpos, m->nq);
  visit(d->qvel, m->nv);
  visit(d->act, m->na);
  visit(d->ctrl, m->nu);
  visit(d->qacc_warmstart, m->nv);
}
}  // namespace

std::vector<double> Environment::integration_state() const {
  std::vector<double> state;
  integration_parts(model_->get(), data_, [&](const double* values, int n) { state.insert(state.end(), values, values + n); });
  return state;
}

void Environment::restore_integration_state(const std::vector<double>& state) {
  const mjModel* m = model_->get();
  const std::size_t expected = std::size_t(1 + m->nq + 2 * m->nv + m->na + m->nu);
  MBMPO_CHECK_INPUT(state.size() == expected, "task ", task().name, ": a saved state has ", state.size(),
                    " values, expected ", expected);
  for (double value : state) MBMPO_CHECK_INPUT(std::isfinite(value), "task ", task().name, ": a saved state holds ", value);
  mj_resetData(m, data_);
  std::size_t at = 0;
  integration_parts(m, data_, [&](double* values, int n) {
    std::copy(state.begin() + std::ptrdiff_t(at), state.begin() + std::ptrdiff_t(at + std::size_t(n)), values);
    at += std::size_t(n);
  });
  mj_forward(m, data_);
  // mj_forward leaves its own acceleration as the next warm start; the saved one is what the
  // original's next step starts from.
  const std::size_t warmstart = state.size() - std::size_t(m->nv);
  std::copy(state.begin() + std::ptrdiff_t(warmstart), state.end(), data_->qacc_warmstart);
}

void Environment::observe(float* observation) const {
  const mjModel* m = model_->get();
  int o = 0;
  for (int i = task().qpos_skipped; i < m->nq; ++i) observation[o++] = static_cast<float>(data_->qpos[i]);
  for (int i = 0; i < m->nv; ++i) {
    const double v = data_->qvel[i];
    observation[o++] = static_cast<float>(task().clip_velocity_obs ? std::clamp(v, -10.0, 10.0) : v);
  }
}

namespace {
bool real_terminated(const TaskSpec& task, const mjData* d, int nq, int nv) {
  const double* q = d->qpos;
  switch (task.id) {
    case TaskId::hopper: {
      bool healthy = q[1] > 0.7 && q[2] > -0.2 && q[2] < 0.2;
      for (int i = 2; i < nq; ++i) healthy = healthy && std::fabs(q[i]) < 100;
      for (int i = 0; i < nv; ++i) healthy = healthy && std::fabs(d->qvel[i]) < 100;
      return !healthy;
    }
    case TaskId::walker2d: return !(q[1] > 0.8 && q[1] < 2.0 && q[2] > -1.0 && q[2] < 1.0);
    case TaskId::ant: {
      bool healthy = q[2] >= 0.2 && q[2] <= 1.0;
      for (int i = 0; i < nq; ++i) healthy = healthy && std::isfinite(q[i]);
      for (int i = 0; i < nv; ++i) healthy = healthy && std::isfinite(d->qvel[i]);
      return !healthy;
    }
    case TaskId::inverted_pendulum: {
      bool healthy = std::fabs(q[1]) <= 0.2;
      for (int i = 0; i < nq; ++i) healthy = healthy && std::isfinite(q[i]);
      for (int i = 0; i < nv; ++i) healthy = healthy && std::isfinite(d->qvel[i]);
      return !healthy;
    }
    case TaskId::half_cheetah:
    case TaskId::swimmer: break;
  }
  return false;
}
}  // namespace

StepResult Environment::step(const float* action, float* observation) {
  const mjModel* m = model_->get();
  const TaskSpec& spec = task();
  double ctrl_cost = 0;
  for (int i = 0; i < spec.act_dim; ++i) {
    if (!std::isfinite(action[i])) {
      throw InputError("task " + spec.name + ": action[" + std::to_string(i) + "] is " +
                       (std::isnan(action[i]) ? "NaN" : "infinite"));
    }
    const double a = std::clamp(static_cast<double>(action[i]), -double(spec.action_limit),
                                double(spec.action_limit));
    data_->ctrl[i] = a;
    ctrl_cost += a * a;
  }
  ctrl_cost *= spec.ctrl_cost_weight;

  const double x_before = data_->qpos[0];
  const int unstable_before = data_->warning[mjWARN_BADQACC].number;
  for (int frame = 0; frame < spec.frame_skip; ++frame) mj_step(m, data_);
  if (data_->warning[mjWARN_BADQACC].number != unstable_before) {
    throw Error("task " + spec.name + ": the simulation became unstable (MuJoCo bad qacc at time " +
                std::to_string(data_->time) + ")");
  }
  const double x_velocity = (data_->qpos[0] - x_before) / model_->dt();

  StepResult result{0.0, real_terminated(spec, data_, m->nq, m->nv), x_velocity};
  double contact_cost = 0;
  if (spec.contact_cost_weight > 0) {
    mj_rnePostConstraint(m, data_);  // fills cfrc_ext, which mj_step leaves stale
    for (int i = 0; i < 6 * m->nbody; ++i) {
      const double f = std::clamp(data_->cfrc_ext[i], -1.0, 1.0);
      contact_cost += f * f;
    }
    contact_cost *= spec.contact_cost_weight;
  }
  if (spec.id == TaskId::inverted_pendulum) {
    result.reward = result.reward_survive = result.terminated ? 0.0 : 1.0;
  } else {
    const double healthy = result.terminated ? 0.0 : spec.healthy_reward;
    result.reward = x_velocity + healthy - ctrl_cost - contact_cost;
    result.reward_forward = x_velocity;
    result.reward_ctrl = -ctrl_cost;
    result.reward_survive = healthy;
    result.reward_contact = -contact_cost;
  }
  observe(observation);
  return result;
}

StepResult Environment::step(const std::vector<float>& action, std::vector<float>& observation) {
  MBMPO_CHECK_INPUT(static_cast<int>(action.size()) == task().act_dim, "task ", task().name,
                    ": action has ", action.size(), " elements, expected ", task().act_dim);
  observation.resize(static_cast<std::size_t>(task().obs_dim));
  return step(action.data(), observation.data());
}

}  // namespace mbmpo
