#include <gtest/gtest.h>

#include "host/core/error.hpp"
#include "host/data/dataset.hpp"
#include "host/envs/sampler.hpp"

namespace mbmpo {
namespace {

std::vector<Episode> collect(const std::string& task_name, int episodes, int horizon, int threads,
                             std::uint64_t seed) {
  auto model = MujocoModel::load(task_spec(task_name));
  Sampler sampler(model);
  SamplerOptions options;
  options.episodes = episodes, options.horizon = horizon, options.seed = seed, options.threads = threads;
  return sampler.run(options, uniform_random_policy(seed, model->task().action_limit));
}

TEST(Sampler, SameSeedSameTransitionsWhateverTheThreads) {
  for (const char* task : {"hopper", "half_cheetah"}) {
    SCOPED_TRACE(task);
    const auto one = collect(task, 5, 60, 1, 11);
    const auto two = collect(task, 5, 60, 2, 11);
    ASSERT_EQ(one.size(), two.size());
    for (std::size_t e = 0; e < one.size(); ++e) {
      EXPECT_EQ(one[e].length, two[e].length);
      EXPECT_EQ(one[e].obs, two[e].obs);
      EXPECT_EQ(one[e].act, two[e].act);
      EXPECT_EQ(one[e].next_obs, two[e].next_obs);
      EXPECT_EQ(one[e].reward, two[e].reward);
      EXPECT_EQ(one[e].qpos, two[e].qpos);
    }
    const auto other = collect(task, 5, 60, 2, 12);
    EXPECT_NE(one[0].obs, other[0].obs);
  }
}

TEST(Sampler, EpisodesAreConsistentAndEndAtTerminationOrHorizon) {
  const auto episodes = collect("hopper", 6, 300, 2, 3);
  for (const Episode& e : episodes) {
    ASSERT_GT(e.length, 0);
    EXPECT_EQ(e.obs.size(), static_cast<std::size_t>(e.length * 11));
    EXPECT_EQ(e.qpos.size(), static_cast<std::size_t>(e.length * 6));
    EXPECT_EQ(e.qvel.size(), static_cast<std::size_t>(e.length * 6));
    // A random hopper falls long before 300 steps; its last transition is the terminal one.
    EXPECT_TRUE(e.terminated);
    EXPECT_EQ(e.done.back(), 1);
    for (int t = 0; t + 1 < e.length; ++t) EXPECT_EQ(e.done[t], 0);
    // Consecutive transitions chain: next_obs of step t is obs of step t+1.
    for (int t = 0; t + 1 < e.length; ++t)
      for (int j = 0; j < 11; ++j) ASSERT_EQ(e.next_obs[t * 11 + j], e.obs[(t + 1) * 11 + j]);
    // The recorded state is the state before the step: obs excludes x = qpos[0].
    for (int t = 0; t < e.length; ++t)
      for (int j = 1; j < 6; ++j) ASSERT_FLOAT_EQ(e.obs[t * 11 + j - 1], static_cast<float>(e.qpos[t * 6 + j]));
    double sum = 0;
    for (float r : e.reward) sum += r;
    EXPECT_NEAR(sum, e.total_return, 1e-3);
  }
  const auto cheetah = collect("half_cheetah", 2, 50, 1, 3);
  for (const Episode& e : cheetah) {
    EXPECT_EQ(e.length, 50);  // never terminates: runs to the horizon
    EXPECT_FALSE(e.terminated);
  }
}

TEST(Sampler, RejectsBadOptions) {
  auto model = MujocoModel::load(task_spec("inverted_pendulum"));
  Sampler sampler(model);
  SamplerOptions options;
  options.horizon = 0;
  EXPECT_THROW(sampler.run(options, uniform_random_policy(0, 3.f)), InputError);
  options.horizon = 10, options.episodes = 0;
  EXPECT_THROW(sampler.run(options, uniform_random_policy(0, 3.f)), InputError);
}

TEST(Sampler, StartStatesFollowTheResetDistribution) {
  auto model = MujocoModel::load(task_spec("half_cheetah"));
  const auto states = sample_start_states(model, 200, 5, 0);
  ASSERT_EQ(states.size(), 200u * 17);
  // qpos noise U(-0.1, 0.1) around qpos0 = 0 on the 8 observed positions.
  double sum = 0;
  for (int i = 0; i < 200; ++i)
    for (int j = 0; j < 8; ++j) {
      EXPECT_LE(std::fabs(states[i * 17 + j]), 0.1f + 1e-6f);
      sum += states[i * 17 + j];
    }
  EXPECT_NEAR(sum / (200 * 8), 0.0, 0.01);
  EXPECT_EQ(states, sample_start_states(model, 200, 5, 0));
  // Shared among 3 or 7 threads (uneven shares of the 200): the same bits.
  EXPECT_EQ(states, sample_start_states(model, 200, 5, 0, 3));
  EXPECT_EQ(states, sample_start_states(model, 200, 5, 0, 7));
  EXPECT_THROW(sample_start_states(model, 200, 5, 0, 0), InputError);
  // More threads than states, and no states at all.
  const auto three = sample_start_states(model, 3, 5, 0, 8);
  EXPECT_EQ(three, std::vector<float>(states.begin(), states.begin() + 3 * 17));
  EXPECT_TRUE(sample_start_states(model, 0, 5, 0, 4).empty());
  EXPECT_THROW(sample_start_states(model, -1, 5, 0), InputError);
}

}  // namespace
}  // namespace mbmpo

namespace mbmpo {
namespace {

TEST(Sampler, StreamsFinishedEpisodesIntoTheDataset) {
  auto model = MujocoModel::load(task_spec("walker2d"));
  Sampler sampler(model);
  Dataset data(17, 6, 1000);
  std::vector<std::uint64_t> order;
  SamplerOptions options;
  options.episodes = 4, options.horizon = 100, options.seed = 2, options.threads = 2;
  const auto episodes = sampler.run(options, uniform_random_policy(2, 1.f), [&](const Episode& e) {
    data.add(e);
    order.push_back(e.index);
  });
  std::size_t total = 0;
  for (const Episode& e : episodes) total += static_cast<std::size_t>(e.length);
  EXPECT_EQ(data.size(), total);
  EXPECT_EQ(order.size(), 4u);
  // Transitions of one episode are contiguous in the dataset and end with its last step.
  std::size_t i = 0;
  for (std::uint64_t index : order) {
    const Episode& e = episodes[index];
    for (int t = 0; t < e.length; ++t, ++i) {
      ASSERT_EQ(data.episode(i), index);
      ASSERT_EQ(data.step(i), t);
    }
  }
}

TEST(MujocoModel, ABrokenModelIsAnErrorNotAnAbort) {
  TaskSpec broken = task_spec("hopper");
  broken.xml = "<mujoco><worldbody><body><joint type=\"nonsense\"/></body></worldbody></mujoco>";
  try {
    MujocoModel::load(broken);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("could not load the model of task hopper"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace mbmpo
