"""The README's worked example: real data, the ensemble, one meta-step (python/tests runs it)."""
import mbmpo, numpy as np

# Real data: random actions on Hopper (Gymnasium v5 dynamics).
env, rng = mbmpo.Env("Hopper-v5", seed=0, max_episode_steps=200), np.random.default_rng(0)
data = mbmpo.Dataset(env.obs_dim, env.act_dim)
starts = []
for episode in range(20):
    obs, _ = env.reset()
    starts.append(obs)
    rows = []
    while True:
        act = rng.uniform(-1, 1, env.act_dim).astype(np.float32)
        next_obs, reward, terminated, truncated, _ = env.step(act)
        rows.append((obs, act, next_obs, np.float32(reward), terminated))
        obs = next_obs
        if terminated or truncated:
            break
    data.add(*(np.array(column) for column in zip(*rows)))

# The ensemble: fit, then predict (in place into `out` when given).
ensemble = mbmpo.DynamicsEnsemble(env.obs_dim, env.act_dim, models=5, hidden=[128, 128], device="cpu")
print(ensemble.fit(data, max_epochs=20)["validation_loss"])

# One meta-step: rollouts of 5 tasks (task t on model t), the inner step, the TRPO meta-update.
policy = mbmpo.GaussianPolicy(env.obs_dim, env.act_dim, hidden=[32, 32])
theta = policy.initial_parameters(seed=0)
params = np.tile(theta, (5, 1))
start_obs = np.ascontiguousarray(np.stack(starts)[:20].reshape(5, 4, env.obs_dim))
pre = mbmpo.imagined_rollout(ensemble, "Hopper-v5", policy, params, start_obs, horizon=50)
pre_adv = mbmpo.compute_advantages(pre)
adapted = mbmpo.inner_step(policy, theta, pre, pre_adv, inner_lr=1e-3)
post = mbmpo.imagined_rollout(ensemble, "Hopper-v5", policy, adapted, start_obs, horizon=50, draw=1)
step = mbmpo.meta_update(policy, theta, adapted, pre, pre_adv, post, mbmpo.compute_advantages(post),
                         inner_lr=1e-3)         # theta is updated in place
print(step["accepted"], step["kl"])
