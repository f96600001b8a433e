// The memory a training configuration needs at least, counted from its sizes before anything is
// allocated, so that `--models 2147483647` or `--imagined-horizon 2147483647` is refused with the
// figure and the machine's instead of running out of memory minutes into the run.
#pragma once

#include <string>
#include <vector>

#include "host/core/backend.hpp"
#include "host/train/train_config.hpp"

namespace mbmpo {

struct MemoryPart {
  std::string what;  // "imagined trajectories (meta-batch x rollouts-per-task x imagined-horizon ...)"
  double bytes = 0;  // a double: absurd products must not wrap
  Backend backend = Backend::cpu;
};

// The largest buffers of `seeds` seeds trained together: a lower bound (activations, workspaces
// and the many small buffers are left out), so that a refusal is certain to be right.
std::vector<MemoryPart> training_memory(const TrainConfig& config, int seeds, Backend backend);

// InputError naming the largest part and both figures when the parts on a backend exceed its memory.
void check_training_memory(const TrainConfig& config, int seeds, Backend backend);

}  // namespace mbmpo
