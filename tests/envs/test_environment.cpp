#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "host/core/error.hpp"
#include <mujoco/mujoco.h>

#include "host/envs/environment.hpp"
#include "kernels/envs/task_functions.cuh"

namespace mbmpo {
namespace {

class EnvironmentTest : public ::testing::TestWithParam<std::string> {
 protected:
  const TaskSpec& task() const { return task_spec(GetParam()); }
};

std::string task_param_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

TEST_P(EnvironmentTest, ObservationIsStateWithoutPosition) {
  auto model = MujocoModel::load(task());
  Environment env(model);
  std::vector<float> obs(static_cast<std::size_t>(task().obs_dim));
  env.reset(1, 0, obs.data());
  EXPECT_EQ(task().obs_dim, model->nq() - task().qpos_skipped + model->nv());
  // obs = qpos[skipped:] then qvel (clipped for hopper and walker2d).
  for (int i = task().qpos_skipped; i < model->nq(); ++i)
    EXPECT_FLOAT_EQ(obs[i - task().qpos_skipped], static_cast<float>(env.qpos()[i])) << i;
  const int offset = model->nq() - task().qpos_skipped;
  for (int i = 0; i < model->nv(); ++i) {
    const double v = task().clip_velocity_obs ? std::clamp(env.qvel()[i], -10.0, 10.0) : env.qvel()[i];
    EXPECT_FLOAT_EQ(obs[offset + i], static_cast<float>(v)) << i;
  }
}

TEST_P(EnvironmentTest, ResetNoiseIsSmallAndDeterministic) {
  auto model = MujocoModel::load(task());
  Environment a(model), b(model);
  std::vector<float> obs_a(task().obs_dim), obs_b(task().obs_dim), obs_c(task().obs_dim);
  a.reset(42, 7, obs_a.data());
  b.reset(42, 7, obs_b.data());
  EXPECT_EQ(obs_a, obs_b);
  b.reset(42, 8, obs_c.data());
  EXPECT_NE(obs_a, obs_c);
  const ResetNoise& noise = task().reset_noise;
  for (int i = 0; i < model->nq(); ++i) {
    EXPECT_LE(std::fabs(a.qpos()[i] - model->get()->qpos0[i]), noise.qpos_scale + 1e-12) << i;
  }
}

TEST_P(EnvironmentTest, DeviceRewardTracksRealRewardOnRandomTransitions) {
  auto model = MujocoModel::load(task());
  Environment env(model);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-task().action_limit, task().action_limit);
  std::vector<float> obs(task().obs_dim), next(task().obs_dim), action(task().act_dim);
  double sum_abs_diff = 0, sum_abs_velocity = 0;
  int steps = 0, episode = 0;
  env.reset(5, episode, obs.data());
  for (int t = 0; t < 400; ++t) {
    for (float& a : action) a = uniform(rng);
    const StepResult result = env.step(action.data(), next.data());
    const bool done = task_done(task().id, next.data());
    EXPECT_EQ(done, result.terminated) << "step " << t;
    const double model_reward = task_reward(task().id, obs.data(), action.data(), next.data());
    sum_abs_diff += std::fabs(model_reward - result.reward);
    sum_abs_velocity += std::fabs(result.x_velocity);
    ++steps;
    obs = next;
    if (result.terminated) env.reset(5, ++episode, obs.data());
  }
  // The model reward reads the end-of-step velocity instead of the mean over the step (and ant
  // leaves out contact cost): the difference must stay small next to the velocity itself.
  const double mean_diff = sum_abs_diff / steps, mean_velocity = sum_abs_velocity / steps;
  RecordProperty("mean_abs_reward_difference", std::to_string(mean_diff));
  EXPECT_LE(mean_diff, 0.35 * mean_velocity + 0.02)
      << "mean |r_model - r_real| " << mean_diff << ", mean |v| " << mean_velocity;
}

TEST_P(EnvironmentTest, BadActionsGetClearErrors) {
  auto model = MujocoModel::load(task());
  Environment env(model);
  std::vector<float> obs(task().obs_dim), action(task().act_dim, 0.f);
  env.reset(1, 0, obs.data());
  action.back() = std::nanf("");
  try {
    env.step(action, obs);
    FAIL() << "no exception";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("is NaN"), std::string::npos) << e.what();
  }
  action.back() = INFINITY;
  EXPECT_THROW(env.step(action, obs), InputError);
  std::vector<float> wrong(task().act_dim + 1, 0.f);
  EXPECT_THROW(env.step(wrong, obs), InputError);
}

