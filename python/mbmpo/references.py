"""Published MB-MPO results to put next to ours: one place for the numbers and where they come from.

All at horizon 200 on their authors' environments (RLlib's and rllab's HalfCheetah use a 0.01 s
step where Gymnasium v5's is 0.05 s), so they compare in kind, not exactly.
"""
import csv
import os

HERE = os.path.dirname(os.path.abspath(__file__))

# (task, real steps) -> [(source, return)]
POINTS = {
    ("half_cheetah", 100_000): [("RLlib MBMPO", 517), ("authors' code (read by RLlib's README)", 550)],
    ("hopper", 100_000): [("RLlib MBMPO", 633), ("authors' code (read by RLlib's README)", 650)],
}

# Whole curves (anchors/ beside this file): RLlib's published runs (ray-project/rl-experiments, mbmpo/mbmpo-results.tar.gz,
# halfcheetah/progress.csv and hopper/progress.csv): real steps, mean return, wall-clock seconds
# (20 workers and 1 GPU).
CURVES = {
    "half_cheetah": ("RLlib MBMPO", os.path.join(HERE, "anchors", "rllib_mbmpo_halfcheetah.csv")),
    "hopper": ("RLlib MBMPO", os.path.join(HERE, "anchors", "rllib_mbmpo_hopper.csv")),
}


def curve(task):
    """(label, [(real steps, return, seconds)]) for a task with a published curve, else None."""
    if task not in CURVES:
        return None
    label, path = CURVES[task]
    with open(path) as f:
        rows = [(float(r["timesteps_total"]), float(r["episode_reward_mean"]), float(r["time_total_s"]))
                for r in csv.DictReader(f)]
    return label, rows


def value_at(rows, steps):
    """The curve's value at `steps` real steps: its last point at or before them, or None when the
    curve has not got that far (or starts after them)."""
    before = [r for r in rows if r[0] <= steps]
    return before[-1][1] if before and rows[-1][0] >= steps else None
