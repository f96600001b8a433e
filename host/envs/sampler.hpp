// Runs many real-environment episodes in parallel worker threads. Each worker takes a fixed share
// of the episodes (every threads-th one) and runs it from start to end on its own, in lockstep
// within the share: the policy is called once per step on the batch of the share's running
// episodes, then their physics steps. Workers never wait for each other between steps, so a busy
// machine (another run on the same cores) slows them down, not to a halt. The policy is called
// from several workers at once and must be safe to call concurrently. Every random number is keyed
// by (seed, episode index, step), so results do not depend on the number of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "host/data/episode.hpp"
#include "host/envs/environment.hpp"

namespace mbmpo {

struct PolicyBatch {
  int count = 0;                        // episodes in the batch
  int obs_dim = 0, act_dim = 0;
  const float* obs = nullptr;           // [count][obs_dim]
  const std::uint64_t* episode = nullptr;  // [count] episode index (for keyed noise)
  const int* step = nullptr;            // [count] step within the episode
  float* actions = nullptr;             // [count][act_dim], written by the policy
};
using BatchPolicy = std::function<void(const PolicyBatch&)>;

// Uniform actions in the task's range, keyed by (seed, episode, step).
BatchPolicy uniform_random_policy(std::uint64_t seed, float action_limit);

struct SamplerOptions {
  int episodes = 1;
  int horizon = 200;
  std::uint64_t seed = 0;             // reset noise
  std::uint64_t first_episode = 0;    // episode indices are first_episode .. first_episode+episodes-1
  int threads = 1;
};

class Sampler {
 public:
  explicit Sampler(std::shared_ptr<const MujocoModel> model);

  // Runs the episodes; then each is passed to on_episode (in a deterministic order: by finishing
  // step, then episode index) and all are returned in episode order.
  std::vector<Episode> run(const SamplerOptions& options, const BatchPolicy& policy,
                           const std::function<void(const Episode&)>& on_episode = {});

 private:
  std::shared_ptr<const MujocoModel> model_;
  std::vector<std::unique_ptr<Environment>> environments_;  // reused across runs
};

// Start states for imagined rollouts: observations drawn from the real reset distribution, one
// per key first_key .. first_key+count-1. [count][obs_dim]. Each state depends only on its key, so
// the result is the same for any number of threads (each runs its own MuJoCo data).
std::vector<float> sample_start_states(const std::shared_ptr<const MujocoModel>& model, int count,
                                       std::uint64_t seed, std::uint64_t first_key, int threads = 1);

}  // namespace mbmpo
