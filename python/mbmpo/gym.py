"""mbmpo's tasks as ``gymnasium.Env`` (needs the gymnasium package)."""
import gymnasium
import numpy as np

from .env import Env


class MbmpoEnv(gymnasium.Env):
    """A ``gymnasium.Env`` over ``mbmpo.Env``: ``MbmpoEnv("HalfCheetah-v5")`` or ``MbmpoEnv("half_cheetah")``."""

    metadata = {"render_modes": []}

    def __init__(self, task, max_episode_steps=1000):
        self._env = Env(task, 0, max_episode_steps)
        limit = np.float32(self._env.action_limit)
        self.action_space = gymnasium.spaces.Box(-limit, limit, shape=(self._env.act_dim,), dtype=np.float32)
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(self._env.obs_dim,), dtype=np.float32)
        self._seeded = False

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is None and not self._seeded:
            seed = int(self.np_random.integers(0, 2**63))  # Gymnasium's unseeded first reset
        if seed is not None:
            self._seeded = True
        return self._env.reset(seed)

    def step(self, action):
        return self._env.step(action)
