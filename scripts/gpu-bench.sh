#!/usr/bin/env bash
# On the GPU machine, from the checkout root, after scripts/gpu-bundle.sh built build-gpu/ elsewhere:
#   bash scripts/gpu-bench.sh OUTDIR
# Runs, most important first, within MBMPO_BENCH_SECONDS (default 530 s):
#   1. every kernel suite on CUDA at the paper scale next to its PyTorch peer (eager, and
#      torch.compile with CUDA graphs), with the cuBLAS FP32 GEMM and copy ceilings measured in the
#      same run (bench/compare.py);
#   2. three iterations of `mbmpo train --env half_cheetah` at the paper's defaults, with the
#      seconds of every phase; then two with eight seeds in one process (--seeds 0-7), per seed;
#   3. Nsight Compute (--set basic, CSV) over one paper-scale meta-update and a rollout's first
#      kernels: duration, achieved occupancy, DRAM throughput and FP32 FLOP rate per kernel;
#   4. the same suites at the large scale.
# Writes OUTDIR/bench.md (the tables, the training rows, and what did not fit in the time),
# OUTDIR/bench.json (every row), OUTDIR/train-progress.csv and OUTDIR/bench-logs.tar.gz.
# Exit 2 when there is no GPU or no bundle. MBMPO_PYTHON names a Python with PyTorch (default python3).
set -uo pipefail
script=gpu-bench
out=${1:?usage: gpu-bench.sh OUTDIR}
budget=${MBMPO_BENCH_SECONDS:-530}
python=${MBMPO_PYTHON:-python3}
source "$(dirname "$0")/gpu-common.sh"
table="$out/bench.md"
binary="$root/$build/apps/mbmpo"
note() { echo "$*" | tee -a "$table"; }

{
  echo "# gpu-bench: commit $(cat "$build/bundle-commit.txt" 2>/dev/null), $(date -u +%FT%TZ)"
  echo
  echo "device: $(nvidia-smi -L | head -1)"
  echo "driver/CUDA: $(nvidia-smi | grep -oE 'Driver Version: [0-9.]+ +CUDA Version: [0-9.]+' | head -1)"
  echo "PyTorch: $("$python" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)' 2>&1 | tail -1)"
  echo
} > "$table"

suites=(predict rollout inner_step meta_update model_fit)  # most telling first
compare_scale() {  # scale, seconds it may use at most
  local scale=$1 cap=$2 suite seconds
  for suite in "${suites[@]}"; do
    seconds=$(( $(left) < cap ? $(left) : cap ))
    if [ "$seconds" -lt 30 ]; then
      note "- $scale/$suite: not run (time)"
      continue
    fi
    mkdir -p "$logs/$scale"
    timeout "$seconds" "$python" bench/compare.py --binary "$binary" --suite "$suite" --scale "$scale" \
      --device cuda --python "$python" --compile --out "$logs/$scale/$suite" > "$logs/$scale/$suite.txt" 2>&1
    local code=$?
    [ $code -eq 0 ] || note "- $scale/$suite: exit $code$([ $code -eq 124 ] && echo ' (time)'), see bench-logs"
  done
  {
    echo
    echo "## $scale scale (ours/peer above 1: mbmpo faster; % peak against the ceilings measured in the run)"
    echo '```'
    for suite in "${suites[@]}"; do
      sed -n '/^case /,/^rows kept/p' "$logs/$scale/$suite.txt" 2>/dev/null | grep -v '^rows kept'
      grep -h '^ceilings on' "$logs/$scale/$suite.txt" 2>/dev/null | head -1
    done
    echo '```'
  } >> "$table"
}

# 1. The paper scale, every suite (at most 100 s each, so the training below keeps its time).
compare_scale paper 100

# 2. Three paper-default iterations of half_cheetah (the dataset is not yet full: 8k-16k real steps).
run_dir="$logs/train-half_cheetah"
seconds=$(( $(left) < 240 ? $(left) : 240 ))
if [ "$seconds" -ge 60 ]; then
  timeout "$seconds" "$binary" train --env half_cheetah --device cuda --iterations 3 --run-dir "$run_dir" \
    > "$logs/train.txt" 2>&1
  code=$?
  {
    echo
    echo "## mbmpo train --env half_cheetah --device cuda --iterations 3 (paper defaults), exit $code$([ $code -eq 124 ] && echo ' (time)')"
    echo '```'
    grep -E '^iter ' "$logs/train.txt"
    echo '```'
  } >> "$table"
  [ -f "$run_dir/progress.csv" ] && cp "$run_dir/progress.csv" "$out/train-progress.csv"
else
  note "- train: not run (time)"
fi

