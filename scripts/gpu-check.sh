#!/usr/bin/env bash
# The one command for a GPU window. On the GPU machine, from the checkout root, with the build-gpu/
# bundle that scripts/gpu-bundle.sh made on the build machine:
#   bash scripts/gpu-check.sh OUTDIR [--budget SECONDS]            # stage 1 (default 470 s)
#   bash scripts/gpu-check.sh OUTDIR --stage 2 [--budget SECONDS]  # the rest, when the window allows
# Stage 1, most important first: pre-flight; the cases that group seeds (a group must equal its
# seeds' separate runs); the library's CUDA cases; the trainer's CUDA cases; compute-sanitizer
# (memcheck, then racecheck and synccheck); the paper-scale suites with the cuBLAS ceiling of the
# same run; two paper-default half_cheetah iterations. Stage 2: the PyTorch peers (eager,
# torch.compile with CUDA graphs) through bench/compare.py, the large scale, Nsight Compute over
# one meta-update, eight seeds in one process, initcheck.
#
# Every step appends to OUTDIR the moment it ends, so a command killed at any instant leaves
# readable files; a step that no longer fits in the budget is listed as NOT RUN (time). At most 7
# files: summary.txt (a line per step: PASS, FAIL or NOT RUN, with seconds and the first error
# lines), tests.log, sanitizer.log, bench.log, bench.json, train-progress.csv, and logs.tar.gz of
# the rest only when time is left. Exit 0: every step ran and passed; 1: one failed or did not
# run; 2: refused (no GPU, no bundle, bad arguments), with one line on stderr.
# LD_LIBRARY_PATH is set for the project's own binaries only, never for the PyTorch peers.
# MBMPO_PYTHON names a Python with PyTorch (default python3).
set -uo pipefail

refuse() {
  echo "gpu-check: $*" >&2
  exit 2
}
out="" budget=470 stage=1
while [ $# -gt 0 ]; do
  case $1 in
    --budget) [ $# -ge 2 ] || refuse "--budget needs a number of seconds"; budget=$2; shift 2 ;;
    --stage) [ $# -ge 2 ] || refuse "--stage needs 1 or 2"; stage=$2; shift 2 ;;
    -*) refuse "unknown option '$1' (usage: gpu-check.sh OUTDIR [--budget SECONDS] [--stage 1|2])" ;;
    *) [ -z "$out" ] || refuse "one OUTDIR only, got '$out' and '$1'"; out=$1; shift ;;
  esac
