// A saved policy on the real environment: `mbmpo eval` and mbmpo.eval() from Python.
#pragma once

#include <cstdint>
#include <string>

#include "host/train/real_episodes.hpp"

namespace mbmpo {

struct EvaluationOptions {
  int episodes = 10;
  bool adapt = false;  // after one inner step per model on imagined rollouts, as in training
  std::uint64_t seed = 1000;
  int threads = 2;
  std::string device = "auto";  // the backend of the adaptation
};

struct Evaluation {
  std::string env;
  ReturnStats stats;
};

// `path`: a run directory (its latest checkpoint), a checkpoint directory or a policy
// .safetensors. InputError names a bad path, option or file.
Evaluation evaluate_saved_policy(const std::string& path, const EvaluationOptions& options);

}  // namespace mbmpo
