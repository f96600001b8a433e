"""A real MuJoCo task with Gymnasium's API (the dynamics of Gymnasium's v5 tasks)."""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core

Observation = npt.NDArray[np.float32]


def _count(value: Any, name: str, minimum: int = 0) -> int:
    """An integer argument as an int, or a TypeError/ValueError that names it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if value >= 2**64:
        raise ValueError(f"{name} must be < 2**64, got {value}")
    return int(value)


# Gymnasium v5's constructor keywords, per task: those this environment supports (they change the
# task), and those it accepts only at the value it implements (anything else is refused, saying why).
_ALL = ("half_cheetah", "hopper", "walker2d", "ant", "swimmer", "inverted_pendulum")
_SUPPORTED = {
    "ctrl_cost_weight": ("half_cheetah", "hopper", "walker2d", "ant", "swimmer"),
    "reset_noise_scale": _ALL,
    "healthy_reward": ("hopper", "walker2d", "ant"),
    "contact_cost_weight": ("ant",),
}
_FIXED = {
    "forward_reward_weight": {t: 1.0 for t in _ALL if t != "inverted_pendulum"},
    "terminate_when_unhealthy": {"hopper": True, "walker2d": True, "ant": True},
    "healthy_z_range": {"hopper": (0.7, float("inf")), "walker2d": (0.8, 2.0), "ant": (0.2, 1.0)},
    "healthy_angle_range": {"hopper": (-0.2, 0.2), "walker2d": (-1.0, 1.0)},
    "healthy_state_range": {"hopper": (-100.0, 100.0)},
    "exclude_current_positions_from_observation": {t: True for t in _ALL if t != "inverted_pendulum"},
    "include_cfrc_ext_in_observation": {"ant": False},
    "contact_force_range": {"ant": (-1.0, 1.0)},
    "main_body": {"ant": 1},
}
# The info keys of Gymnasium v5's step, of those this environment computes.
_INFO = {
    "half_cheetah": ("x_position", "x_velocity", "reward_forward", "reward_ctrl"),
    "hopper": ("x_position", "x_velocity", "reward_forward", "reward_ctrl", "reward_survive"),
    "walker2d": ("x_position", "x_velocity", "reward_forward", "reward_ctrl", "reward_survive"),
    "ant": ("x_position", "x_velocity", "reward_forward", "reward_ctrl", "reward_contact", "reward_survive"),
    "swimmer": ("x_position", "x_velocity", "reward_forward", "reward_ctrl"),
    "inverted_pendulum": ("x_velocity", "reward_survive"),
}


RENDER_MODES = ("rgb_array",)


def _check_render_mode(render_mode: str | None) -> None:
    if render_mode is None or render_mode in RENDER_MODES:
        return
    if render_mode == "human":
        raise ValueError("render_mode='human': mbmpo draws offscreen only (MuJoCo through EGL, without a window); "
                         "use render_mode='rgb_array' and show the frames, or record them with "
                         "gymnasium.wrappers.RecordVideo")
    raise ValueError(f"render_mode={render_mode!r}: mbmpo renders 'rgb_array' frames only (or None)")


def _same(value: Any, fixed: Any) -> bool:
    try:
        if isinstance(fixed, tuple):
            return len(value) == len(fixed) and all(float(a) == float(b) for a, b in zip(value, fixed))
        return value == fixed
    except (TypeError, ValueError):
        return False


def _task_overrides(task: str, keywords: dict[str, Any]) -> dict[str, float]:
    """The supported v5 keywords as floats; TypeError naming any keyword the task cannot take."""
    overrides = {}
    for key, value in keywords.items():
        if key in _SUPPORTED and task in _SUPPORTED[key]:
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
                raise ValueError(f"{key} must be a finite number >= 0, got {value!r}")
            overrides[key] = float(value)
        elif key in _FIXED and task in _FIXED[key]:
            if not _same(value, _FIXED[key][task]):
                raise ValueError(f"{key}={value!r}: mbmpo's {task} implements only {key}={_FIXED[key][task]!r} "
                                 "(the same in its imagined rollouts, whose reward and termination are compiled in)")
        elif key in _SUPPORTED or key in _FIXED:
            raise TypeError(f"{key}: the {task} task has no such setting (Gymnasium v5's {task} has none either)")
        else:
            raise TypeError(f"{key}: not a keyword of mbmpo.Env or of Gymnasium v5's {task}; mbmpo supports "
                            + ", ".join(sorted(k for k, tasks in _SUPPORTED.items() if task in tasks)))
    return overrides


class Env:
    """A real MuJoCo task: ``reset()`` gives ``(observation, info)``; ``step(action)`` gives
    Gymnasium's five-tuple ``(observation, reward, terminated, truncated, info)``.

    ``task`` is a name from ``mbmpo.tasks()`` or its Gymnasium id (``"HalfCheetah-v5"``). Episodes
    are drawn from ``seed`` and an episode counter, so they are the same on every run;
    ``reset(seed=s)`` restarts the counter. After ``max_episode_steps`` steps an episode is
    truncated, as Gymnasium's time limit does. Gymnasium v5's keywords ``ctrl_cost_weight``,
    ``reset_noise_scale``, ``healthy_reward`` and ``contact_cost_weight`` change the task where v5's
    has them; v5's other keywords are accepted at the value mbmpo implements and refused otherwise.

    Differences from Gymnasium v5: observations are float32 (v5: float64); Ant's observation leaves
    out the contact forces (v5's ``include_cfrc_ext_in_observation=False``: 27 values, v5's default
    has 105); Ant's forward reward is Δqpos[0]/dt where v5 uses the torso's position (up to 0.03 a
    step apart); the control cost is charged on the action clipped to its range, v5 charges the
    action as given. ``info`` holds v5's reward terms and ``x_position``/``x_velocity``, not v5's
    y and distance entries.

    ``render_mode="rgb_array"`` makes ``render()`` return [height, width, 3] uint8 frames (480 x 480
    by default, as v5's), drawn offscreen without a display.
    """

    def __init__(self, task: str, seed: int = 0, max_episode_steps: int = 1000, render_mode: str | None = None,
                 width: int = 480, height: int = 480, **task_keywords: Any) -> None:
        if not isinstance(task, str):
            raise TypeError(f"task must be a task name (see mbmpo.tasks()), got {task!r}")
        seed = _count(seed, "seed")
        max_episode_steps = _count(max_episode_steps, "max_episode_steps", minimum=1)
        if max_episode_steps >= 2**31:
            raise ValueError(f"max_episode_steps must be < 2**31, got {max_episode_steps}")
        _check_render_mode(render_mode)
        width, height = _count(width, "width", minimum=1), _count(height, "height", minimum=1)
        if width > 8192 or height > 8192:
            raise ValueError(f"width and height must be <= 8192, got {width} and {height}")
        name = _core.task_name(task)  # also for its Gymnasium id; ValueError for an unknown task
        self._keywords = dict(task_keywords)
        self._env = _core.Env(task, seed, max_episode_steps, _task_overrides(name, task_keywords))
        self.render_mode, self.width, self.height = render_mode, width, height
        self._args = (task, seed, max_episode_steps, render_mode, width, height)

    @property
    def task(self) -> str:
        """The task's name (``mbmpo.tasks()``)."""
        return str(self._env.task)

    @property
    def obs_dim(self) -> int:
        """The observation's size."""
        return int(self._env.obs_dim)

    @property
    def act_dim(self) -> int:
        """The action's size."""
        return int(self._env.act_dim)

    @property
    def action_limit(self) -> float:
        """Actions are clipped to [-action_limit, action_limit]."""
        return float(self._env.action_limit)

    @property
    def dt(self) -> float:
        """Seconds per step (the physics step times the frame skip)."""
        return float(self._env.dt)

    @property
    def max_episode_steps(self) -> int:
        """Steps after which an episode is truncated."""
        return int(self._env.max_episode_steps)

    def reset(self, seed: int | None = None) -> tuple[Observation, dict[str, float]]:
        """A new episode: ``(observation [obs_dim] float32, info)``; ``seed`` restarts the episode
        stream from it."""
        obs = self._env.reset(None if seed is None else _count(seed, "seed"))
        return obs, self._reset_info()

    def _reset_info(self) -> dict[str, float]:
        return {} if self.task == "inverted_pendulum" else {"x_position": float(self._env.get_state()[0][0])}

    def step(self, action: npt.ArrayLike) -> tuple[Observation, float, bool, bool, dict[str, float]]:
        """One step of ``action`` ([act_dim] numbers, clipped to the action range):
        ``(observation, reward, terminated, truncated, info)``, info with the reward's terms."""
        try:
            action = np.ascontiguousarray(action, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError) as error:
            raise TypeError(f"action must be an array of {self.act_dim} numbers, got {action!r} ({error})") from None
        obs, reward, terminated, truncated, terms = self._env.step(action)
        return obs, reward, terminated, truncated, {k: terms[k] for k in _INFO[self.task]}

    def render(self) -> npt.NDArray[np.uint8] | None:
        """With ``render_mode="rgb_array"``: the present state as a [height, width, 3] uint8 RGB
        array, drawn by MuJoCo offscreen through EGL (no display needed; on a CPU machine Mesa's
        llvmpipe draws it). The camera follows the task's torso (InvertedPendulum: a fixed view).
        RuntimeError saying why where rendering cannot work; None without a render mode, as
        Gymnasium's environments return."""
        if self.render_mode is None:
            return None
        try:
            return self._env.render(self.width, self.height)
        except RuntimeError as error:  # the library's reason: no libEGL, no display, no context
            raise RuntimeError(f"render_mode='rgb_array' cannot render here: {error}") from None

    def get_state(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``(qpos, qvel)``: float64 copies of the simulation's positions and velocities."""
        return self._env.get_state()

    def set_state(self, qpos: npt.ArrayLike, qvel: npt.ArrayLike) -> Observation:
        """Puts the simulation in ``(qpos, qvel)`` (nq and nv numbers) as Gymnasium's
        ``MujocoEnv.set_state`` does, mid-episode; returns the observation."""
        return self._env.set_state(np.ascontiguousarray(qpos, dtype=np.float64).reshape(-1),
                                   np.ascontiguousarray(qvel, dtype=np.float64).reshape(-1))

    def state_vector(self) -> npt.NDArray[np.float64]:
        """``concatenate([qpos, qvel])``, as Gymnasium's ``MujocoEnv.state_vector()``."""
        return np.concatenate(self._env.get_state())

    # A copy or a pickle goes on exactly as the original would: the same episode stream, step
    # count and simulation state (the solver's warm start included).
    def __getstate__(self) -> dict[str, Any]:
        return {"args": self._args, "keywords": self._keywords, "snapshot": self._env.snapshot()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(*state["args"], **state["keywords"])
        self._env.restore(*state["snapshot"])
