"""How a planar runner's trained policy holds its body: upright, or flipped onto its back.

    python -m mbmpo.posture RUN [RUN ...] [--episodes 3] [--steps 200]

RUN is what mbmpo.Policy.load reads (a run directory, a checkpoint, checkpoints/latest or a
policy.safetensors). Each episode runs the policy's mean action from a seeded reset and reports
the return, the share of steps on its back (the root's pitch, qpos[2], with cos(pitch) < 0), the
pitch's range (a range of many radians means the body rolls over and over) and the forward velocity. It answers
whether a half_cheetah run that stalls near 100-400 has found the "roll on its back" optimum.
"""
import argparse
import sys
import numpy as np

from mbmpo import Env, Policy

PLANAR_TASKS = ("half_cheetah", "hopper", "walker2d")  # qpos = (x, z, pitch, joints...)


def posture(run, episodes, steps):
    policy = Policy.load(run)
    task = policy.task
    if task not in PLANAR_TASKS:
        raise ValueError(f"{run}: {task} is not a planar runner ({', '.join(PLANAR_TASKS)})")
    env = Env(task, max_episode_steps=steps)
    rows = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        x0 = env.get_state()[0][0]
        total, pitches = 0.0, []
        for _ in range(steps):
            obs, reward, terminated, truncated, _ = env.step(policy.predict(obs[None].astype(np.float32))[0])
            total += reward
            pitches.append(env.get_state()[0][2])
            if terminated or truncated:
                break
        pitches = np.array(pitches)
        velocity = (env.get_state()[0][0] - x0) / (len(pitches) * env.dt)
        rows.append((episode, total, float(np.mean(np.cos(pitches) < 0)), float(pitches.min()),
                     float(pitches.max()), velocity))
    return task, rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.steps < 1:
        parser.error("--episodes and --steps must be at least 1")
    for run in args.runs:
        try:
            task, rows = posture(run, args.episodes, args.steps)
        except ValueError as error:
            print(f"posture: {error}", file=sys.stderr)
            return 2
        print(f"{run} ({task}, mean action, {args.steps} steps)")
        for episode, total, flipped, low, high, velocity in rows:
            print(f"  episode {episode}: return {total:7.1f}  on its back {flipped:4.0%} of steps  "
                  f"pitch {low:+6.2f} to {high:+6.2f} rad  forward {velocity:+5.2f} m/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