done
[ -n "$out" ] || refuse "usage: gpu-check.sh OUTDIR [--budget SECONDS] [--stage 1|2]"
[[ $budget =~ ^[0-9]+$ ]] && [ "$budget" -ge 30 ] || refuse "--budget must be a whole number of seconds >= 30, got '$budget'"
[[ $stage =~ ^[12]$ ]] || refuse "--stage must be 1 or 2, got '$stage'"
case $out in /*) ;; *) out="$PWD/$out" ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=build-gpu
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  refuse "no NVIDIA GPU on this machine (nvidia-smi -L lists none); run it on the GPU machine"
fi
[ -x "$build/apps/mbmpo" ] && [ -f "$build/bundle-root.txt" ] ||
  refuse "no bundle in $root/$build: run scripts/gpu-bundle.sh on the build machine and carry $build"

start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }
mkdir -p "$out"
summary="$out/summary.txt" tests="$out/tests.log" sanitizer="$out/sanitizer.log" bench="$out/bench.log"
scratch=$(mktemp -d)  # what is only worth keeping if the run ends: run directories, the tarball's logs
trap 'rm -rf "$scratch"' EXIT
{
  echo "gpu-check stage $stage: commit $(cat "$build/bundle-commit.txt" 2>/dev/null), $(date -u +%FT%TZ), budget $budget s"
  echo "device: $(nvidia-smi -L | head -1)"
} >> "$summary"

# The bundle came from another path: point its CTest files and the tests' data paths at this one.
built_at=$(cat "$build/bundle-root.txt")
if [ "$built_at" != "$root" ]; then
  grep -rlF "$built_at" "$build" --include='*.cmake' | xargs -r sed -i "s|$built_at|$root|g"
  echo "$root" > "$build/bundle-root.txt"
fi
libs="$root/$build/runtime-libs:/usr/local/cuda/lib64"
python=${MBMPO_PYTHON:-python3}
binary="$root/$build/apps/mbmpo"
# The project's own binaries: its libraries first, a GPU case that cannot run fails.
own() {
  env LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" MBMPO_REQUIRE_GPU=1 MBMPO_BINARY="$binary" \
    MBMPO_TEST_DATA_DIR="$root/tests" "$@"
}

status=0
# step NAME CAP LOG COMMAND...: runs COMMAND under a timeout of CAP seconds (less if the budget
# has less), appending its output to LOG as it comes, then one line to the summary.
step() {
  local name=$1 cap=$2 log=$3
  shift 3
  local time_left
  time_left=$(left)
  if [ "$time_left" -lt 15 ]; then
    echo "NOT RUN (time)  $name" >> "$summary"
    status=1
    return 1
  fi
  [ "$cap" -le $((time_left - 5)) ] || cap=$((time_left - 5))
  echo "== $name ($(date -u +%T), at most $cap s)" >> "$log"
  local began code
  began=$(date +%s)
  # The helpers below are shell functions: the timeout runs them in a child bash (exported).
  timeout --kill-after=5 "$cap" bash -c '"$@"' step "$@" 2>&1 | tee -a "$log" > "$scratch/step.txt"
  code=${PIPESTATUS[0]}
  local seconds=$(($(date +%s) - began)) result=PASS
  case $code in
    0) ;;
    124|137) result="FAIL (time, $cap s)" ;;
    *) result="FAIL (exit $code)" ;;
  esac
  if grep -qE 'ERROR SUMMARY: [1-9]|RACECHECK SUMMARY: [1-9]' "$scratch/step.txt"; then result="FAIL (sanitizer)"; fi
  echo "$result  $name  ${seconds}s" >> "$summary"
  if [ "$result" != PASS ]; then
    status=1
    grep -E ': Failure$|^\[  FAILED  \] [^0-9]|^Expected|^Which is|^  Actual|Value of|MBMPO_REQUIRE_GPU=1 but|CUDA error|cuBLAS error|exception|^========= [A-Z]|not found|Error' \
      "$scratch/step.txt" | head -12 | sed 's/^/    /' >> "$summary"
  fi
  [ "$result" = PASS ]
}
# Runs one test binary's cases of a filter (CUDA instances of the parametrised tests, and the
# CUDA-only cases).
cases() { own "$root/$build/tests/$1" --gtest_filter="$2" --gtest_color=no; }
cuda_cases='*/cuda:*Cuda*:*CUDA*'
# bench.json: every row so far, rewritten whole (temporary file, then rename) after each suite.
merge_rows() {
  "$python" - "$1" "$out/bench.json" <<'EOF'
import json, os, sys
new, path = sys.argv[1], sys.argv[2]
rows = json.load(open(path)) if os.path.exists(path) else []
try:
    rows += json.load(open(new))
except (OSError, ValueError):
    pass
json.dump(rows, open(path + ".tmp", "w"), indent=1)
os.replace(path + ".tmp", path)
EOF
}

