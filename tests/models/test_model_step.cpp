// A learned-model environment's step (host/models/model_step.hpp) on both backends: the clipped
// actions, the ensemble's prediction of each row on its model, and the task's reward and end,
// against the same pieces called one by one on the CPU (predict, task_reward, task_done); hopper,
// whose ends are reached, and half_cheetah, on awkward row counts, outputs NaN-poisoned.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend_test.hpp"
#include "host/core/tensor.hpp"
#include "host/envs/task.hpp"
#include "host/models/model_step.hpp"

namespace mbmpo {
namespace {

using test::random_vector;
using test::test_seed;

class ModelStepBackends : public test::BackendTest {};

TEST_P(ModelStepBackends, EqualsThePiecesOfARolloutStep) {
  SCOPED_TRACE("MBMPO_TEST_SEED=" + std::to_string(test_seed()));
  const Backend b = backend();
  for (const char* name : {"hopper", "half_cheetah"}) {
    const TaskSpec& spec = task_spec(name);
    const int O = spec.obs_dim, A = spec.act_dim, K = 3;
    DynamicsEnsembleConfig config;
    config.models = K;
    config.hidden = {24, 19};
    DynamicsEnsemble models(context(), O, A, config, test_seed());
    Context cpu_context(Backend::cpu);
    DynamicsEnsemble reference(cpu_context, O, A, config, test_seed());
    for (const std::int64_t n : {std::int64_t(1), std::int64_t(37), std::int64_t(1031)}) {
      // States around a healthy hopper (z near 1.25), some of them past its limits; actions past +-1.
      std::vector<float> obs = random_vector<float>(std::size_t(n) * O, test_seed() + n, -0.3, 0.3);
      for (std::int64_t r = 0; r < n; ++r) obs[r * O] += 1.2f;
      const std::vector<float> act = random_vector<float>(std::size_t(n) * A, test_seed() + 2 * n, -1.6, 1.6);
      std::vector<int> model_of_row(static_cast<std::size_t>(n), 0);
      for (std::int64_t r = 0; r < n; ++r) model_of_row[r] = int((r * 7 + 3) % K);
      Tensor<float> act_env(b, {n, A}), next(b, {n, O}), reward(b, {n}), done(b, {n});
      for (Tensor<float>* t : {&act_env, &next, &reward, &done}) t->poison();
      const ModelAssignment assignment = models.assign(model_of_row);
      model_step(context(), spec.id, models, assignment, Tensor<float>::from_host(b, {n, O}, obs),
                 Tensor<float>::from_host(b, {n, A}, act), act_env, next, reward, done);

      // The pieces, on the CPU.
      std::vector<float> clipped(act.size());
      for (std::size_t i = 0; i < act.size(); ++i) clipped[i] = std::clamp(act[i], -spec.action_limit, spec.action_limit);
      Tensor<float> expected_next(Backend::cpu, {n, O});
      reference.predict(Tensor<float>::from_host(Backend::cpu, {n, O}, obs),
                        Tensor<float>::from_host(Backend::cpu, {n, A}, clipped), reference.assign(model_of_row),
                        expected_next);
      const std::vector<float> e_next = expected_next.to_host(), a_next = next.to_host();
      const std::vector<float> a_reward = reward.to_host(), a_done = done.to_host(), a_env = act_env.to_host();
      int ended = 0;
      for (std::int64_t r = 0; r < n; ++r) {
        for (int j = 0; j < O; ++j) {
          ASSERT_NEAR(a_next[r * O + j], e_next[r * O + j], 1e-4 * (1 + std::abs(e_next[r * O + j])))
              << name << " row " << r;
        }
        for (int j = 0; j < A; ++j) ASSERT_EQ(a_env[r * A + j], clipped[r * A + j]);
        // The reward and end of the backend's own next state (a CUDA prediction may differ in its
        // last bits, and an end at a threshold with it).
        const float* s_next = a_next.data() + r * O;
        const float expected_reward = task_reward(spec.id, obs.data() + r * O, clipped.data() + r * A, s_next);
        ASSERT_NEAR(a_reward[r], expected_reward, 1e-5 * (1 + std::abs(expected_reward))) << name << " row " << r;
        ASSERT_EQ(a_done[r], task_done(spec.id, s_next) ? 1.f : 0.f) << name << " row " << r;
        ended += a_done[r] == 1.f;
      }
      if (spec.id == TaskId::hopper && n > 100) EXPECT_GT(ended, 0) << "no hopper row ended: the ends went untested";
      if (spec.id == TaskId::hopper && n > 100) EXPECT_LT(ended, n) << "every hopper row ended";
    }
  }
}

MBMPO_INSTANTIATE_BACKEND_TESTS(ModelStepBackends);

}  // namespace
}  // namespace mbmpo