# 2b. Eight seeds in one process (`--seeds 0-7`), two paper-default iterations: the second
#     iteration's seconds per seed against the single seed's above (issue "Several seeds in one
#     process": at B = 8, at least 4x the per-seed throughput of B = 1), whole and meta-steps alone.
seeds_dir="$logs/train-half_cheetah-seeds"
seconds=$(( $(left) < 200 ? $(left) - 20 : 180 ))
if [ "$seconds" -ge 60 ] && [ -f "$run_dir/progress.csv" ]; then
  timeout "$seconds" "$binary" train --env half_cheetah --device cuda --iterations 2 --seeds 0-7 \
    --run-dir "$seeds_dir" > "$logs/train-seeds.txt" 2>&1
  code=$?
  {
    echo
    echo "## mbmpo train --env half_cheetah --device cuda --iterations 2 --seeds 0-7, exit $code$([ $code -eq 124 ] && echo ' (time)')"
    echo '```'
    grep -E '^iter ' "$logs/train-seeds.txt"
    "$python" - "$run_dir/progress.csv" "$seeds_dir" <<'EOF_SEEDS'
import csv, glob, os, sys
batched = ["rollout_pre", "inner_step", "rollout_post", "meta_gradient", "cg", "line_search"]
def second(path):
    rows = list(csv.DictReader(open(path)))
    return rows[1] if len(rows) > 1 else None
one = second(sys.argv[1])
seeds = [r for r in (second(p) for p in sorted(glob.glob(os.path.join(sys.argv[2], "seed-*", "progress.csv")))) if r]
if not one or len(seeds) < 8:
    print("seeds: the second iteration did not finish for every seed")
    sys.exit(0)
B = len(seeds)
# Each seed's row holds the batch's time for the batched phases, its own for collect and fit.
round_s = max(float(r["seconds_iteration"]) for r in seeds)
meta_b = sum(float(seeds[0]["seconds_" + p]) for p in batched)
meta_1 = sum(float(one["seconds_" + p]) for p in batched)
print(f"B = 1: {float(one['seconds_iteration']):.2f} s per iteration, meta-steps {meta_1:.2f} s")
print(f"B = {B}: {round_s:.2f} s per round ({round_s / B:.2f} s per seed), meta-steps {meta_b:.2f} s ({meta_b / B:.2f} s per seed)")
print(f"per-seed throughput, B = {B} over B = 1: whole iteration {float(one['seconds_iteration']) * B / round_s:.2f}x, meta-steps {meta_1 * B / meta_b:.2f}x")
EOF_SEEDS
    echo '```'
  } >> "$table" 2>&1
else
  note "- seeds: not run ($([ -f "$run_dir/progress.csv" ] && echo time || echo 'no single-seed run to compare'))"
fi

# 3. Nsight Compute on the kernels of one paper-scale meta-update and of a paper-scale rollout's
#    first steps: per kernel, duration, achieved occupancy, DRAM throughput and FP32 FLOP rate.
ncu_metrics=gpu__time_duration.sum,sm__warps_active.avg.pct_of_peak_sustained_active,dram__throughput.avg.pct_of_peak_sustained_elapsed,smsp__sass_thread_inst_executed_op_ffma_pred_on.sum,smsp__sass_thread_inst_executed_op_fadd_pred_on.sum,smsp__sass_thread_inst_executed_op_fmul_pred_on.sum
if command -v ncu >/dev/null && [ "$(left)" -ge 120 ]; then
  for target in "meta_update 400" "rollout 120"; do
    set -- $target
    timeout "$(( $(left) < 150 ? $(left) - 30 : 120 ))" ncu --set basic --metrics "$ncu_metrics" --csv --page raw \
      --launch-count "$2" "$binary" bench --suite "$1" --scale paper --device cuda > "$logs/ncu-$1.csv" 2> "$logs/ncu-$1.log"
  done
  {
    echo
    echo "## Nsight Compute (ncu --set basic): one paper-scale meta-update, a paper-scale rollout's first kernels"
    echo '```'
    "$python" - "$logs"/ncu-*.csv <<'EOF_NCU'
import csv, sys
from collections import defaultdict
rows = defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0.0])  # launches, ns, occupancy %, dram %, flops
for path in sys.argv[1:]:
    lines = [l for l in open(path) if l.startswith('"')]
    if not lines:
        continue
    reader = csv.DictReader(lines)
    for r in reader:
        try:
            name = r["Kernel Name"][:60]
            ns = float(r["gpu__time_duration.sum"].replace(",", ""))
        except (KeyError, ValueError):
            continue  # the units row
        num = lambda k: float(r.get(k, "0").replace(",", "") or 0)
        flops = 2 * num("smsp__sass_thread_inst_executed_op_ffma_pred_on.sum") + \
            num("smsp__sass_thread_inst_executed_op_fadd_pred_on.sum") + num("smsp__sass_thread_inst_executed_op_fmul_pred_on.sum")
        a = rows[name]
        a[0] += 1; a[1] += ns
        a[2] += num("sm__warps_active.avg.pct_of_peak_sustained_active") * ns
        a[3] += num("dram__throughput.avg.pct_of_peak_sustained_elapsed") * ns
        a[4] += flops
print(f"{'kernel':<62}{'launches':>9}{'total us':>11}{'occupancy %':>12}{'DRAM %':>8}{'TFLOP/s':>9}")
for name, (n, ns, occ, dram, flops) in sorted(rows.items(), key=lambda kv: -kv[1][1]):
    print(f"{name:<62}{n:>9}{ns / 1e3:>11.1f}{occ / ns:>12.1f}{dram / ns:>8.1f}{flops / ns / 1e3:>9.3f}")
EOF_NCU
    echo '```'
  } >> "$table" 2>&1
else
  note "- ncu: not run ($(command -v ncu >/dev/null && echo time || echo 'ncu not found'))"
fi

# 4. The large scale, with what time is left.
compare_scale large 200

# Every row in one file.
"$python" - "$logs" "$out/bench.json" <<'EOF'
import glob, json, os, sys
rows = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*", "*", "*.json"))):
    if os.path.basename(path) == "side_by_side.json":
        continue
    try:
        rows += json.load(open(path))
    except (OSError, ValueError):
        pass
json.dump(rows, open(sys.argv[2], "w"), indent=1)
EOF
note ""
note "gpu-bench: done in $(( $(date +%s) - start )) s"
tar -czf "$out/bench-logs.tar.gz" -C "$logs" .
rm -rf "$logs"
