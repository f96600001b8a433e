"""A learned-model environment: any policy or planner (a PyTorch policy, CEM, MPC) steps a batch of
states through a DynamicsEnsemble, with the task's own reward and termination, on the ensemble's
device. A step is computed as a step of ``mbmpo.imagined_rollout`` is (the same kernels), so the
same states, actions and models give the same trajectories.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core

__all__ = ["ModelEnv"]


class ModelEnv:
    """``batch`` states stepped together through ``ensemble`` on the task's reward and termination.

    Args:
        ensemble: a ``mbmpo.DynamicsEnsemble`` (its device is the env's: NumPy arrays on the CPU,
            PyTorch CUDA tensors on CUDA, used in place).
        task: the task whose reward and termination apply ("hopper" or "Hopper-v5"); its sizes must
            be the ensemble's.
        batch: the number of rows stepped together.
        model_of_row: the model of each row, fixed for every step (default row r on model r mod K,
            as an imagined rollout puts task t on model t mod K); ignored when ``draw_models``.
        draw_models: draw each row's model afresh at every step, uniformly among the K models, from
            a NumPy generator seeded with ``seed`` (what the rollouts of mbrl-lib's ModelEnv do).
        seed: the seed of those draws.

    ``reset(start_obs)`` takes the start states [batch, obs_dim] float32 and returns them;
    ``step(actions)`` takes [batch, act_dim] float32 actions (clipped to the task's limit, as the
    environment clips them) and returns ``(next_obs, reward, terminated)``: [batch, obs_dim] float32,
    [batch] float32 and [batch] bool, new arrays on the ensemble's device. A row that has terminated
    goes on being stepped; its further rewards mean nothing (an imagined rollout stops counting
    them), so mask them with the ``terminated`` returned.
    """

    def __init__(self, ensemble: _core.DynamicsEnsemble, task: str, batch: int, *,
                 model_of_row: Sequence[int] | None = None, draw_models: bool = False, seed: int = 0) -> None:
        if not isinstance(ensemble, _core.DynamicsEnsemble):
            raise TypeError(f"ensemble must be a mbmpo.DynamicsEnsemble, got {type(ensemble).__name__}")
        if not isinstance(task, str):
            raise TypeError(f"task must be a str, got {task!r} ({type(task).__name__})")
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)):
            raise TypeError(f"batch must be an integer, got {batch!r} ({type(batch).__name__})")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if not isinstance(draw_models, (bool, np.bool_)):
            raise TypeError(f"draw_models must be True or False, got {draw_models!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.ensemble, self.batch = ensemble, int(batch)
        self.task = _core.task_name(task)  # ValueError naming the known tasks otherwise
        spec = _core.task_sizes(self.task)
        if (spec["obs_dim"], spec["act_dim"]) != (ensemble.obs_dim, ensemble.act_dim):
            raise ValueError(f"task {self.task} has obs/act sizes {spec['obs_dim']}/{spec['act_dim']} but the ensemble "
                             f"was made for {ensemble.obs_dim}/{ensemble.act_dim}")
        self.obs_dim, self.act_dim, self.action_limit = spec["obs_dim"], spec["act_dim"], spec["action_limit"]
        K = ensemble.models
        if model_of_row is None:
            rows = [r % K for r in range(self.batch)]
        else:
            if isinstance(model_of_row, (str, bytes)) or not isinstance(model_of_row, (Sequence, np.ndarray)):
                raise TypeError(f"model_of_row must be a sequence of integers, got {type(model_of_row).__name__}")
            rows = [int(k) for k in model_of_row]
            if len(rows) != self.batch:
                raise ValueError(f"model_of_row: expected {self.batch} entries (one per row), got {len(rows)}")
            bad = [k for k in rows if not 0 <= k < K]
            if bad:
                raise ValueError(f"model_of_row: model {bad[0]} is not in [0, {K}) (the ensemble has {K} models)")
        self.model_of_row = rows
        self.draw_models = bool(draw_models)
        self._rng = np.random.default_rng(seed)
        self._obs: Any = None
        self._act_env: Any = None

    def _empty(self, shape: tuple[int, ...], like: Any) -> Any:
        if self.ensemble.device == "cpu":
            return np.empty(shape, np.float32)
        import torch  # on CUDA the arrays are PyTorch tensors
        return torch.empty(shape, dtype=torch.float32, device=like.device)

    def reset(self, start_obs: Any) -> Any:
        """Starts every row at start_obs [batch, obs_dim] float32 (kept, not copied); returns it."""
        shape = tuple(start_obs.shape) if hasattr(start_obs, "shape") else None
        if shape != (self.batch, self.obs_dim):
            raise ValueError(f"start_obs: expected shape ({self.batch}, {self.obs_dim}), got {shape}")
        if str(getattr(start_obs, "dtype", "")) not in ("float32", "torch.float32"):
            raise ValueError(f"start_obs: expected dtype float32, got {getattr(start_obs, 'dtype', type(start_obs))}")
        self._obs = start_obs
        self._act_env = self._empty((self.batch, self.act_dim), start_obs)  # the clipped actions, reused
        return start_obs

    def step(self, actions: Any) -> tuple[Any, Any, Any]:
        """One step of every row: (next_obs [batch, obs_dim], reward [batch], terminated [batch] bool)."""
        if self._obs is None:
            raise RuntimeError("step before reset: call reset(start_obs) first")
        next_obs = self._empty((self.batch, self.obs_dim), self._obs)
        reward = self._empty((self.batch,), self._obs)
        done = self._empty((self.batch,), self._obs)
        rows = (self._rng.integers(0, self.ensemble.models, self.batch).tolist() if self.draw_models
                else self.model_of_row)
        _core.model_step(self.ensemble, self.task, self._obs, actions, self._act_env, next_obs, reward, done, rows)
        self._obs = next_obs
        return next_obs, reward, done != 0
