// The policy file: policy.safetensors at a run directory's top level, and mbmpo.Policy's save and
// load. It describes itself: one tensor per weight and bias, under the names of the state_dict of
// torch.nn.Sequential(Linear, Tanh, ..., Linear), and the log standard deviations of the actions
// (the file lists them sorted by name, as safetensors files do):
//
//   "0.weight" [h1, obs_dim]  "0.bias" [h1]  "2.weight" [h2, h1]  ...  "2L.weight" [act_dim, hL]
//   "2L.bias" [act_dim]  "log_std" [act_dim]
//
// An action is mean(obs) + exp(max(log_std, kMinLogStd)) * N(0, 1), clipped to the task's action
// limit by the environment. The metadata: format "mbmpo.policy.v2", env, obs_dim, act_dim, hidden,
// activation ("tanh"), architecture and action (both in words), and config (the training
// configuration as JSON). A file of the first format (one flat "theta" in policy_layout.hpp's
// order, written before December 2026) still loads.
#pragma once

#include <string>
#include <vector>

#include "host/core/safetensors.hpp"
#include "host/train/train_config.hpp"

namespace mbmpo {

// One named tensor of the policy file: where it lies in theta (policy_layout.hpp's flat order).
struct PolicyTensor {
  std::string name;
  Shape shape;
  std::int64_t offset = 0, count = 0;
};
std::vector<PolicyTensor> policy_tensors(const PolicyLayout& layout);

// Written atomically (a temporary name, then renamed).
void save_policy_file(const std::string& path, const TrainConfig& config, const std::vector<float>& theta);

// The configuration in a policy file's metadata, checked as one given by hand is; `source` names
// the file in errors.
TrainConfig policy_file_config(const Safetensors& file, const std::string& source);

// theta of a policy file (either format) or of a checkpoint's policy.safetensors ("theta"), of the
// size config's policy has, every value finite, its env metadata config's task.
std::vector<float> policy_file_theta(const Safetensors& file, const std::string& source, const TrainConfig& config);

}  // namespace mbmpo
