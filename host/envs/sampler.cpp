#include "host/envs/sampler.hpp"

#include <algorithm>
#include <exception>

#include "host/core/error.hpp"
#include "host/core/nvtx.hpp"
#include "kernels/core/philox.cuh"

namespace mbmpo {

BatchPolicy uniform_random_policy(std::uint64_t seed, float action_limit) {
  constexpr std::uint64_t kActionKey = 0x616374696f6eull;  // "action"
  return [seed, action_limit](const PolicyBatch& batch) {
    for (int b = 0; b < batch.count; ++b) {
      for (int j = 0; j < batch.act_dim; ++j) {
        const auto index = static_cast<std::uint64_t>(batch.step[b]) * batch.act_dim + j;
        const float u = uniform_at(seed ^ kActionKey, batch.episode[b], index);
        batch.actions[b * batch.act_dim + j] = action_limit * (2.f * u - 1.f);
      }
    }
  };
}

Sampler::Sampler(std::shared_ptr<const MujocoModel> model) : model_(std::move(model)) {}

std::vector<Episode> Sampler::run(const SamplerOptions& options, const BatchPolicy& policy,
                                  const std::function<void(const Episode&)>& on_episode) {
  MBMPO_NVTX_RANGE("collect");
  MBMPO_CHECK_INPUT(options.episodes > 0, "number of episodes must be positive, got ", options.episodes);
  MBMPO_CHECK_INPUT(options.horizon > 0, "horizon must be positive, got ", options.horizon);
  MBMPO_CHECK_INPUT(options.threads > 0, "threads must be positive, got ", options.threads);
  const TaskSpec& task = model_->task();
  const int n = options.episodes, obs_dim = task.obs_dim, act_dim = task.act_dim;
  const int nq = model_->nq(), nv = model_->nv();
  while (static_cast<int>(environments_.size()) < n)
    environments_.push_back(std::make_unique<Environment>(model_));

  std::vector<Episode> episodes(n);
  std::vector<float> obs(static_cast<std::size_t>(n) * obs_dim);
  for (int e = 0; e < n; ++e) {
    Episode& episode = episodes[e];
    episode.index = options.first_episode + static_cast<std::uint64_t>(e);
    episode.obs_dim = obs_dim, episode.act_dim = act_dim, episode.nq = nq, episode.nv = nv;
    environments_[e]->reset(options.seed, episode.index, &obs[static_cast<std::size_t>(e) * obs_dim]);
  }

  std::vector<int> running(n);  // episodes still running, in index order
  for (int e = 0; e < n; ++e) running[e] = e;
  std::vector<float> batch_obs, actions, next(static_cast<std::size_t>(n) * obs_dim);
  std::vector<std::uint64_t> batch_episode;
  std::vector<int> batch_step;
  std::vector<StepResult> results(n);

  for (int t = 0; t < options.horizon && !running.empty(); ++t) {
    const int count = static_cast<int>(running.size());
    batch_obs.resize(static_cast<std::size_t>(count) * obs_dim);
    actions.assign(static_cast<std::size_t>(count) * act_dim, 0.f);
    batch_episode.resize(count);
    batch_step.assign(count, t);
    for (int b = 0; b < count; ++b) {
      std::copy_n(&obs[static_cast<std::size_t>(running[b]) * obs_dim], obs_dim, &batch_obs[static_cast<std::size_t>(b) * obs_dim]);
      batch_episode[b] = episodes[running[b]].index;
    }
    policy(PolicyBatch{count, obs_dim, act_dim, batch_obs.data(), batch_episode.data(),
                       batch_step.data(), actions.data()});

    // Physics in parallel; exceptions are carried out of the OpenMP region and rethrown.
    std::vector<std::exception_ptr> errors(count);
#pragma omp parallel for num_threads(options.threads) schedule(static)
    for (int b = 0; b < count; ++b) {
      const int e = running[b];
      Episode& episode = episodes[e];
      try {
        Environment& env = *environments_[e];
        episode.qpos.insert(episode.qpos.end(), env.qpos(), env.qpos() + nq);
        episode.qvel.insert(episode.qvel.end(), env.qvel(), env.qvel() + nv);
        results[e] = env.step(&actions[static_cast<std::size_t>(b) * act_dim], &next[static_cast<std::size_t>(e) * obs_dim]);
      } catch (...) {
        errors[b] = std::current_exception();
      }
    }
    for (const auto& error : errors)
      if (error) std::rethrow_exception(error);

    std::vector<int> still_running;
    for (int b = 0; b < count; ++b) {
      const int e = running[b];
      Episode& episode = episodes[e];
      const float* o = &obs[static_cast<std::size_t>(e) * obs_dim];
      float* o_next = &next[static_cast<std::size_t>(e) * obs_dim];
      episode.obs.insert(episode.obs.end(), o, o + obs_dim);
      // Recorded as applied: clipped to the action range, as the dynamics saw it.
      for (int j = 0; j < act_dim; ++j)
        episode.act.push_back(std::clamp(actions[static_cast<std::size_t>(b) * act_dim + j],
                                         -task.action_limit, task.action_limit));
      episode.next_obs.insert(episode.next_obs.end(), o_next, o_next + obs_dim);
      episode.reward.push_back(static_cast<float>(results[e].reward));
      episode.done.push_back(results[e].terminated ? 1 : 0);
      episode.total_return += results[e].reward;
      ++episode.length;
      std::copy_n(o_next, obs_dim, &obs[static_cast<std::size_t>(e) * obs_dim]);
      const bool finished = results[e].terminated || t + 1 == options.horizon;
      if (results[e].terminated) episode.terminated = true;
      if (finished) {
        if (on_episode) on_episode(episode);
      } else {
        still_running.push_back(e);
      }
    }
    running.swap(still_running);
  }
  return episodes;
}

}  // namespace mbmpo

namespace mbmpo {

std::vector<float> sample_start_states(const std::shared_ptr<const MujocoModel>& model, int count,
                                       std::uint64_t seed, std::uint64_t first_key) {
  MBMPO_CHECK_INPUT(count >= 0, "number of start states must not be negative, got ", count);
  Environment env(model);
  const int obs_dim = model->task().obs_dim;
  std::vector<float> states(static_cast<std::size_t>(count) * obs_dim);
  for (int i = 0; i < count; ++i)
    env.reset(seed, first_key + static_cast<std::uint64_t>(i), &states[static_cast<std::size_t>(i) * obs_dim]);
  return states;
}

}  // namespace mbmpo
