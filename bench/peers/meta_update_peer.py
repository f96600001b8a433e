#!/usr/bin/env python3
"""PyTorch peer of mbmpo's outer meta-update (exact second-order MAML-TRPO), same sizes and dtype.

meta_update/TxMxH  T tasks with M x H pre-update and M x H post-update samples (states U(-1, 1),
                   actions N(0, 1), standardised advantages, as `mbmpo bench --suite meta_update`
                   makes them), policy 17 -> 32 -> 32 -> 6 tanh with a state-independent log-std.
                   theta'_t = theta + alpha grad L_in_t(theta) with create_graph; the meta-gradient
                   by autograd through the inner step; Fisher-vector products of the KL through the
                   inner step by double backward (the KL's gradient graph built once, then one
                   backward per product, as TRPO implementations do); 10 CG iterations (rllab's
                   recurrences); step sqrt(2 delta / x.Ax) x; backtracking line search (0.8, <= 15)
                   recomputing theta'_t on the pre-update samples.
The "-first-order" cases drop the inner step's second derivatives. Phase rows
(-meta_gradient, -cg, -line_search) are host-clock medians after a synchronise. Rows are JSON in
the schema of `mbmpo bench --json`.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch
except ImportError:
    print("meta_update_peer: PyTorch is not installed (pip install torch); peer skipped", file=sys.stderr)
    sys.exit(3)
from ensemble_peer import emit, peer_setup, row, summarize  # noqa: E402
from rollout_peer import log_prob, make_policy, policy_mean as mean_of  # noqa: E402

OBS, ACT = 17, 6
POLICY = [OBS, 32, 32, ACT]
ALPHA, MAX_KL, DAMPING, CG_ITERS, RATIO, BACKTRACKS = 1e-3, 0.01, 1e-5, 10, 0.8, 15


def scales(scale):
    return [("5x8x20", 5, 8, 20)] if scale == "small" else [("20x50x200", 20, 50, 200)]


def samples(tasks, rollouts, horizon, device, generator):
    n = rollouts * horizon
    obs = torch.rand(tasks, n, OBS, device=device, generator=generator) * 2 - 1
    act = torch.randn(tasks, n, ACT, device=device, generator=generator)
    adv = torch.randn(tasks, n, device=device, generator=generator)
    adv = (adv - adv.mean(1, keepdim=True)) / adv.std(1, unbiased=False, keepdim=True)
    return obs, act, adv


class MetaUpdate:
    def __init__(self, pre, post, first_order):
        self.pre, self.post, self.first_order = pre, post, first_order

    def adapt(self, theta, create_graph):
        tasks = self.pre[0].shape[0]
        tiled = [p.expand(tasks, *p.shape[1:]) for p in theta]
        inner = (log_prob(tiled, self.pre[0], self.pre[1]) * self.pre[2]).mean(1).sum()
        grads = torch.autograd.grad(inner, tiled, create_graph=create_graph and not self.first_order)
        return [t + ALPHA * g for t, g in zip(tiled, grads)]

    def surrogate_and_kl(self, adapted):
        obs, act, adv = self.post
        logp = log_prob(adapted, obs, act)
        surrogate = (torch.exp(logp - self.logp_old) * adv).mean(1).mean()
        mean, log_std = mean_of(adapted, obs), adapted[-1]
        var_old, var_new = torch.exp(2 * self.log_std_old), torch.exp(2 * log_std)
        kl = (log_std - self.log_std_old + (var_old + (self.mean_old - mean) ** 2) / (2 * var_new) - 0.5).sum(-1)
        return surrogate, kl.mean(1).mean()

    def __call__(self, theta):
        timings = {}
        sync = (lambda: torch.cuda.synchronize()) if theta[0].is_cuda else (lambda: None)
        start = time.perf_counter()
        adapted = self.adapt(theta, True)
        with torch.no_grad():
            self.logp_old = log_prob(adapted, self.post[0], self.post[1])
            self.mean_old = mean_of(adapted, self.post[0])
            self.log_std_old = adapted[-1].detach()
        surrogate, kl = self.surrogate_and_kl(adapted)
        before = surrogate.item()
        g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(surrogate, theta, retain_graph=True)])
        sync()
        timings["meta_gradient"] = time.perf_counter() - start

        start = time.perf_counter()
        kl_grad = torch.cat([x.reshape(-1) for x in torch.autograd.grad(kl, theta, create_graph=True)])

        def fvp(v):
            hv = torch.autograd.grad(kl_grad @ v, theta, retain_graph=True)
            return torch.cat([x.reshape(-1) for x in hv]) + DAMPING * v

        x = torch.zeros_like(g)
        r, p = g.clone(), g.clone()
        rr = r @ r
        for _ in range(CG_ITERS):
            ap = fvp(p)
            step = rr / (p @ ap)
            x += step * p
            r -= step * ap
            rr_new = r @ r
            p = r + (rr_new / rr) * p
            rr = rr_new
        scale = torch.sqrt(2 * MAX_KL / (x @ fvp(x) + 1e-8))
        sync()
        timings["cg"] = time.perf_counter() - start

        start = time.perf_counter()
        flat = torch.cat([q.detach().reshape(-1) for q in theta])
        backtracks, accepted = 0, False
        for k in range(BACKTRACKS):
            backtracks = k + 1
            candidate = flat + (RATIO ** k) * scale * x
            pieces, offset = [], 0
            for q in theta:
                pieces.append(candidate[offset:offset + q.numel()].view_as(q).requires_grad_())
                offset += q.numel()
            adapted_new = [a.detach() for a in self.adapt(pieces, False)]
            with torch.no_grad():
                s_new, kl_new = self.surrogate_and_kl(adapted_new)
            if s_new.item() > before and kl_new.item() <= MAX_KL:
                accepted = True
                break
        sync()
        timings["line_search"] = time.perf_counter() - start
        return timings, backtracks, accepted


def main():
    args, device, device_name, ceiling = peer_setup(
        __doc__, ["meta_update"],
        "accepted for symmetry; the double-backward peer runs eager (torch.compile does not trace double backward)")
    policy_macs = sum(a * b for a, b in zip(POLICY[:-1], POLICY[1:]))
    rows = []
    generator = torch.Generator(device=device)
    generator.manual_seed(11)
    for name, tasks, rollouts, horizon in scales(args.scale):
        pre = samples(tasks, rollouts, horizon, device, generator)
        post = samples(tasks, rollouts, horizon, device, generator)
        n = tasks * rollouts * horizon
        repeats = (5 if args.scale == "small" else 1) if device.type == "cpu" else 10
        for first_order in (False, True):
            update = MetaUpdate(pre, post, first_order)
            runs = []
            for i in range(repeats + 1):  # the first is a warm-up
                theta = make_policy(1, device)  # one meta-policy
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                timings, backtracks, accepted = update(theta)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                timings["total"] = time.perf_counter() - start
                if i > 0:
                    runs.append(timings)
            case = name + ("-first-order" if first_order else "")
            hv = 0.0 if first_order else 8.0
            phase_units = {"meta_gradient": 3 + 3 + 3 + hv, "cg": 11 * (2 * hv + 5), "line_search": 6.0 * backtracks}
            units = sum(phase_units.values())
            r = row("meta_update", case, device_name, args.scale, summarize([x["total"] for x in runs]), 1.0, n * units * 2.0 * policy_macs, ceiling,
                    "pytorch-eager")
            r["backtracks"], r["accepted"] = backtracks, accepted
            rows.append(r)
            for phase in ("meta_gradient", "cg", "line_search"):
                rows.append(row("meta_update", f"{case}-{phase}", device_name, args.scale,
                                summarize([x[phase] for x in runs]), 1.0,
                                n * phase_units[phase] * 2.0 * policy_macs, ceiling, "pytorch-eager"))
    emit(rows, args.json)

if __name__ == "__main__":
    main()
