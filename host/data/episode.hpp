// One real-environment episode as the sampler records it.
#pragma once

#include <cstdint>
#include <vector>

namespace mbmpo {

struct Episode {
  std::uint64_t index = 0;  // the episode's key: its reset noise and policy noise derive from it
  int obs_dim = 0, act_dim = 0, nq = 0, nv = 0;
  int length = 0;
  double total_return = 0;
  bool terminated = false;  // ended by the task's termination rule, not the horizon
  // Per step t, row-major: [length][dim].
  std::vector<float> obs, act, next_obs, reward;
  std::vector<std::uint8_t> done;
  std::vector<double> qpos, qvel;  // the full MuJoCo state before the step (x included)
};

}  // namespace mbmpo
