"""A real MuJoCo task with Gymnasium's API (the dynamics of Gymnasium's v5 tasks)."""
import numbers

import numpy as np

from . import _core


def _count(value, name, minimum=0):
    """An integer argument as an int, or a TypeError/ValueError that names it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if value >= 2**64:
        raise ValueError(f"{name} must be < 2**64, got {value}")
    return int(value)


class Env:
    """``reset()`` gives ``(observation, info)``; ``step(action)`` gives Gymnasium's five-tuple
    ``(observation, reward, terminated, truncated, info)``. Observations are float32 NumPy arrays.

    ``task`` is a name from ``mbmpo.tasks()`` or its Gymnasium id (``"HalfCheetah-v5"``). Episodes
    are drawn from ``seed`` and an episode counter, so they are the same on every run;
    ``reset(seed=s)`` restarts the counter. After ``max_episode_steps`` steps an episode is
    truncated, as Gymnasium's time limit does.
    """

    def __init__(self, task, seed=0, max_episode_steps=1000):
        if not isinstance(task, str):
            raise TypeError(f"task must be a task name (see mbmpo.tasks()), got {task!r}")
        seed = _count(seed, "seed")
        max_episode_steps = _count(max_episode_steps, "max_episode_steps", minimum=1)
        if max_episode_steps >= 2**31:
            raise ValueError(f"max_episode_steps must be < 2**31, got {max_episode_steps}")
        self._env = _core.Env(task, seed, max_episode_steps)

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
        return self._env.reset(None if seed is None else _count(seed, "seed")), {}

    def step(self, action):
        try:
            action = np.ascontiguousarray(action, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError) as error:
            raise TypeError(f"action must be an array of {self.act_dim} numbers, got {action!r} ({error})") from None
        obs, reward, terminated, truncated, x_velocity = self._env.step(action)
        return obs, reward, terminated, truncated, {"x_velocity": x_velocity}
