#!/usr/bin/env python3
"""PyTorch peer of mbmpo's dynamics ensemble: the same computation at the same sizes and dtype.

K weight-normalised MLPs evaluated together with batched matrix products (torch.bmm over a
[K, rows, features] batch, as mbrl-lib's ensemble layers do). Cases and sizes mirror
bench/model_bench.cpp:
  model_fit/fit_2_epochs_N  two epochs of Adam (lr 1e-3, batch 500) on N transitions, a fresh
                            0.2 validation split per model, per-model shuffles, validation loss
                            read back once per epoch
  predict/rows_N            N rows (N/K per model): normalise, MLP, de-normalise + residual + clip
Each case runs eagerly and, with --compile, under torch.compile (mode "reduce-overhead", which
uses CUDA graphs on a GPU). Rows are JSON in the schema of `mbmpo bench --json`.

Needs PyTorch. On a CPU-only machine: python3 -m venv .venv && .venv/bin/pip install torch
"""
import argparse
import json
import math
import sys
import time

try:
    import torch
except ImportError:  # the comparison script reports this and skips the peer
    print("ensemble_peer: PyTorch is not installed (pip install torch); peer skipped", file=sys.stderr)
    sys.exit(3)

OBS, ACT, MODELS = 17, 6, 5


def sizes(scale):
    hidden = [64, 64] if scale == "small" else [512, 512]
    transitions = 2000 if scale == "small" else 100000
    batches = [1000] if scale == "small" else [1000, 100000]
    if scale == "large":
        batches.append(1000000)
    return hidden, transitions, batches


class Ensemble(torch.nn.Module):
    def __init__(self, hidden, device):
        super().__init__()
        dims = [OBS + ACT] + hidden + [OBS]
        self.v, self.g, self.b = (torch.nn.ParameterList() for _ in range(3))
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            self.v.append(torch.nn.Parameter((torch.rand(MODELS, fan_out, fan_in, device=device) * 2 - 1) * limit))
            self.g.append(torch.nn.Parameter(torch.ones(MODELS, fan_out, device=device)))
            self.b.append(torch.nn.Parameter(torch.zeros(MODELS, fan_out, device=device)))

    def forward(self, x):  # x: [K, rows, in], normalised
        last = len(self.v) - 1
        for i, (v, g, b) in enumerate(zip(self.v, self.g, self.b)):
            w = v * (g / v.norm(dim=2)).unsqueeze(2)
            x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
            if i < last:
                x = torch.relu(x)
        return x


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(device, repeats, body):
    body()  # warm-up (and compilation)
    seconds = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            body()
            end.record()
            torch.cuda.synchronize()
            seconds.append(start.elapsed_time(end) * 1e-3)
        else:
            t0 = time.perf_counter()
            body()
            seconds.append(time.perf_counter() - t0)
    return summarize(seconds)


def summarize(seconds):
    """(median, p10, p90) of run times, as mbmpo's bench_record.hpp computes them."""
    seconds = sorted(seconds)
    at = lambda q: seconds[int(q * (len(seconds) - 1) + 0.5)]
    return at(0.5), at(0.1), at(0.9)


def emit(rows, json_path):
    """Prints the rows and, when asked, writes them as JSON (the schema of `mbmpo bench --json`)."""
    for r in rows:
        print(f"{r['suite'] + '/' + r['case']:<44} {r['impl']:<16} {r['median_s'] * 1e3:12.3f} ms "
              f"{r['items_per_s']:14.0f} items/s {r.get('tflops', 0):8.3f} TFLOP/s {r.get('pct_peak', 0):6.1f}%")
    if json_path:
        with open(json_path, "w") as out:
            json.dump(rows, out, indent=2)


def row(suite, case, device_name, scale, timing, items, flops, ceiling, impl):
    median, p10, p90 = timing
    tflops = flops / median / 1e12
    return {"suite": suite, "case": case, "device": device_name, "scale": scale, "impl": impl,
            "median_s": median, "p10_s": p10, "p90_s": p90, "items_per_s": items / median,
            "tflops": tflops, "pct_peak": 100.0 * tflops / ceiling, "ceiling_tflops": ceiling}


def gemm_ceiling(device, scale):
    n = 1024 if scale == "small" else (8192 if device.type == "cuda" else 1536)
    a = torch.rand(n, n, device=device)
    b = torch.rand(n, n, device=device)
    t = timed(device, 5, lambda: torch.mm(a, b))
    return 2.0 * n ** 3 / t[0] / 1e12


def forward_macs(hidden):
    dims = [OBS + ACT] + hidden + [OBS]
    return sum(a * b for a, b in zip(dims[:-1], dims[1:]))


