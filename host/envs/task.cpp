#include "host/envs/task.hpp"

#include "host/core/error.hpp"
#include "host/envs/task_assets.hpp"

namespace mbmpo {

const std::vector<TaskSpec>& all_tasks() {
  // Gymnasium v5 defaults: frame skip, observation layout, reward weights, reset noise, camera
  // (v5's default_camera_config; the locomotion tasks' camera follows the torso so a video keeps
  // the body in view).
  static const std::vector<TaskSpec> tasks = {
      {TaskId::half_cheetah, "half_cheetah", 17, 6, 5, 1, false, 0.0, 0.1, 0.0, {0.1, 0.1, true},
       1.f, assets::kHalfCheetahXml, "HalfCheetah-v5", {1, 4.0, -20.0}},
      {TaskId::hopper, "hopper", 11, 3, 4, 1, true, 1.0, 1e-3, 0.0, {5e-3, 5e-3, false}, 1.f,
       assets::kHopperXml, "Hopper-v5", {1, 3.0, -20.0}},
      {TaskId::walker2d, "walker2d", 17, 6, 4, 1, true, 1.0, 1e-3, 0.0, {5e-3, 5e-3, false}, 1.f,
       assets::kWalker2dXml, "Walker2d-v5", {1, 4.0, -20.0}},
      {TaskId::ant, "ant", 27, 8, 5, 2, false, 1.0, 0.5, 5e-4, {0.1, 0.1, true}, 1.f,
       assets::kAntXml, "Ant-v5", {1, 4.0, -30.0}},
      {TaskId::swimmer, "swimmer", 8, 2, 4, 2, false, 0.0, 1e-4, 0.0, {0.1, 0.1, false}, 1.f,
       assets::kSwimmerXml, "Swimmer-v5", {1, 5.0, -60.0}},
      {TaskId::inverted_pendulum, "inverted_pendulum", 4, 1, 2, 0, false, 1.0, 0.0, 0.0,
       {0.01, 0.01, false}, 3.f, assets::kInvertedPendulumXml, "InvertedPendulum-v5", {-1, 2.04, -10.0}},
  };
  return tasks;
}

const TaskSpec* find_task(const std::string& name) {
  for (const TaskSpec& task : all_tasks()) {
    if (task.name == name || task.gymnasium_id == name) return &task;
  }
  return nullptr;
}

const TaskSpec& task_spec(const std::string& name) {
  if (const TaskSpec* task = find_task(name)) return *task;
  std::string known;
  for (const TaskSpec& task : all_tasks()) {
    known += (known.empty() ? "" : ", ") + task.name + " (" + task.gymnasium_id + ")";
  }
  throw InputError("unknown task '" + name + "': expected one of " + known);
}

const TaskSpec& task_spec(TaskId id) {
  for (const TaskSpec& task : all_tasks())
    if (task.id == id) return task;
  throw Error("task_spec: unregistered task id");
}

}  // namespace mbmpo
