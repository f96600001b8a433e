#!/usr/bin/env python3
"""Runs mbmpo's benchmark suites and their PyTorch peers side by side and prints the ratios.

  python3 bench/compare.py --binary build/apps/mbmpo --suite all --scale paper --device cuda \
      [--python .venv/bin/python] [--compile] [--out DIR]

For each case both produce, prints ours and the peer's throughput and ours/peer (above 1: mbmpo
is faster). "% ceil" is against one hardware ceiling for both sides: the fastest FP32 GEMM either
side measured in this run (mbmpo's Eigen product on every thread, or the peer's torch.mm).
Without PyTorch the peer is skipped with a message and only mbmpo's rows are shown.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

PEERS = {"model_fit": "ensemble_peer.py", "predict": "ensemble_peer.py", "rollout": "rollout_peer.py",
         "inner_step": "rollout_peer.py", "meta_update": "meta_update_peer.py"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default="build/apps/mbmpo")
    parser.add_argument("--suite", default="all", choices=list(PEERS) + ["all"])
    parser.add_argument("--scale", default="paper", choices=["small", "paper", "large"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--python", default=sys.executable, help="Python with PyTorch for the peers")
    parser.add_argument("--compile", action="store_true", help="also time the peers under torch.compile")
    parser.add_argument("--out", default=None, help="keep the JSON rows in this folder")
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="mbmpo-compare-")
    os.makedirs(out, exist_ok=True)
    suites = list(PEERS) if args.suite == "all" else [args.suite]

    rows = []
    ceilings = []  # (TFLOP/s, what measured it)
    for suite in suites:
        ours_json = os.path.join(out, f"mbmpo_{suite}.json")
        subprocess.run([args.binary, "bench", "--suite", suite, "--scale", args.scale, "--device", args.device,
                        "--json", ours_json], check=True)
        everything = json.load(open(ours_json))
        ceilings += [(r["tflops"], f"mbmpo {r['case']}") for r in everything
                     if r["suite"] == "peak" and r.get("tflops", 0) > 0]
        ours = [r for r in everything if r["suite"] == suite]
        for r in ours:  # "20x50x200/graph" and "/stream" compare with the peer's "20x50x200"
            r["peer_case"] = r["case"].split("/")[0]
        for r in ours:
            r["impl"] = "mbmpo"
        rows += ours
        peer_json = os.path.join(out, f"peer_{suite}.json")
        here = os.path.dirname(os.path.abspath(__file__))
        command = [args.python, os.path.join(here, "peers", PEERS[suite]), "--suite", suite, "--scale", args.scale,
                   "--device", args.device, "--json", peer_json] + (["--compile"] if args.compile else [])
        result = subprocess.run(command)
        if result.returncode == 3:
            print(f"compare: peer for {suite} skipped (PyTorch missing for {args.python})", file=sys.stderr)
            continue
        if result.returncode != 0:  # keep ours: a peer that fails (e.g. torch.compile) loses only its rows
            print(f"compare: peer for {suite} failed (exit {result.returncode}); its rows are left out",
                  file=sys.stderr)
            continue
        peer = json.load(open(peer_json))
        ceilings += [(r["ceiling_tflops"], "PyTorch torch.mm") for r in peer if "ceiling_tflops" in r]
        rows += peer

    ceiling, ceiling_source = max(ceilings) if ceilings else (0.0, "none measured")
    print(f"\nhardware ceiling in this run: {ceiling:.3f} TFLOP/s ({ceiling_source}); "
          f"mbmpo's best: {max((c for c, s in ceilings if s.startswith('mbmpo')), default=0):.3f}, "
          f"PyTorch's best: {max((c for c, s in ceilings if s.startswith('PyTorch')), default=0):.3f}")
    for r in rows:
        r["pct_ceiling"] = 100.0 * r.get("tflops", 0) / ceiling if ceiling else 0.0
    print(f"\n{'case':<50}{'impl':<18}{'median ms':>11}{'items/s':>15}{'TFLOP/s':>9}{'% ceil':>8}{'ours/peer':>11}")
    for r in rows:
        ratio = ""
        if r["impl"] != "mbmpo":
            mine = [m for m in rows if m["impl"] == "mbmpo" and m["suite"] == r["suite"] and m["peer_case"] == r["case"]]
            if mine:
                ratio = f"{mine[0]['items_per_s'] / r['items_per_s']:.2f}"
        print(f"{r['suite'] + '/' + r['case']:<50}{r['impl']:<18}{r['median_s'] * 1e3:>11.3f}"
              f"{r['items_per_s']:>15.0f}{r.get('tflops', 0):>9.3f}{r['pct_ceiling']:>8.1f}{ratio:>11}")
    with open(os.path.join(out, "side_by_side.json"), "w") as f:
        json.dump({"ceiling_tflops": ceiling, "ceiling_source": ceiling_source, "rows": rows}, f, indent=2)
    print(f"\nrows kept in {out}")


if __name__ == "__main__":
    main()
