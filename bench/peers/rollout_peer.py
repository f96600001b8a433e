#!/usr/bin/env python3
"""PyTorch peer of mbmpo's imagined rollout and inner step: the same computation, sizes and dtype.

rollout/TxMxH   T tasks x M rollouts x H steps: per-task Gaussian policies (17 -> 32 -> 32 -> 6,
                tanh, evaluated for all tasks with one bmm per layer), actions sampled, clipped,
                the K = 5 weight-normalised (512, 512) ReLU models (one bmm per layer over the
                models, task t on model t mod K, as a batched version of RLlib's MBMPO
                model-vector env), HalfCheetah's reward on the predicted state.
inner_step/TxMxH  discounted returns, the linear feature baseline by least squares per task,
                GAE, per-task normalisation and one policy-gradient step per task (autograd).
Eager, and with --compile the rollout's per-step function under torch.compile ("reduce-overhead":
CUDA graphs on a GPU) and the inner step's advantage computation under torch.compile. Rows are JSON in the schema of `mbmpo bench --json`.
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch
except ImportError:
    print("rollout_peer: PyTorch is not installed (pip install torch); peer skipped", file=sys.stderr)
    sys.exit(3)
from ensemble_peer import Ensemble, emit, forward_macs, peer_setup, row, timed  # noqa: E402

OBS, ACT, MODELS = 17, 6, 5
POLICY = [OBS, 32, 32, ACT]


def scales(scale, device):
    if scale == "small":
        return [("5x8x20", 5, 8, 20, [64, 64])]
    out = [("20x50x200", 20, 50, 200, [512, 512])]
    if scale == "large" and device.type == "cuda":
        out.append(("5x4096x200", 5, 4096, 200, [512, 512]))
    return out


def make_policy(tasks, device):
    params = []
    for fan_in, fan_out in zip(POLICY[:-1], POLICY[1:]):
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        params.append(((torch.rand(tasks, fan_in, fan_out, device=device) * 2 - 1) * limit).requires_grad_())
        params.append(torch.zeros(tasks, 1, fan_out, device=device, requires_grad=True))
    params.append(torch.zeros(tasks, 1, ACT, device=device, requires_grad=True))  # log std
    return params


def policy_mean(params, obs):  # params [T or 1, ...] (one policy shared by all), obs [T, N, OBS]
    x = obs
    layers = (len(params) - 1) // 2
    for i in range(layers):
        x = torch.baddbmm(params[2 * i + 1], x, params[2 * i].expand(obs.shape[0], -1, -1))
        if i < layers - 1:
            x = torch.tanh(x)
    return x


def log_prob(params, obs, act):
    mean, log_std = policy_mean(params, obs), params[-1]
    z = (act - mean) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def rollout_fn(models, tasks, rollouts):
    def step(params, state):  # state [T, M, OBS]
        with torch.no_grad():
            mean = policy_mean(params, state)
            act = mean + torch.exp(params[-1]) * torch.randn_like(mean)
            act_env = act.clamp(-1.0, 1.0)
            x = torch.cat([state, act_env], 2)  # identity normalisation: the same arithmetic
            # task t -> model t mod K: [T/K, K, M, .] -> [K, T/K * M, .]
            xk = x.view(tasks // MODELS, MODELS, rollouts, -1).transpose(0, 1).reshape(MODELS, -1, OBS + ACT)
            delta = models(xk).view(MODELS, tasks // MODELS, rollouts, OBS).transpose(0, 1).reshape(tasks, rollouts, OBS)
            nxt = (state + delta).clamp(-1000.0, 1000.0)
            reward = nxt[..., 8] - 0.1 * (act_env * act_env).sum(-1)
            logp = (-0.5 * ((act - mean) * torch.exp(-params[-1])) ** 2 - params[-1] - 0.5 * math.log(2 * math.pi)).sum(-1)
            return nxt, act, reward, logp
    return step


def run_rollout(step, params, start, horizon):
    state = start
    obs, acts, rewards, logps = [], [], [], []
    for _ in range(horizon):
        obs.append(state)
        state, act, reward, logp = step(params, state)
        acts.append(act)
        rewards.append(reward)
        logps.append(logp)
    return torch.stack(obs, 2), torch.stack(acts, 2), torch.stack(rewards, 2), torch.stack(logps, 2)


def discounted_sums(x, factor):
    """out[..., h] = sum over h' >= h of factor^(h' - h) x[..., h']: one matrix product with a
    triangular matrix of powers instead of a Python loop over the horizon (which torch.compile
    would unroll)."""
    horizon = x.shape[-1]
    steps = torch.arange(horizon, device=x.device, dtype=x.dtype)
    lag = steps.view(-1, 1) - steps.view(1, -1)  # [h', h] = h' - h
    powers = torch.where(lag >= 0, factor ** lag.clamp(min=0), torch.zeros_like(lag))
    return x @ powers


def advantages(obs, reward, gamma=0.99):
    tasks, rollouts, horizon, _ = obs.shape
    returns = discounted_sums(reward, gamma)
    o = obs.clamp(-10, 10).double()
    s = (torch.arange(horizon, device=obs.device, dtype=torch.float64) / 100).view(1, 1, horizon, 1).expand(tasks, rollouts, horizon, 1)
    feats = torch.cat([o, o * o, s, s ** 2, s ** 3, torch.ones_like(s)], -1).reshape(tasks, -1, 2 * OBS + 4)
    y = returns.double().reshape(tasks, -1, 1)
    xtx = feats.transpose(1, 2) @ feats + 1e-5 * torch.eye(feats.shape[-1], device=obs.device, dtype=torch.float64)
    w = torch.linalg.solve(xtx, feats.transpose(1, 2) @ y)
    values = (feats @ w).reshape(tasks, rollouts, horizon).float()
    next_values = torch.cat([values[..., 1:], torch.zeros_like(values[..., :1])], -1)
    adv = discounted_sums(reward + gamma * next_values - values, gamma).reshape(tasks, -1)  # GAE, lambda = 1
    return (adv - adv.mean(1, keepdim=True)) / (adv.std(1, unbiased=False, keepdim=True) + 1e-8)


def inner_step_fn(advantages_fn):
    def inner_step(params, obs, act, reward, alpha=1e-3):
        adv = advantages_fn(obs, reward)
        tasks = obs.shape[0]
        surrogate = (log_prob(params, obs.reshape(tasks, -1, OBS), act.reshape(tasks, -1, ACT)) * adv).mean(1).sum()
        grads = torch.autograd.grad(surrogate, params)
        return [p + alpha * g for p, g in zip(params, grads)]
    return inner_step


def main():
    args, device, device_name, ceiling = peer_setup(__doc__, ["rollout", "inner_step"])
    policy_macs = sum(a * b for a, b in zip(POLICY[:-1], POLICY[1:]))
    rows = []
    for name, tasks, rollouts, horizon, hidden in scales(args.scale, device):
        models = Ensemble(hidden, device)
        params = make_policy(tasks, device)
        start = torch.rand(tasks, rollouts, OBS, device=device) * 0.2 - 0.1
        steps = tasks * rollouts * horizon
        repeats = 3 if device.type == "cpu" else 10
        for compiled in ([False, True] if args.compile else [False]):
            impl = "pytorch-compile" if compiled else "pytorch-eager"
            step = rollout_fn(models, tasks, rollouts)
            if compiled:
                step = torch.compile(step, mode="reduce-overhead")
            if args.suite in ("rollout", "all"):
                t = timed(device, repeats, lambda: run_rollout(step, params, start, horizon))
                rows.append(row("rollout", name, device_name, args.scale, t, steps,
                                steps * 2.0 * (forward_macs(hidden) + policy_macs), ceiling, impl))
            if args.suite in ("inner_step", "all"):
                obs, act, reward, _ = run_rollout(step, params, start, horizon)
                # Compiled: the advantages (returns, baseline solve, GAE, normalisation); the
                # policy gradient stays eager (torch.compile breaks the graph at autograd.grad).
                inner_step = inner_step_fn(torch.compile(advantages) if compiled else advantages)
                t = timed(device, repeats, lambda: inner_step(params, obs, act, reward))
                rows.append(row("inner_step", name, device_name, args.scale, t, steps,
                                steps * 2.0 * 3.0 * policy_macs, ceiling, impl))
    emit(rows, args.json)

if __name__ == "__main__":
    main()
