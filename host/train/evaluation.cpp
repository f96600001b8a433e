#include "host/train/evaluation.hpp"

#include <vector>

#include "host/core/backend.hpp"
#include "host/core/context.hpp"
#include "host/core/error.hpp"
#include "host/envs/environment.hpp"
#include "host/envs/sampler.hpp"
#include "host/envs/task.hpp"
#include "host/models/dynamics_ensemble.hpp"
#include "host/policy/advantages.hpp"
#include "host/policy/imagined_rollout.hpp"
#include "host/policy/inner_step.hpp"
#include "host/policy/policy_layout.hpp"
#include "host/train/run_directory.hpp"

namespace mbmpo {

Evaluation evaluate_saved_policy(const std::string& path, const EvaluationOptions& o) {
  MBMPO_CHECK_INPUT(o.episodes > 0 && o.episodes <= 1000000, "episodes must be in [1, 1000000], got ", o.episodes);
  MBMPO_CHECK_INPUT(o.threads > 0 && o.threads <= 1024, "threads must be in [1, 1024], got ", o.threads);
  parse_backend_choice(o.device);  // refused also when --adapt, which uses it, is not given
  SavedPolicy saved = load_saved_policy(path);
  TrainConfig config = saved.config;
  config.threads = o.threads;
  const TaskSpec& task = task_spec(config.env);
  const PolicyLayout layout = policy_layout(config);
  std::vector<float> params = saved.theta;
  int policies = 1;
  if (o.adapt) {
    MBMPO_CHECK_INPUT(saved.has_models, "--adapt needs the dynamics models: give a run directory or a checkpoint "
                      "directory, not a policy file");
    // One inner step per model on imagined rollouts from real start states, as in training.
    Context context(resolve_backend(parse_backend_choice(o.device)));
    DynamicsEnsemble models(context, task.obs_dim, task.act_dim, model_config(config), config.seed);
    models.load(saved.models_path);
    policies = config.models;
    const RolloutDims d{policies, config.rollouts_per_task, config.imagined_horizon, task.obs_dim, task.act_dim};
    const std::int64_t P = layout.parameter_count();
    std::vector<float> tiled;
    for (int t = 0; t < policies; ++t) tiled.insert(tiled.end(), params.begin(), params.end());
    const auto theta = Tensor<float>::from_host(context.backend(), {P}, params, &context);
    const auto per_task = Tensor<float>::from_host(context.backend(), {d.tasks, P}, tiled, &context);
    const auto start = Tensor<float>::from_host(context.backend(), {d.tasks, d.rollouts, d.obs_dim},
                                                sample_start_states(MujocoModel::load(task), int(d.rows()), o.seed, 0), &context);
    Trajectories samples(context.backend(), d);
    RolloutOptions rollout;
    rollout.seed = o.seed;
    imagined_rollout(context, task.id, models, layout, per_task, start, rollout, samples);
    Advantages advantages(context.backend(), d);
    compute_advantages(context, samples, advantage_options(config), advantages);
    Tensor<float> adapted(context.backend(), {d.tasks, P});
    inner_step(context, layout, theta, samples, advantages, config.inner_lr, adapted);
    params = adapted.to_host(&context);
  }
  return {config.env, run_policy_episodes(config, params, policies, o.episodes, o.seed, 0)};
}

}  // namespace mbmpo
