"""A real MuJoCo task with Gymnasium's API (the dynamics of Gymnasium's v5 tasks)."""
import numpy as np

from . import _core


class Env:
    """``reset()`` gives ``(observation, info)``; ``step(action)`` gives Gymnasium's five-tuple
    ``(observation, reward, terminated, truncated, info)``. Observations are float32 NumPy arrays.

    ``task`` is a name from ``mbmpo.tasks()`` or its Gymnasium id (``"HalfCheetah-v5"``). Episodes
    are drawn from ``seed`` and an episode counter, so they are the same on every run;
    ``reset(seed=s)`` restarts the counter. After ``max_episode_steps`` steps an episode is
    truncated, as Gymnasium's time limit does.
    """

    def __init__(self, task, seed=0, max_episode_steps=1000):
        self._env = _core.Env(task, int(seed), int(max_episode_steps))

    @property
    def task(self):
        return self._env.task

    @property
    def obs_dim(self):
        return self._env.obs_dim

    @property
    def act_dim(self):
        return self._env.act_dim

    @property
    def action_limit(self):
        return self._env.action_limit

    @property
    def dt(self):
        return self._env.dt

    def reset(self, seed=None):
        return self._env.reset(None if seed is None else int(seed)), {}

    def step(self, action):
        action = np.ascontiguousarray(action, dtype=np.float32).reshape(-1)
        obs, reward, terminated, truncated, x_velocity = self._env.step(action)
        return obs, reward, terminated, truncated, {"x_velocity": x_velocity}
