"""mbmpo: Model-Based Meta-Policy Optimization (MB-MPO) on CPU and CUDA, from Python.

The package hands arrays and settings to the C++/CUDA library (mbmpo._core); every computation
runs there. What is here:

- ``info()``, ``tasks()``, ``config_fields()``: the build, the tasks, every training setting;
- ``Env(task, seed)``: a real MuJoCo task with Gymnasium's ``reset``/``step``, and
  ``mbmpo.gym.MbmpoEnv``, a ``gymnasium.Env``;
- ``Dataset`` and ``DynamicsEnsemble``: transitions, and the ensemble's ``fit``/``predict``/
  ``save``/``load``; ``predict`` reads and writes float32 arrays where they are (NumPy on the
  CPU, e.g. PyTorch CUDA tensors on CUDA), without copies;
- ``train(run_dir, ...)``: the trainer of ``mbmpo train``, with the same run directory and resume;
- ``python -m mbmpo.plot RUN_DIR ... -o curves.png``: learning curves.
"""
from ._core import Dataset, DynamicsEnsemble, config_fields, info, tasks
from .env import Env
from .training import train

__all__ = ["Dataset", "DynamicsEnsemble", "Env", "config_fields", "info", "tasks", "train"]
