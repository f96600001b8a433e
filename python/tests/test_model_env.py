"""mbmpo.ModelEnv: a batch stepped through learned models with the task's reward and termination
equals the library's imagined rollout step for step on the same models, start states and actions;
models fixed or drawn per row; a NumPy policy drives it; bad arguments are named. The CUDA case
skips with the reason without a usable GPU."""

import numpy as np
import pytest

import mbmpo
from random_episodes import random_episodes

TASKS, ROLLOUTS, HORIZON, K = 3, 7, 25, 3




def real_data(episodes=8, seed=0):
    """Random-action hopper episodes (they end: the terminations are exercised), and their starts."""
    data, starts = mbmpo.Dataset(11, 3, capacity=10000), []
    for episode in random_episodes("hopper", episodes, 100, seed):
        data.add(*episode)
        starts.append(episode[0][0])
    return data, np.stack(starts)


@pytest.fixture(scope="module")
def fitted():
    data, _ = real_data()
    ensemble = mbmpo.DynamicsEnsemble(11, 3, models=K, hidden=[32, 32], seed=2, device="cpu")
    ensemble.fit(data, max_epochs=15, batch_size=64)
    return ensemble, data


def rollout(ensemble, start, seed=0):
    policy = mbmpo.GaussianPolicy(11, 3, hidden=[16, 16])
    theta = policy.initial_parameters(seed=seed, init_std=0.8)
    params = np.tile(theta, (TASKS, 1))
    return mbmpo.imagined_rollout(ensemble, "Hopper-v5", policy, params, start, HORIZON, seed=seed)


def start_states(data, seed=0):
    rows = np.random.default_rng(seed).choice(len(data), TASKS * ROLLOUTS, replace=False)
    return np.ascontiguousarray(data.obs[rows].reshape(TASKS, ROLLOUTS, 11))


def test_model_env_equals_the_imagined_rollout_step_for_step(fitted):
    ensemble, data = fitted
    start = start_states(data)
    trajectories = rollout(ensemble, start)
    # The rollout puts task t on model t mod K: row (t, m) of the batch uses model t mod K.
    env = mbmpo.ModelEnv(ensemble, "hopper", TASKS * ROLLOUTS,
                         model_of_row=[t % K for t in range(TASKS) for _ in range(ROLLOUTS)])
    obs = env.reset(start.reshape(-1, 11))
    alive = np.ones(TASKS * ROLLOUTS, bool)
    ended_in_the_rollout = 0
    for h in range(HORIZON):
        valid = trajectories.valid[:, :, h].reshape(-1) != 0
        np.testing.assert_array_equal(valid, alive, err_msg=f"step {h}: which rows go on")
        np.testing.assert_array_equal(obs[alive], trajectories.obs[:, :, h].reshape(-1, 11)[alive], err_msg=f"obs {h}")
        actions = np.ascontiguousarray(trajectories.act[:, :, h].reshape(-1, 3))
        obs, reward, terminated = env.step(actions)
        np.testing.assert_array_equal(reward[alive], trajectories.reward[:, :, h].reshape(-1)[alive],
                                      err_msg=f"reward {h}")
        ended_in_the_rollout += int((alive & terminated).sum())
        alive &= ~terminated
    assert 0 < ended_in_the_rollout < TASKS * ROLLOUTS, "the terminations went untested"


def test_task_rewards_are_the_rollouts(fitted):
    ensemble, data = fitted
    start = start_states(data, seed=1)
    trajectories = rollout(ensemble, start, seed=1)
    obs = np.ascontiguousarray(trajectories.obs[:, :, 0].reshape(-1, 11))
    act = np.ascontiguousarray(trajectories.act[:, :, 0].reshape(-1, 3))
    env = mbmpo.ModelEnv(ensemble, "hopper", len(obs), model_of_row=[t % K for t in range(TASKS) for _ in range(ROLLOUTS)])
    env.reset(obs)
    nxt, reward, terminated = env.step(act)
    again, ended = mbmpo.task_rewards("hopper", obs, act, nxt)
    np.testing.assert_array_equal(again, reward)
    np.testing.assert_array_equal(ended, terminated)
    assert ended.dtype == np.bool_ and again.dtype == np.float32
    # Healthy states pay hopper's healthy reward of 1; z below 0.7 ends the episode.
    fallen = nxt.copy()
    fallen[:, 0] = 0.5
    assert mbmpo.task_rewards("hopper", obs, act, fallen)[1].all()


