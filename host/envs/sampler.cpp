#include "host/envs/sampler.hpp"

#include <algorithm>
#include <exception>
#include <functional>

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

namespace {

// work(w) for w = 0 .. workers-1, each on its own OpenMP thread; then the first worker's
// exception, if any, is rethrown here (an exception must not leave an OpenMP region).
void on_workers(int workers, const std::function<void(int)>& work) {
  std::vector<std::exception_ptr> errors(workers);
#pragma omp parallel for num_threads(workers) schedule(static, 1)
  for (int w = 0; w < workers; ++w) {
    try {
      work(w);
    } catch (...) {
      errors[w] = std::current_exception();
    }
  }
  for (const auto& error : errors)
    if (error) std::rethrow_exception(error);
}

// One worker's share of the episodes (indices into `episodes`), run in lockstep: the policy on the
// batch of its running episodes, then their physics. Records each episode's finishing step.
void run_share(const std::vector<int>& share, const SamplerOptions& options, const BatchPolicy& policy,
               const TaskSpec& task, int nq, int nv, std::vector<std::unique_ptr<Environment>>& environments,
               std::vector<Episode>& episodes, std::vector<int>& finished_at) {
  const int obs_dim = task.obs_dim, act_dim = task.act_dim;
  std::vector<int> running = share;
  const std::size_t n = share.size();
  std::vector<float> obs(n * obs_dim), next(n * obs_dim);  // by position in the share
  for (std::size_t k = 0; k < n; ++k) {
    environments[share[k]]->reset(options.seed, episodes[share[k]].index, &obs[k * obs_dim]);
  }
  std::vector<int> position(n);  // running[b] is share[position[b]]
  for (std::size_t k = 0; k < n; ++k) position[k] = int(k);
  std::vector<float> batch_obs, actions;
  std::vector<std::uint64_t> batch_episode;
  std::vector<int> batch_step;
  for (int t = 0; t < options.horizon && !running.empty(); ++t) {
    const int count = static_cast<int>(running.size());
    batch_obs.resize(static_cast<std::size_t>(count) * obs_dim);
    actions.assign(static_cast<std::size_t>(count) * act_dim, 0.f);
    batch_episode.resize(count);
    batch_step.assign(count, t);
    for (int b = 0; b < count; ++b) {
      std::copy_n(&obs[std::size_t(position[b]) * obs_dim], obs_dim, &batch_obs[std::size_t(b) * obs_dim]);
      batch_episode[b] = episodes[running[b]].index;
    }
    policy(PolicyBatch{count, obs_dim, act_dim, batch_obs.data(), batch_episode.data(), batch_step.data(),
                       actions.data()});
    std::vector<int> still_running, still_position;
    for (int b = 0; b < count; ++b) {
      const int e = running[b];
      Episode& episode = episodes[e];
      Environment& env = *environments[e];
      float* o = &obs[std::size_t(position[b]) * obs_dim];
      float* o_next = &next[std::size_t(position[b]) * obs_dim];
      episode.qpos.insert(episode.qpos.end(), env.qpos(), env.qpos() + nq);
      episode.qvel.insert(episode.qvel.end(), env.qvel(), env.qvel() + nv);
      const StepResult result = env.step(&actions[std::size_t(b) * act_dim], o_next);
      episode.obs.insert(episode.obs.end(), o, o + obs_dim);
      // Recorded as applied: clipped to the action range, as the dynamics saw it.
      for (int j = 0; j < act_dim; ++j)
        episode.act.push_back(std::clamp(actions[std::size_t(b) * act_dim + j], -task.action_limit, task.action_limit));
      episode.next_obs.insert(episode.next_obs.end(), o_next, o_next + obs_dim);
      episode.reward.push_back(static_cast<float>(result.reward));
      episode.done.push_back(result.terminated ? 1 : 0);
      episode.total_return += result.reward;
      ++episode.length;
      std::copy_n(o_next, obs_dim, o);
      if (result.terminated) episode.terminated = true;
      if (result.terminated || t + 1 == options.horizon) {
        finished_at[e] = t;
      } else {
        still_running.push_back(e);
        still_position.push_back(position[b]);
      }
    }
    running.swap(still_running);
    position.swap(still_position);
  }
}

}  // namespace

std::vector<Episode> Sampler::run(const SamplerOptions& options, const BatchPolicy& policy,
                                  const std::function<void(const Episode&)>& on_episode) {
  MBMPO_NVTX_RANGE("collect");
  MBMPO_CHECK_INPUT(options.episodes > 0, "number of episodes must be positive, got ", options.episodes);
  MBMPO_CHECK_INPUT(options.horizon > 0, "horizon must be positive, got ", options.horizon);
  MBMPO_CHECK_INPUT(options.threads > 0, "threads must be positive, got ", options.threads);
  const TaskSpec& task = model_->task();
  const int n = options.episodes;
  const int nq = model_->nq(), nv = model_->nv();
  while (static_cast<int>(environments_.size()) < n)
    environments_.push_back(std::make_unique<Environment>(model_));

  std::vector<Episode> episodes(n);
  for (int e = 0; e < n; ++e) {
    Episode& episode = episodes[e];
    episode.index = options.first_episode + static_cast<std::uint64_t>(e);
    episode.obs_dim = task.obs_dim, episode.act_dim = task.act_dim, episode.nq = nq, episode.nv = nv;
  }
  // Each worker runs its own share of the episodes from start to end, with no barrier per step
  // (a per-step barrier costs a scheduler time slice whenever another process holds a core).
  // Results do not depend on the shares: every random number is keyed by (seed, episode, step).
  const int workers = std::min(options.threads, n);
  std::vector<std::vector<int>> shares(workers);
  for (int e = 0; e < n; ++e) shares[e % workers].push_back(e);
  std::vector<int> finished_at(n, -1);
  on_workers(workers, [&](int w) {
    run_share(shares[w], options, policy, task, nq, nv, environments_, episodes, finished_at);
  });
  if (on_episode) {  // by finishing step, then episode index
    std::vector<int> order(n);
    for (int e = 0; e < n; ++e) order[e] = e;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return finished_at[a] < finished_at[b]; });
    for (int e : order) on_episode(episodes[e]);
  }
  return episodes;
}

std::vector<float> sample_start_states(const std::shared_ptr<const MujocoModel>& model, int count,
                                       std::uint64_t seed, std::uint64_t first_key, int threads) {
  MBMPO_CHECK_INPUT(count >= 0, "number of start states must not be negative, got ", count);
  MBMPO_CHECK_INPUT(threads > 0, "threads must be positive, got ", threads);
  const int obs_dim = model->task().obs_dim;
  std::vector<float> states(static_cast<std::size_t>(count) * obs_dim);
  // A reset runs MuJoCo's forward pass: 1,000 of them per meta-step took 65 ms on one Xeon core and
  // about 220 ms on the H200 machine's host, half of a GPU iteration, so they are shared out.
  const int workers = std::max(1, std::min(threads, count));
  on_workers(workers, [&](int w) {
    Environment env(model);
    for (int i = w; i < count; i += workers)
      env.reset(seed, first_key + static_cast<std::uint64_t>(i), &states[static_cast<std::size_t>(i) * obs_dim]);
  });
  return states;
}

}  // namespace mbmpo
