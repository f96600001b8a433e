"""Real data for the tests: episodes of uniform random actions on a task."""
import numpy as np

import mbmpo


def random_episodes(task, episodes, steps, seed=0):
    """`episodes` episodes of at most `steps` steps, each as (obs, act, next_obs, reward, done) arrays;
    an episode's first observation is its obs[0]. Tasks that terminate (hopper) end some early."""
    env, rng = mbmpo.Env(task, seed=seed, max_episode_steps=steps), np.random.default_rng(seed)
    out = []
    for _ in range(episodes):
        obs, _ = env.reset()
        rows = []
        while True:
            act = rng.uniform(-env.action_limit, env.action_limit, env.act_dim).astype(np.float32)
            next_obs, reward, terminated, truncated, _ = env.step(act)
            rows.append((obs, act, next_obs, np.float32(reward), terminated))
            obs = next_obs
            if terminated or truncated:
                break
        out.append(tuple(np.array(column) for column in zip(*rows)))
    return out
