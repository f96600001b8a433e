"""mbmpo: Model-Based Meta-Policy Optimization (MB-MPO) on CPU and CUDA, from Python.

The package hands arrays and settings to the C++/CUDA library (mbmpo._core); every computation
runs there. What is here:

- ``info()``, ``tasks()``, ``config_fields()``: the build, the tasks, every training setting;
- ``Env(task, seed)``: a real MuJoCo task with Gymnasium's ``reset``/``step``, and
  ``mbmpo.gym.MbmpoEnv``, a ``gymnasium.Env``;
- ``Dataset`` and ``DynamicsEnsemble``: transitions (read back as arrays), and the ensemble's
  ``fit``/``predict``/``predict_all``/``disagreement``/``save``; ``DynamicsEnsemble.load`` and
  ``Dataset.load`` read a file or a run directory; ``predict`` reads and writes float32 arrays
  where they are (NumPy on the CPU, e.g. PyTorch CUDA tensors on CUDA), without copies;
- ``Policy.load(run_dir or file)``: a trained policy's ``predict``, ``parameters`` by name and
  ``save`` (policy.safetensors loads into ``torch.nn.Sequential`` by name);
- ``ModelEnv(ensemble, task, batch)``: any policy or planner steps a batch through the learned
  models with the task's reward and termination (``task_rewards``), as imagined rollouts do;
- ``GaussianPolicy``, ``imagined_rollout``, ``compute_advantages``, ``inner_step``,
  ``meta_update``: one meta-step, call by call (parameters used in place on the ensemble's
  device; ``meta_update`` writes theta in place);
- ``train(run_dir, ...)``: the trainer of ``mbmpo train``, with the same run directory and resume
  (``seeds=`` several seeds in one process, as ``--seeds``);
  ``eval(path, episodes=10, adapt=False)``: a saved policy's real returns, as ``mbmpo eval``;
- ``python -m mbmpo.plot RUN_DIR ... -o curves.png``: learning curves; ``python -m mbmpo.learning
  RUN_DIR ...``: the learning table next to the published results;
- ``python -m mbmpo.sweep SWEEP.toml``, ``mbmpo.sweep.run``: tasks x seeds x settings as Ray Tune
  trials (needs ``ray[tune]``).
"""
from . import _core
from ._core import Advantages, Dataset, DynamicsEnsemble, GaussianPolicy, Policy, Trajectories
from .env import Env
from .messages import in_keyword_words
from .model_env import ModelEnv
from .signatures import add_method_signatures, with_signature
from .training import train

# The extension's functions and methods, with signatures that inspect.signature reads
# (mbmpo.signatures).
for _bound in (Advantages, Dataset, DynamicsEnsemble, GaussianPolicy, Policy, Trajectories):
    add_method_signatures(_bound)
compute_advantages = with_signature(_core.compute_advantages)
config_fields = with_signature(_core.config_fields)
imagined_rollout = with_signature(_core.imagined_rollout)
info = with_signature(_core.info)
inner_step = with_signature(_core.inner_step)
meta_update = with_signature(_core.meta_update)
task_rewards = with_signature(_core.task_rewards)
tasks = with_signature(_core.tasks)
eval = in_keyword_words(with_signature(_core.eval))  # noqa: A001 (mbmpo.eval, as `mbmpo eval`)
evaluate = eval  # the same, under a name `from mbmpo import *` can export without shadowing eval

__version__: str = _core.info()["version"]  # the library's, as `mbmpo info` prints it

try:  # the Gymnasium ids mbmpo/HalfCheetah-v5 and the others, where gymnasium is installed
    from .gym import register_envs as _register_envs
except ImportError:
    pass
else:
    _register_envs()

# eval is mbmpo.eval (or evaluate) only: `from mbmpo import *` must not shadow the built-in.
__all__ = ["Advantages", "Dataset", "DynamicsEnsemble", "Env", "GaussianPolicy", "ModelEnv", "Policy", "Trajectories",
           "compute_advantages", "config_fields", "evaluate", "imagined_rollout", "info", "inner_step", "meta_update",
           "task_rewards", "tasks", "train"]
