#include "host/train/memory_estimate.hpp"

#include <algorithm>
#include <numeric>

#include "host/core/error.hpp"
#include "host/core/memory_budget.hpp"
#include "host/envs/task.hpp"

namespace mbmpo {

std::vector<MemoryPart> training_memory(const TrainConfig& c, int seeds, Backend backend) {
  const TaskSpec& task = task_spec(c.env);
  const double obs = task.obs_dim, act = task.act_dim, f = sizeof(float), b = seeds;
  // Parameters of the ensemble: per layer K (out in + 2 out) (ensemble_mlp_layout.hpp).
  double parameters = 0, in = obs + act, widths = 0;
  for (int out : c.model_hidden) {
    parameters += c.models * (double(out) * in + 2.0 * out);
    widths += out;
    in = out;
  }
  parameters += c.models * (obs * in + 2.0 * obs);
  const double rows = double(c.meta_batch) * c.rollouts_per_task;
  return {
      {"the dataset (dataset-capacity x (2 obs + act + 1) floats)", b * c.dataset_capacity * (2 * obs + act + 1) * f,
       Backend::cpu},
      {"the dynamics models' weights, gradients and Adam moments (models x hidden sizes)", b * 4 * parameters * f,
       backend},
      {"the model fit's activations (models x model-batch x hidden sizes)",
       b * 2 * double(c.models) * c.model_batch * widths * f, backend},
      // Pre- and post-adaptation trajectories: obs, act, reward, valid, log-probability per step.
      {"the imagined trajectories (meta-batch x rollouts-per-task x imagined-horizon x (obs + act + 3) floats, "
       "twice)",
       b * 2 * rows * c.imagined_horizon * (obs + act + 3) * f, backend},
      {"the imagined rollouts' model activations (meta-batch x rollouts-per-task x hidden sizes)",
       b * rows * widths * f, backend},
  };
}

void check_training_memory(const TrainConfig& config, int seeds, Backend backend) {
  for (Backend on : {Backend::cpu, Backend::cuda}) {
    double total = 0;
    const MemoryPart* largest = nullptr;
    const std::vector<MemoryPart> parts = training_memory(config, seeds, backend);
    for (const MemoryPart& part : parts) {
      if (part.backend != on) continue;
      total += part.bytes;
      if (!largest || part.bytes > largest->bytes) largest = &part;
    }
    if (!largest) continue;
    check_memory(on, total, "this configuration",
                 "its largest part is " + largest->what + ": " + memory_text(largest->bytes));
  }
}

}  // namespace mbmpo