def fit_case(device, scale, compile_step, ceiling, device_name):
    hidden, n, _ = sizes(scale)
    model = Ensemble(hidden, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    obs = torch.rand(n, OBS, device=device) * 2 - 1
    act = torch.rand(n, ACT, device=device) * 2 - 1
    delta = torch.rand(n, OBS, device=device) * 2 - 1 - obs
    inputs = torch.cat([obs, act], 1)
    in_mean, in_std = inputs.mean(0), inputs.std(0, unbiased=False)
    d_mean, d_std = delta.mean(0), delta.std(0, unbiased=False)
    n_val = int(0.2 * n)
    n_train = n - n_val
    batch = 500

    def step(x, t):
        optimizer.zero_grad(set_to_none=True)
        loss = ((model(x) - t) ** 2).mean(dim=(1, 2)).sum()  # per-model means: independent models
        loss.backward()
        optimizer.step()

    def validate(x, t):
        with torch.no_grad():
            return ((model(x) - t) ** 2).mean(dim=(1, 2))

    if compile_step:
        step = torch.compile(step)
        validate = torch.compile(validate)

    def fit_two_epochs():
        perm = torch.argsort(torch.rand(MODELS, n, device=device), dim=1)  # fresh split per model
        train_idx, val_idx = perm[:, n_val:], perm[:, :n_val]
        xv = ((inputs[val_idx] - in_mean) / (in_std + 1e-10))
        tv = ((delta[val_idx] - d_mean) / (d_std + 1e-10))
        for _ in range(2):
            order = torch.gather(train_idx, 1, torch.argsort(torch.rand(MODELS, n_train, device=device), dim=1))
            for begin in range(0, n_train, batch):
                idx = order[:, begin:begin + batch]
                x = (inputs[idx] - in_mean) / (in_std + 1e-10)
                t = (delta[idx] - d_mean) / (d_std + 1e-10)
                step(x, t)
            validate(xv, tv).cpu()  # one host read-back per epoch, as mbmpo does
    macs = forward_macs(hidden)
    first = (OBS + ACT) * hidden[0]
    flops = 2.0 * MODELS * (2 * n_train * (3 * macs - first) + 2 * n_val * macs)
    repeats = 2 if device.type == "cpu" or scale == "small" else 5
    timing = timed(device, repeats, lambda: (fit_two_epochs(), synchronize(device)))
    impl = "pytorch-compile" if compile_step else "pytorch-eager"
    return row("model_fit", f"fit_2_epochs_{n}", device_name, scale, timing, n_train * MODELS * 2,
               flops, ceiling, impl)


def predict_cases(device, scale, compile_step, ceiling, device_name):
    hidden, _, batches = sizes(scale)
    model = Ensemble(hidden, device)
    in_mean, in_std = torch.zeros(OBS + ACT, device=device), torch.ones(OBS + ACT, device=device)
    d_mean, d_std = torch.zeros(OBS, device=device), torch.ones(OBS, device=device)

    def predict(obs, act):  # obs [K, R, OBS], act [K, R, ACT]
        with torch.no_grad():
            x = (torch.cat([obs, act], 2) - in_mean) / (in_std + 1e-10)
            return torch.clamp(obs + model(x) * (d_std + 1e-10) + d_mean, -1000.0, 1000.0)

    if compile_step:
        predict = torch.compile(predict, mode="reduce-overhead")
    rows = []
    for n in batches:
        if device.type == "cpu" and n > 100000:
            continue
        obs = torch.rand(MODELS, n // MODELS, OBS, device=device)
        act = torch.rand(MODELS, n // MODELS, ACT, device=device)
        repeats = 3 if device.type == "cpu" or scale == "small" else 20
        timing = timed(device, repeats, lambda: predict(obs, act))
        impl = "pytorch-compile" if compile_step else "pytorch-eager"
        rows.append(row("predict", f"rows_{n}", device_name, scale, timing, n,
                        2.0 * forward_macs(hidden) * n, ceiling, impl))
    return rows


def peer_setup(description, suites, compile_help="also run under torch.compile"):
    """The command line every peer shares, FP32 settings (TF32 off, like mbmpo's kernels) and the
    GEMM ceiling measured in this run: returns (args, device, device_name, ceiling)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=suites + ["all"], default="all")
    parser.add_argument("--scale", choices=["small", "paper", "large"], default="paper")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help=compile_help)
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return args, device, device_name, gemm_ceiling(device, args.scale)


def main():
    args, device, device_name, ceiling = peer_setup(__doc__, ["model_fit", "predict"])
    rows = []
    for compile_step in ([False, True] if args.compile else [False]):
        if args.suite in ("model_fit", "all"):
            rows.append(fit_case(device, args.scale, compile_step, ceiling, device_name))
        if args.suite in ("predict", "all"):
            rows.extend(predict_cases(device, args.scale, compile_step, ceiling, device_name))
    emit(rows, args.json)

if __name__ == "__main__":
    main()
