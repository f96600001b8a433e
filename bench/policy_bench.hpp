#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_timer.hpp"

namespace mbmpo::bench {
// "rollout": imagined steps per second (T tasks x M rollouts x H steps through K models and the
// per-task policies); "inner_step": baseline + GAE + the inner step over one rollout's samples.
std::vector<nlohmann::json> run_rollout_suite(Context& context, const std::string& scale,
                                              const Ceiling& ceiling);
std::vector<nlohmann::json> run_inner_step_suite(Context& context, const std::string& scale,
                                                 const Ceiling& ceiling);
// "meta_update": one outer TRPO step (meta-gradient, 10 CG iterations, line search) at the
// paper's meta-batch, second order and first order, with its phases.
std::vector<nlohmann::json> run_meta_update_suite(Context& context, const std::string& scale,
                                                  const Ceiling& ceiling);
// "iteration": one whole training iteration (real data, fit, meta-steps, checkpoint) and its
// phases, timed by the trainer itself.
std::vector<nlohmann::json> run_iteration_suite(Context& context, const std::string& scale);
}  // namespace mbmpo::bench
