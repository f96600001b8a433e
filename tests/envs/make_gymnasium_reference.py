#!/usr/bin/env python3
"""Writes tests/envs/data/gymnasium_v5_transitions.json: one-step transitions of Gymnasium's v5
MuJoCo tasks, which tests/envs/test_gymnasium_parity.cpp replays through mbmpo's environments.

Not run by CI. Run it by hand, in a venv with Gymnasium and the MuJoCo release it was made with:

    python3 -m venv /tmp/gymvenv
    /tmp/gymvenv/bin/pip install 'gymnasium==1.4.*' 'mujoco==3.4.*' imageio packaging
    /tmp/gymvenv/bin/python tests/envs/make_gymnasium_reference.py

MuJoCo 3.4, not the newest: from 3.5 contacts inside a geom's margin changed, so hopper and ant
step differently from Debian's libmujoco 2.2.2 that mbmpo links; 3.4 and 2.2.2 agree to ~1e-13.

Each transition starts from a state reached by a few random steps after a reset, or (the last
TERMINAL_TRANSITIONS of each task) is the last step of a random episode. Before the
recorded step the state is put back as a fresh mjData would hold it (mj_resetData, then qpos, qvel
and mj_forward through Gymnasium's set_state), so the step depends only on (qpos, qvel, action):
the solver's warm start and the kinematics left over from the previous step are cleared, as
mbmpo's Environment::set_state does. For each transition the file holds the full state before the
step (qpos, qvel; x and y included), the action, and Gymnasium's next observation, reward,
terminated and info["x_velocity"]. Floats are written by repr, so they round-trip exactly.
"""

import json
import os
import sys

import gymnasium as gym
import mujoco
import numpy as np

# mbmpo's task name, Gymnasium id, keyword arguments.
TASKS = [
    ("half_cheetah", "HalfCheetah-v5", {}),
    ("hopper", "Hopper-v5", {}),
    ("walker2d", "Walker2d-v5", {}),
    # v5's default adds the clipped contact forces (cfrc_ext) to the observation; mbmpo's ant
    # observation is qpos[2:] + qvel (27), as with include_cfrc_ext_in_observation=False. The
    # reward (contact cost included) does not depend on this flag.
    ("ant", "Ant-v5", {"include_cfrc_ext_in_observation": False}),
    ("swimmer", "Swimmer-v5", {}),
    ("inverted_pendulum", "InvertedPendulum-v5", {}),
]
OBS_DIM = {"half_cheetah": 17, "hopper": 11, "walker2d": 17, "ant": 27, "swimmer": 8,
           "inverted_pendulum": 4}
TRANSITIONS_PER_TASK = 20
MAX_WARMUP_STEPS = 12  # random steps between recorded transitions: 1..MAX_WARMUP_STEPS
TERMINAL_TRANSITIONS = 5  # of the 20: the last step of a random episode (or of 300 steps)
MAX_EPISODE_STEPS = 300
SEED = 20240601


def floats(values):
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def record_step(env, qpos, qvel, action):
    """Steps from (qpos, qvel) as a fresh mjData would hold it and returns the transition."""
    base = env.unwrapped
    mujoco.mj_resetData(base.model, base.data)
    base.set_state(qpos, qvel)
    next_obs, reward, terminated, _, info = env.step(action)
    return {
        "qpos": floats(qpos),
        "qvel": floats(qvel),
        "action": floats(action),
        "next_obs": floats(next_obs),
        "reward": float(reward),
        "terminated": bool(terminated),
        "x_velocity": float(info["x_velocity"]) if "x_velocity" in info else None,
    }


def record_task(name, gym_id, kwargs, rng):
    env = gym.make(gym_id, **kwargs)
    base = env.unwrapped
    model, data = base.model, base.data
    assert env.observation_space.shape == (OBS_DIM[name],), (name, env.observation_space.shape)
    env.action_space.seed(int(rng.integers(2**31)))
    env.reset(seed=int(rng.integers(2**31)))
    transitions = []
    while len(transitions) < TRANSITIONS_PER_TASK - TERMINAL_TRANSITIONS:
        for _ in range(int(rng.integers(1, MAX_WARMUP_STEPS + 1))):
            _, _, terminated, _, _ = env.step(env.action_space.sample())
            if terminated:
                env.reset(seed=int(rng.integers(2**31)))
        qpos, qvel = data.qpos.copy(), data.qvel.copy()
        transitions.append(record_step(env, qpos, qvel, env.action_space.sample()))
        if transitions[-1]["terminated"]:
            env.reset(seed=int(rng.integers(2**31)))
    # Random steps seldom end an episode: also take the last step of random episodes, so the
    # termination rules are checked where they fire (tasks that never terminate take other steps).
    while len(transitions) < TRANSITIONS_PER_TASK:
        env.reset(seed=int(rng.integers(2**31)))
        for _ in range(MAX_EPISODE_STEPS):
            qpos, qvel = data.qpos.copy(), data.qvel.copy()
            action = env.action_space.sample()
            _, _, terminated, _, _ = env.step(action)
            if terminated:
                break
        transitions.append(record_step(env, qpos, qvel, action))
    env.close()
    return {"gymnasium_id": gym_id, "kwargs": kwargs, "nq": int(model.nq), "nv": int(model.nv),
            "transitions": transitions}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "data",
                                                             "gymnasium_v5_transitions.json")
    rng = np.random.default_rng(SEED)
    tasks = {}
    for name, gym_id, kwargs in TASKS:
        tasks[name] = record_task(name, gym_id, kwargs, rng)
        done = sum(t["terminated"] for t in tasks[name]["transitions"])
        print(f"{name}: {len(tasks[name]['transitions'])} transitions, {done} terminated")
    document = {
        "generator": "tests/envs/make_gymnasium_reference.py",
        "gymnasium": gym.__version__,
        "mujoco": mujoco.__version__,
        "numpy": np.__version__,
        "seed": SEED,
        "tasks": tasks,
    }
    # One transition a line: small diffs when the file is regenerated. json writes floats by repr.
    lines = ["{"]
    for key in ("generator", "gymnasium", "mujoco", "numpy", "seed"):
        lines.append(f"  {json.dumps(key)}: {json.dumps(document[key])},")
    lines.append('  "tasks": {')
    names = list(tasks)
    for i, name in enumerate(names):
        task = tasks[name]
        lines.append(f"    {json.dumps(name)}: {{")
        for key in ("gymnasium_id", "kwargs", "nq", "nv"):
            lines.append(f"      {json.dumps(key)}: {json.dumps(task[key])},")
        lines.append('      "transitions": [')
        rows = [f"        {json.dumps(t)}" for t in task["transitions"]]
        lines.append(",\n".join(rows))
        lines.append("      ]")
        lines.append("    }" + ("," if i + 1 < len(names) else ""))
    lines.append("  }")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == document
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    print(f"wrote {out} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
