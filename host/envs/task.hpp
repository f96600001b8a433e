// The tasks mbmpo knows: names, sizes and the Gymnasium v5 facts each environment follows.
#pragma once

#include <string>
#include <vector>

#include "kernels/envs/task_functions.cuh"

namespace mbmpo {

struct ResetNoise {
  double qpos_scale;     // qpos0 + U(-scale, scale)
  double qvel_scale;     // qvel + U(-scale, scale), or scale * N(0, 1) when qvel_gaussian
  bool qvel_gaussian;
};

// Gymnasium v5's default camera of the task, as rgb_array frames show it: following body
// `track_body` (-1: a free camera at the model's centre) from `distance`, `elevation` degrees.
struct CameraView {
  int track_body;
  double distance;
  double elevation;
};

struct TaskSpec {
  TaskId id;
  std::string name;
  int obs_dim;
  int act_dim;
  int frame_skip;
  int qpos_skipped;          // leading qpos entries left out of the observation (x, or x and y)
  bool clip_velocity_obs;    // observation's qvel clipped to +-10 (hopper, walker2d)
  double healthy_reward;
  double ctrl_cost_weight;
  double contact_cost_weight;  // ant only
  ResetNoise reset_noise;
  float action_limit;
  const char* xml;           // the MuJoCo model, compiled into the binary
  const char* gymnasium_id;  // the Gymnasium task it reproduces; task_spec() answers to it too
  CameraView camera;
};

const std::vector<TaskSpec>& all_tasks();
// By name or Gymnasium id ("half_cheetah" or "HalfCheetah-v5"); throws InputError naming the known
// tasks when `name` is neither.
const TaskSpec& task_spec(const std::string& name);
// The same lookup, nullptr when `name` is not a task (for defaults chosen before validation).
const TaskSpec* find_task(const std::string& name);
const TaskSpec& task_spec(TaskId id);

}  // namespace mbmpo