preflight() {
  uname -a
  nvidia-smi -L
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  local missing=0 file dir
  for file in "$binary" "$root/$build"/tests/test_*; do
    if env LD_LIBRARY_PATH="$libs" ldd "$file" | grep -q 'not found'; then
      missing=1
      echo "$file: $(env LD_LIBRARY_PATH="$libs" ldd "$file" | grep 'not found' | tr -s ' \t' ' ' | head -3)"
    fi
  done
  if [ $missing -eq 1 ]; then
    # CUDA's libraries elsewhere: the toolkit's other versions, or PyTorch's wheels.
    for dir in /usr/local/cuda*/lib64 /usr/local/cuda*/targets/x86_64-linux/lib \
      $("$python" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null | xargs -n1 -I{} sh -c 'ls -d {}/nvidia/*/lib 2>/dev/null'); do
      [ -e "$dir/libcublas.so.13" ] || [ -e "$dir/libcudart.so.13" ] || continue
      echo "adding $dir to the project's library path"
      libs="$libs:$dir"
    done
    env LD_LIBRARY_PATH="$libs" ldd "$binary" | grep 'not found' && return 1
  fi
  own "$binary" info
}
# preflight changes the library path for every later step, so it runs in this shell.
preflight_step() {
  echo "== pre-flight ($(date -u +%T))" >> "$tests"
  local began code
  began=$(date +%s)
  preflight > "$scratch/step.txt" 2>&1
  code=$?
  cat "$scratch/step.txt" >> "$tests"
  if [ $code -eq 0 ]; then
    echo "PASS  pre-flight  $(($(date +%s) - began))s" >> "$summary"
  else
    echo "FAIL (exit $code)  pre-flight  $(($(date +%s) - began))s" >> "$summary"
    grep -E 'not found|rror' "$scratch/step.txt" | head -8 | sed 's/^/    /' >> "$summary"
    status=1
  fi
}

train_run() {  # the run directory's progress.csv reaches OUTDIR even when the run is cut off
  local dir=$1
  shift
  own "$binary" train --env half_cheetah --device cuda --run-dir "$dir" "$@"
  local code=$?
  [ -f "$dir/progress.csv" ] && cp "$dir/progress.csv" "$out/train-progress.csv"
  return $code
}

export root build out libs python binary
export -f own cases train_run
if [ "$stage" = 1 ]; then
  echo "steps: pre-flight, group: ensemble fit, group: rollout, group: meta-update, library (9 binaries), trainer, memcheck (4), racecheck (2), synccheck (2), bench (5 suites), train" >> "$summary"
  preflight_step
  export libs  # with what the pre-flight added
  # A group of seeds must give its seeds' own bits: the first thing a new GPU is asked.
  step "group: ensemble fit equals separate fits" 60 "$tests" \
    cases test_dynamics_ensemble '*SeedsFittedTogetherEqualFitsOfTheirOwn*/cuda'
  step "group: rollout equals separate rollouts" 60 "$tests" \
    cases test_policy '*SeedsInOneRolloutEqualRolloutsOfTheirOwn*/cuda:*BroadcastBackends*/cuda'
  step "group: meta-update equals separate updates" 60 "$tests" \
    cases test_meta_update '*SeedsEqualSeparateUpdates*/cuda'
  # CPU against CUDA and determinism first, then the rest.
  for binary_name in test_policy test_meta_update test_dynamics_ensemble test_ensemble_linear test_determinism \
    test_core test_philox test_dataset test_sampler; do
    step "library: $binary_name CUDA cases" 90 "$tests" cases "$binary_name" "$cuda_cases"
  done
  step "trainer: one seed twice, a group against separate runs, no allocation, CUDA against CPU" 150 "$tests" \
    cases test_train '*TwoRunsWithOneSeedGiveIdenticalFiles/cuda:*SeedsInOneProcessEqualSeparateRuns/cuda:*MetaStepsAfterTheFirstAllocateNothing/cuda:Train.OneIterationOnCudaMatchesTheCpuBackend:*WidePolicyTrainsWithTheSmokePreset/cuda'
  if command -v compute-sanitizer >/dev/null; then
    for binary_name in test_policy test_meta_update test_ensemble_linear test_dynamics_ensemble; do
      step "memcheck: $binary_name" 90 "$sanitizer" \
        own compute-sanitizer --tool memcheck --error-exitcode 99 "$root/$build/tests/$binary_name" --gtest_filter="$cuda_cases"
    done
    # racecheck runs 40-300x slower than a plain run (H200, session 18): it skips the cases it
    # already cleared there (no hazard) so that the rest fit its cap.
    declare -A racecheck_cleared=(
      [test_policy]='*RolloutOfHorizon200*:*WithTerminations*:*WidePolicyRollout*:*RolloutWithoutCudaGraph*'
      [test_meta_update]='*BatchedSolve*:*StepStaysInTheTrustRegion*:*FirstOrderAndSubsampled*:*ZeroGradientKeepsTheta*:*OperatorsMatchTheDoubleReference*')
    for binary_name in test_policy test_meta_update; do
      step "racecheck: $binary_name" 120 "$sanitizer" \
        own compute-sanitizer --tool racecheck --error-exitcode 99 "$root/$build/tests/$binary_name" \
        --gtest_filter="$cuda_cases:-${racecheck_cleared[$binary_name]}"
    done
    for binary_name in test_policy test_meta_update; do
      step "synccheck: $binary_name" 90 "$sanitizer" \
        own compute-sanitizer --tool synccheck --error-exitcode 99 "$root/$build/tests/$binary_name" --gtest_filter="$cuda_cases"
    done
  else
    echo "FAIL  compute-sanitizer not found" >> "$summary"
    status=1
  fi
  # The ceiling first: every later row's % peak is against the ceiling measured in this run.
  for suite in peak rollout inner_step meta_update model_fit; do
    step "bench: $suite (paper)" 60 "$bench" own "$binary" bench --suite "$suite" --scale paper --device cuda \
      --json "$scratch/$suite.json"
    merge_rows "$scratch/$suite.json"
  done
  # --threads: the start-state resets on every host core (half of an iteration on 2, session 18).
  step "train: 2 paper-default half_cheetah iterations" 200 "$bench" train_run "$scratch/train" --iterations 2 \
    --threads "$(nproc)"
