"""mbmpo's tasks as ``gymnasium.Env`` (needs the gymnasium package), registered as Gymnasium ids.

Importing mbmpo registers ``mbmpo/HalfCheetah-v5``, ``mbmpo/Hopper-v5``, ``mbmpo/Walker2d-v5``,
``mbmpo/Ant-v5``, ``mbmpo/Swimmer-v5`` and ``mbmpo/InvertedPendulum-v5`` (1000 steps an episode,
as v5's). Without importing it first, name the module in the id, as Gymnasium allows:
``gymnasium.make("mbmpo:mbmpo/Hopper-v5")`` (Gymnasium 1.x has no plugin entry points).
"""
from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import numpy.typing as npt

from . import _core
from .env import RENDER_MODES, Env

NAMESPACE = "mbmpo"


Array = npt.NDArray[np.float32]


class MbmpoEnv(gymnasium.Env[Array, Array]):
    """A ``gymnasium.Env`` over ``mbmpo.Env``: ``MbmpoEnv("HalfCheetah-v5")`` or ``MbmpoEnv("half_cheetah")``,
    or ``gymnasium.make("mbmpo/HalfCheetah-v5")``. Keywords of Gymnasium v5's task go to ``mbmpo.Env``
    (which says which it supports). ``get_state``/``set_state``/``state_vector`` are MujocoEnv's;
    the env can be pickled and deep-copied (a copy steps exactly as the original would).
    ``render_mode="rgb_array"`` renders offscreen, without a display (``width``, ``height``: 480 as
    v5's); "human" is refused, saying why."""

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": None}

    def __init__(self, task: str, max_episode_steps: int = 1000, render_mode: str | None = None, width: int = 480,
                 height: int = 480, **task_keywords: Any) -> None:
        self._env = Env(task, 0, max_episode_steps, render_mode=render_mode, width=width, height=height,
                        **task_keywords)
        self.render_mode = render_mode
        self.metadata = {**type(self).metadata, "render_fps": int(round(1.0 / self._env.dt))}
        limit = np.float32(self._env.action_limit)
        self.action_space = gymnasium.spaces.Box(-limit, limit, shape=(self._env.act_dim,), dtype=np.float32)
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(self._env.obs_dim,), dtype=np.float32)
        self._seeded = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Array, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None and not self._seeded:
            seed = int(self.np_random.integers(0, 2**63))  # Gymnasium's unseeded first reset
        if seed is not None:
            self._seeded = True
        return self._env.reset(seed)

    def step(self, action: Array) -> tuple[Array, float, bool, bool, dict[str, Any]]:
        return self._env.step(action)

    def render(self) -> npt.NDArray[np.uint8] | None:  # type: ignore[override]
        """The present state as a [height, width, 3] uint8 array (render_mode "rgb_array"), else None."""
        return self._env.render()

    def get_state(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``(qpos, qvel)`` as float64 arrays."""
        return self._env.get_state()

    def set_state(self, qpos: npt.ArrayLike, qvel: npt.ArrayLike) -> None:
        """The simulation put in ``(qpos, qvel)``, as ``MujocoEnv.set_state``."""
        self._env.set_state(qpos, qvel)

    def state_vector(self) -> npt.NDArray[np.float64]:
        """``concatenate([qpos, qvel])``."""
        return self._env.state_vector()


def register_envs() -> None:
    """Registers the six tasks as ``mbmpo/<v5 id>`` (done when mbmpo is imported; safe to repeat)."""
    for task in _core.tasks():
        env_id = f"{NAMESPACE}/{_core.gymnasium_id(task)}"
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point="mbmpo.gym:MbmpoEnv", kwargs={"task": task},
                               max_episode_steps=1000)