TEST_P(EnvironmentTest, ActionsAreClippedToTheRange) {
  auto model = MujocoModel::load(task());
  Environment a(model), b(model);
  std::vector<float> obs_a(task().obs_dim), obs_b(task().obs_dim);
  a.reset(9, 0, obs_a.data());
  b.reset(9, 0, obs_b.data());
  const StepResult big = a.step(std::vector<float>(task().act_dim, 50.f), obs_a);
  const StepResult limit = b.step(std::vector<float>(task().act_dim, task().action_limit), obs_b);
  EXPECT_EQ(obs_a, obs_b);
  EXPECT_DOUBLE_EQ(big.reward, limit.reward);
}

INSTANTIATE_TEST_SUITE_P(Tasks, EnvironmentTest,
                         ::testing::Values("half_cheetah", "hopper", "walker2d", "ant", "swimmer",
                                           "inverted_pendulum"),
                         task_param_name);

TEST(Tasks, UnknownTaskNamesTheKnownOnes) {
  try {
    task_spec("cheetah");
    FAIL() << "no exception";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown task 'cheetah'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("half_cheetah"), std::string::npos);
  }
}

TEST(Tasks, DtMatchesGymnasium) {
  const std::pair<const char*, double> expected[] = {{"half_cheetah", 0.05}, {"hopper", 0.008},
                                                     {"walker2d", 0.008},    {"ant", 0.05},
                                                     {"swimmer", 0.04},      {"inverted_pendulum", 0.04}};
  for (const auto& [name, dt] : expected) EXPECT_NEAR(MujocoModel::load(task_spec(name))->dt(), dt, 1e-12) << name;
}

// Termination rules, written out on hand-made observations.
TEST(TaskFunctions, HopperTermination) {
  float obs[11] = {1.25f, 0.f};
  EXPECT_FALSE(task_done(TaskId::hopper, obs));
  obs[0] = 0.69f;
  EXPECT_TRUE(task_done(TaskId::hopper, obs));  // fell: z <= 0.7
  obs[0] = 1.25f, obs[1] = 0.21f;
  EXPECT_TRUE(task_done(TaskId::hopper, obs));  // tilted: |angle| >= 0.2
  obs[1] = 0.f, obs[3] = 150.f;
  EXPECT_TRUE(task_done(TaskId::hopper, obs));  // a state beyond 100
}

TEST(TaskFunctions, Walker2dTermination) {
  float obs[17] = {1.25f, 0.f};
  EXPECT_FALSE(task_done(TaskId::walker2d, obs));
  obs[0] = 0.79f;
  EXPECT_TRUE(task_done(TaskId::walker2d, obs));
  obs[0] = 2.01f;
  EXPECT_TRUE(task_done(TaskId::walker2d, obs));
  obs[0] = 1.2f, obs[1] = -1.01f;
  EXPECT_TRUE(task_done(TaskId::walker2d, obs));
}

TEST(TaskFunctions, AntTermination) {
  float obs[27] = {0.55f};
  EXPECT_FALSE(task_done(TaskId::ant, obs));
  obs[0] = 0.19f;
  EXPECT_TRUE(task_done(TaskId::ant, obs));
  obs[0] = 1.01f;
  EXPECT_TRUE(task_done(TaskId::ant, obs));
  obs[0] = 0.5f, obs[20] = std::nanf("");
  EXPECT_TRUE(task_done(TaskId::ant, obs));
}

TEST(TaskFunctions, RewardReadsVelocityAndClipsActions) {
  float obs[17] = {}, next[17] = {};
  next[8] = 2.f;  // half_cheetah's qvel[0]
  const float action[6] = {2.f, 0.f, 0.f, 0.f, 0.f, 0.f};  // clipped to 1
  EXPECT_FLOAT_EQ(task_reward(TaskId::half_cheetah, obs, action, next), 2.f - 0.1f);
  float hop[11] = {1.25f}, hop_next[11] = {1.25f};
  hop_next[5] = 1.f;
  const float hop_action[3] = {0.f, 0.f, 0.f};
  EXPECT_FLOAT_EQ(task_reward(TaskId::hopper, hop, hop_action, hop_next), 2.f);  // 1 + healthy 1
  hop_next[0] = 0.5f;
  EXPECT_FLOAT_EQ(task_reward(TaskId::hopper, hop, hop_action, hop_next), 1.f);  // no healthy bonus
}

}  // namespace
}  // namespace mbmpo