def test_a_numpy_policy_drives_drawn_models(fitted):
    ensemble, data = fitted
    batch = 64
    start = data.obs[:batch].copy()
    weights = np.random.default_rng(3).standard_normal((11, 3)).astype(np.float32) * 0.1

    def numpy_policy(obs):
        return np.tanh(obs @ weights).astype(np.float32)

    def run(seed):
        env = mbmpo.ModelEnv(ensemble, "Hopper-v5", batch, draw_models=True, seed=seed)
        obs, total = env.reset(start), np.zeros(batch)
        alive = np.ones(batch, bool)
        for _ in range(20):
            obs, reward, terminated = env.step(numpy_policy(obs))
            total += np.where(alive, reward, 0)
            alive &= ~terminated
        return obs, total

    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])  # other models drawn
    assert np.all(np.isfinite(a[1]))
    # Drawn models differ from the fixed assignment.
    env = mbmpo.ModelEnv(ensemble, "hopper", batch)
    env.reset(start)
    fixed = env.step(numpy_policy(start))[0]
    drawn_env = mbmpo.ModelEnv(ensemble, "hopper", batch, draw_models=True, seed=5)
    drawn_env.reset(start)
    assert not np.array_equal(drawn_env.step(numpy_policy(start))[0], fixed)


@pytest.mark.parametrize("make, message", [
    (lambda e: mbmpo.ModelEnv(e, "half_cheetah", 4), "half_cheetah has obs/act sizes 17/6"),
    (lambda e: mbmpo.ModelEnv(e, "pong", 4), "pong"),
    (lambda e: mbmpo.ModelEnv(e, "hopper", 0), "batch"),
    (lambda e: mbmpo.ModelEnv(e, "hopper", 2, model_of_row=[0, 3]), "model_of_row"),
    (lambda e: mbmpo.ModelEnv(e, "hopper", 2, model_of_row=[0]), "model_of_row"),
    (lambda e: mbmpo.ModelEnv(e, "hopper", 2, seed=-1), "seed"),
    (lambda e: mbmpo.ModelEnv(e, "hopper", 2).reset(np.zeros((3, 11), np.float32)), "start_obs"),
    (lambda e: mbmpo.ModelEnv(e, "hopper", 2).step(np.zeros((2, 3), np.float32)), "reset"),
    (lambda e: step_with(e, np.zeros((2, 4), np.float32)), "actions"),
    (lambda e: step_with(e, np.zeros((2, 3))), "actions"),
    (lambda e: step_with(e, np.full((2, 3), np.nan, np.float32)), "actions"),
    (lambda e: mbmpo.task_rewards("hopper", np.zeros((2, 11), np.float32), np.zeros((2, 3), np.float32),
                                  np.zeros((3, 11), np.float32)), "next_obs"),
])
def test_bad_arguments_are_named(fitted, make, message):
    with pytest.raises((ValueError, TypeError, RuntimeError), match=message):
        make(fitted[0])


def step_with(ensemble, actions):
    env = mbmpo.ModelEnv(ensemble, "hopper", 2)
    env.reset(np.zeros((2, 11), np.float32))
    return env.step(actions)


def test_model_env_on_cuda_matches_the_cpu(fitted, tmp_path, cuda):
    torch = pytest.importorskip("torch")
    ensemble, data = fitted
    ensemble.save(tmp_path / "models.safetensors")
    gpu = mbmpo.DynamicsEnsemble.load(tmp_path / "models.safetensors", device="cuda")
    start = start_states(data)
    cpu_env = mbmpo.ModelEnv(ensemble, "hopper", TASKS * ROLLOUTS)
    gpu_env = mbmpo.ModelEnv(gpu, "hopper", TASKS * ROLLOUTS)
    obs_cpu = cpu_env.reset(start.reshape(-1, 11))
    obs_gpu = gpu_env.reset(torch.from_numpy(start.reshape(-1, 11)).cuda())
    actions = np.random.default_rng(4).uniform(-1.5, 1.5, (HORIZON, TASKS * ROLLOUTS, 3)).astype(np.float32)
    for h in range(5):
        obs_cpu, reward_cpu, ended_cpu = cpu_env.step(actions[h])
        obs_gpu, reward_gpu, ended_gpu = gpu_env.step(torch.from_numpy(actions[h]).cuda())
        assert obs_gpu.is_cuda and reward_gpu.is_cuda
        np.testing.assert_allclose(obs_gpu.cpu().numpy(), obs_cpu, rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(reward_gpu.cpu().numpy(), reward_cpu, rtol=1e-3, atol=1e-3)
