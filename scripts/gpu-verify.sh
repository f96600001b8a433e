#!/usr/bin/env bash
# On the GPU machine, from the checkout root, after scripts/gpu-bundle.sh built build-gpu/ elsewhere:
#   bash scripts/gpu-verify.sh OUTDIR
# Runs nvidia-smi, the whole test suite with MBMPO_REQUIRE_GPU=1 (a CUDA case that cannot run
# fails instead of skipping), then compute-sanitizer's memcheck, racecheck, synccheck and
# initcheck over the CUDA test cases of every test binary. Writes OUTDIR/verify.txt (pass or fail
# per test and per tool, with the error lines) and OUTDIR/verify-logs.tar.gz (every log). Stays
# within MBMPO_VERIFY_SECONDS (default 530 s): a step that would start after that is reported as
# not run. Exit 0 when everything ran and passed, 1 otherwise, 2 when there is no GPU or bundle.
set -uo pipefail
script=gpu-verify
out=${1:?usage: gpu-verify.sh OUTDIR}
budget=${MBMPO_VERIFY_SECONDS:-530}
source "$(dirname "$0")/gpu-common.sh"
export MBMPO_REQUIRE_GPU=1
report="$out/verify.txt"
: > "$report"
say() { echo "$*" | tee -a "$report"; }
jobs=$(( $(nproc) > 8 ? 8 : $(nproc) ))

say "gpu-verify: commit $(cat "$build/bundle-commit.txt" 2>/dev/null), $(date -u +%FT%TZ)"
say "device: $(nvidia-smi -L | head -1)"
"$build/apps/mbmpo" info > "$logs/mbmpo-info.txt" 2>&1
status=0

# ---- the whole suite, CUDA cases required ----------------------------------------------------
say ""
say "== ctest (MBMPO_REQUIRE_GPU=1, -j $jobs)"
(cd "$build" && timeout "$(left)" ctest --output-on-failure -j "$jobs" --timeout 300) > "$logs/ctest.txt" 2>&1
ctest_status=$?
grep -E '^ *[0-9]+/[0-9]+ Test +#[0-9]+: ' "$logs/ctest.txt" |
  sed -E 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: ([^ ]+) .*[ .](\*\*\*)?(Passed|Failed|Skipped|Timeout|Not Run|Exception|SEGFAULT|Subprocess aborted|Exit code [0-9]+) .*/\3  \1/' |
  sort -k2 >> "$report"
grep -E 'tests passed|tests failed' "$logs/ctest.txt" | tee -a "$report"
if [ $ctest_status -ne 0 ]; then
  status=1
  say "-- failures (first lines of each):"
  grep -E ': Failure$|^\[  FAILED  \] [^0-9]|^Expected|^Which is|^Value of|^  Actual|MBMPO_REQUIRE_GPU=1 but|CUDA error|cuBLAS error|\*\*\*Timeout|exception' \
    "$logs/ctest.txt" | head -200 >> "$report"
fi

# ---- compute-sanitizer over the CUDA cases of each binary ------------------------------------
# The libraries' own test binaries first; test_train and test_cli run the CLI as a child process
# (followed with --target-processes all) and take longest, so they come last.
binaries=(test_core test_philox test_ensemble_linear test_dynamics_ensemble test_policy test_meta_update
          test_determinism test_dataset test_environment test_gymnasium_parity test_sampler test_cli test_train)
filter='*/cuda:*Cuda*:*CUDA*'
run_tool() {  # tool: every binary's CUDA cases in turn, within the time left
  local tool=$1 binary log result
  for binary in "${binaries[@]}"; do
    [ -x "$build/tests/$binary" ] || continue
    log="$logs/sanitizer-$tool-$binary.txt"
    if [ "$(left)" -lt 20 ]; then
      echo "NOT RUN (time)  $tool $binary" > "$logs/result-$tool-$binary"
      continue
    fi
    timeout "$(( $(left) - 10 ))" compute-sanitizer --tool "$tool" --error-exitcode 99 --target-processes all \
      "$build/tests/$binary" --gtest_filter="$filter" > "$log" 2>&1
    local code=$?
    case $code in
      0) result=PASS ;;
      99) result=FAIL ;;
      124) result="NOT FINISHED (time)" ;;
      *) result="FAIL (test or tool exit $code)" ;;
    esac
    if grep -qE 'ERROR SUMMARY: [1-9]|RACECHECK SUMMARY: [1-9]' "$log"; then result=FAIL; fi
    echo "$result  $tool $binary" > "$logs/result-$tool-$binary"
  done
}
if command -v compute-sanitizer >/dev/null; then
  # The four tools side by side (the machine has the cores; each keeps to its own process).
  for tool in memcheck racecheck synccheck initcheck; do run_tool "$tool" & done
  wait
  say ""
  say "== compute-sanitizer (CUDA cases: --gtest_filter=$filter)"
  for tool in memcheck racecheck synccheck initcheck; do
    for binary in "${binaries[@]}"; do
      [ -f "$logs/result-$tool-$binary" ] || continue
      line=$(cat "$logs/result-$tool-$binary")
      say "$line"
      case $line in
        PASS*) ;;
        *) status=1
           grep -E '^========= (Invalid|Race|Barrier|Uninitialized|Program hit|Error|  )' \
             "$logs/sanitizer-$tool-$binary.txt" 2>/dev/null | head -20 >> "$report" ;;
      esac
    done
  done
else
  say "compute-sanitizer: not found on this machine"
  status=1
fi

say ""
say "gpu-verify: $([ $status -eq 0 ] && echo PASS || echo FAIL) in $(( $(date +%s) - start )) s"
tar -czf "$out/verify-logs.tar.gz" -C "$logs" .
rm -rf "$logs"
exit $status