else
  echo "steps: peers (5 suites), large scale, ncu, seeds 0-7, initcheck" >> "$summary"
  preflight > "$scratch/preflight.txt" 2>&1 || true  # only for the library path
  export libs
  # bench/compare.py runs mbmpo through this wrapper: the bundle's libraries for mbmpo alone.
  printf '#!/usr/bin/env bash\nexec env LD_LIBRARY_PATH="%s" "%s" "$@"\n' "$libs" "$binary" > "$scratch/mbmpo"
  chmod +x "$scratch/mbmpo"
  for suite in rollout inner_step meta_update model_fit predict; do
    # The peers run with PyTorch's own libraries: only mbmpo's binary gets the bundle's path.
    step "peers: $suite (paper; eager, torch.compile)" 90 "$bench" "$python" bench/compare.py \
      --binary "$scratch/mbmpo" --suite "$suite" --scale paper --device cuda --python "$python" --compile \
      --out "$scratch/peers-$suite"
    for rows in "$scratch/peers-$suite"/*.json; do [ -f "$rows" ] && merge_rows "$rows"; done
  done
  for suite in rollout predict; do
    step "bench: $suite (large)" 90 "$bench" own "$binary" bench --suite "$suite" --scale large --device cuda \
      --json "$scratch/large-$suite.json"
    merge_rows "$scratch/large-$suite.json"
  done
  if command -v ncu >/dev/null; then
    step "ncu: one paper-scale meta-update" 150 "$bench" own ncu --set basic --csv --page raw --launch-count 400 \
      "$binary" bench --suite meta_update --scale paper --device cuda
  fi
  step "seeds: --seeds 0-7, 2 paper-default iterations" 200 "$bench" train_run "$scratch/seeds" --iterations 2 --seeds 0-7 \
    --threads "$(nproc)"
  [ -d "$scratch/seeds/seed-0" ] && cp "$scratch/seeds/seed-0/progress.csv" "$out/train-progress.csv" 2>/dev/null
  if command -v compute-sanitizer >/dev/null; then
    step "initcheck: test_policy" 90 "$sanitizer" \
      own compute-sanitizer --tool initcheck --error-exitcode 99 "$root/$build/tests/test_policy" --gtest_filter="$cuda_cases"
  fi
fi

echo "gpu-check stage $stage: $([ $status -eq 0 ] && echo PASS || echo 'FAIL or NOT RUN') in $(($(date +%s) - start)) s" >> "$summary"
# The run directories' other files, only with time to spare.
if [ "$(left)" -gt 10 ]; then
  tar -czf "$out/logs.tar.gz.tmp" -C "$scratch" . 2>/dev/null && mv "$out/logs.tar.gz.tmp" "$out/logs.tar.gz"
fi
exit $status
