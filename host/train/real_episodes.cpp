#include "host/train/real_episodes.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "host/core/error.hpp"
#include "host/envs/environment.hpp"
#include "host/envs/sampler.hpp"
#include "host/envs/task.hpp"
#include "host/policy/gaussian_policy.hpp"
#include "kernels/policy/gaussian_policy.cuh"

namespace mbmpo {

double ReturnStats::mean() const {
  if (returns.empty()) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0;
  for (double r : returns) sum += r;
  return sum / double(returns.size());
}

double ReturnStats::std() const {
  if (returns.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double m = mean();
  double sum = 0;
  for (double r : returns) sum += (r - m) * (r - m);
  return std::sqrt(sum / double(returns.size()));
}

namespace {

// The policy noise's key space (the reset noise derives from the seed itself).
constexpr std::uint64_t kPolicyNoiseStream = 0x9e3779b97f4a7c15ull;

// A Gaussian policy per task, for the sampler's batch of running episodes.
BatchPolicy gaussian_batch_policy(const PolicyLayout& layout, const std::vector<float>& params, int tasks,
                                  std::uint64_t first_episode, std::uint64_t seed, float action_limit) {
  const PolicyShape shape = policy_shape(layout);
  return [shape, params, tasks, first_episode, seed, action_limit](const PolicyBatch& batch) {
    for (int e = 0; e < batch.count; ++e) {
      const int task = int((batch.episode[e] - first_episode) % std::uint64_t(tasks));
      const float* theta = params.data() + std::int64_t(task) * shape.parameter_count;
      PolicyActivations<float> acts;
      policy_forward(shape, theta, batch.obs + std::int64_t(e) * batch.obs_dim, acts);
      const float* mean = policy_mean(shape, acts);
      for (int j = 0; j < batch.act_dim; ++j) {
        const float noise = normal_at(seed ^ kPolicyNoiseStream, batch.episode[e],
                                      std::uint64_t(batch.step[e]) * batch.act_dim + j);
        const float a = mean[j] + std::exp(effective_log_std(shape, theta, j)) * noise;
        batch.actions[std::int64_t(e) * batch.act_dim + j] = std::clamp(a, -action_limit, action_limit);
      }
    }
  };
}

}  // namespace

ReturnStats run_policy_episodes(const TrainConfig& config, const std::vector<float>& params, int tasks,
                                int episodes, std::uint64_t seed, std::uint64_t first_episode,
                                const std::function<void(const Episode&)>& on_episode) {
  ReturnStats stats;
  if (episodes <= 0) return stats;
  const TaskSpec& task = task_spec(config.env);
  const PolicyLayout layout = policy_layout(config);
  MBMPO_CHECK(std::int64_t(params.size()) == std::int64_t(tasks) * layout.parameter_count(),
              "policy episodes: ", params.size(), " parameters for ", tasks, " policies of ",
              layout.parameter_count());
  Sampler sampler(MujocoModel::load(task));
  SamplerOptions options;
  options.episodes = episodes;
  options.horizon = config.horizon;
  options.seed = seed;
  options.first_episode = first_episode;
  options.threads = config.threads;
  const auto results = sampler.run(options, gaussian_batch_policy(layout, params, tasks, first_episode, seed,
                                                                  task.action_limit), on_episode);
  for (const Episode& e : results) stats.returns.push_back(e.total_return);
  return stats;
}

}  // namespace mbmpo
