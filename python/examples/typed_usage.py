"""What a run leaves, used from typed code (the tests check this file with `mypy --strict` and run
it): train a small InvertedPendulum run, then drive the real task with its policy and the learned
models with a NumPy policy."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

import mbmpo


def real_return(policy: mbmpo.Policy, episodes: int = 2) -> float:
    """The mean real return of the policy's mean action."""
    env = mbmpo.Env("InvertedPendulum-v5", seed=1, max_episode_steps=200)
    total = 0.0
    for _ in range(episodes):
        obs, _ = env.reset()
        while True:
            action: npt.NDArray[np.float32] = policy.predict(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += reward
            if terminated or truncated:
                break
    return total / episodes


def imagined_return(run: Path, batch: int = 64, horizon: int = 30) -> float:
    """The mean return of a linear NumPy policy stepped through the run's learned models."""
    models = mbmpo.DynamicsEnsemble.load(run, device="cpu")
    data = mbmpo.Dataset.load(run)
    menv = mbmpo.ModelEnv(models, "inverted_pendulum", batch, draw_models=True, seed=0)
    obs = menv.reset(np.ascontiguousarray(data.obs[:batch]))
    gain = np.array([[1.0], [3.0], [0.5], [0.5]], np.float32)
    total = np.zeros(batch)
    alive = np.ones(batch, bool)
    for _ in range(horizon):
        obs, reward, terminated = menv.step(np.ascontiguousarray(obs @ gain, dtype=np.float32))
        total += np.where(alive, reward, 0.0)
        alive &= ~terminated
    spread = models.disagreement(data.obs[:batch], data.act[:batch])
    print(f"models disagree by {float(spread.mean()):.4f} on the data")
    return float(total.mean())


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        rows = mbmpo.train(run, preset="smoke", env="inverted_pendulum", iterations=1, quiet=True)
        policy = mbmpo.Policy.load(run)
        print(f"mbmpo {mbmpo.__version__}: {len(rows)} iteration, {policy!r}")
        print(f"real return {real_return(policy):.1f}, imagined return {imagined_return(run):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
