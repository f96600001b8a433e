// Reward r(s, a, s') and termination d(s') of each task, computed from observations alone, written
// once for host and device so imagined rollouts on either backend use the same functions.
//
// How they differ from the real environment's (host/envs/environment.cpp), by design, as in the
// MB-MPO authors' code:
// - forward velocity is qvel[0] read from s' (the velocity at the end of the step), where the real
//   reward uses the displacement over the step, (x' - x) / dt;
// - ant's contact cost needs contact forces, which are not in the observation: it is left out;
// - hopper's "all |state| < 100" check sees the observation's velocities, which are clipped to
//   +-10, so only the positions can trip it (the real check uses unclipped velocities).
// The action is clipped to the action range before its control cost, as the real environment does.
#pragma once

#include <cmath>

#include "kernels/core/host_device.cuh"

namespace mbmpo {

enum class TaskId : int { half_cheetah, hopper, walker2d, ant, swimmer, inverted_pendulum };

struct TaskConstants {
  int obs_dim;
  int act_dim;
  int velocity_index;     // where qvel[0] sits in the observation (-1: not used)
  float action_limit;     // actions are clipped to [-limit, limit]
  float ctrl_cost_weight;
  float healthy_reward;   // paid on every step whose s' is not terminal
};

MBMPO_HD_INLINE TaskConstants task_constants(TaskId task) {
  switch (task) {
    case TaskId::half_cheetah: return {17, 6, 8, 1.f, 0.1f, 0.f};
    case TaskId::hopper: return {11, 3, 5, 1.f, 1e-3f, 1.f};
    case TaskId::walker2d: return {17, 6, 8, 1.f, 1e-3f, 1.f};
    case TaskId::ant: return {27, 8, 13, 1.f, 0.5f, 1.f};
    case TaskId::swimmer: return {8, 2, 3, 1.f, 1e-4f, 0.f};
    case TaskId::inverted_pendulum: break;
  }
  return {4, 1, -1, 3.f, 0.f, 1.f};
}

// Termination from the next observation (obs excludes x; hopper/walker2d: obs[0] = z, obs[1] =
// torso angle; ant: obs[0] = z; inverted_pendulum: obs[1] = pole angle).
template <class T>
MBMPO_HD_INLINE bool task_done(TaskId task, const T* next_obs) {
  using std::isfinite;
  const TaskConstants c = task_constants(task);
  switch (task) {
    case TaskId::hopper: {
      bool healthy = next_obs[0] > T(0.7) && next_obs[1] > T(-0.2) && next_obs[1] < T(0.2);
      for (int i = 1; i < c.obs_dim; ++i) healthy = healthy && next_obs[i] > T(-100) && next_obs[i] < T(100);
      return !healthy;
    }
    case TaskId::walker2d:
      return !(next_obs[0] > T(0.8) && next_obs[0] < T(2) && next_obs[1] > T(-1) && next_obs[1] < T(1));
    case TaskId::ant: {
      bool healthy = next_obs[0] >= T(0.2) && next_obs[0] <= T(1);
      for (int i = 0; i < c.obs_dim; ++i) healthy = healthy && isfinite(next_obs[i]);
      return !healthy;
    }
    case TaskId::inverted_pendulum: {
      bool healthy = next_obs[1] >= T(-0.2) && next_obs[1] <= T(0.2);
      for (int i = 0; i < c.obs_dim; ++i) healthy = healthy && isfinite(next_obs[i]);
      return !healthy;
    }
    case TaskId::half_cheetah:
    case TaskId::swimmer: break;
  }
  return false;
}

template <class T>
MBMPO_HD_INLINE T task_reward(TaskId task, const T* /*obs*/, const T* action, const T* next_obs) {
  const TaskConstants c = task_constants(task);
  T ctrl = T(0);
  for (int i = 0; i < c.act_dim; ++i) {
    const T limit = T(c.action_limit);
    const T a = action[i] < -limit ? -limit : (action[i] > limit ? limit : action[i]);
    ctrl += a * a;
  }
  const T healthy = task_done(task, next_obs) ? T(0) : T(c.healthy_reward);
  const T forward = c.velocity_index >= 0 ? next_obs[c.velocity_index] : T(0);
  return forward + healthy - T(c.ctrl_cost_weight) * ctrl;
}

}  // namespace mbmpo
