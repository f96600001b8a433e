// Episodes of Gaussian policies on the real (MuJoCo) environment: the data of Algorithm 1's step 1
// (each task's adapted policy), the meta-policy's evaluation each iteration, and `mbmpo eval`.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "host/train/train_config.hpp"

namespace mbmpo {

struct Episode;

// Real-environment returns of a set of episodes.
struct ReturnStats {
  std::vector<double> returns;
  double mean() const;
  double std() const;
};

// The first episode number of iteration 0's evaluation episodes: far from the training episodes'
// numbers, so their reset and policy noise never coincide.
constexpr std::uint64_t kEvalEpisodeBase = 1ull << 40;

// Real-environment episodes of one policy per task round-robin (params [tasks][P] on the host):
// actions sampled from the Gaussian policy with noise keyed by (seed, episode, step), evaluated on
// the host for the batch of running episodes (a handful per step: the CPU is the right place).
ReturnStats run_policy_episodes(const TrainConfig& config, const std::vector<float>& params, int tasks,
                                int episodes, std::uint64_t seed, std::uint64_t first_episode,
                                const std::function<void(const Episode&)>& on_episode = {});

}  // namespace mbmpo
