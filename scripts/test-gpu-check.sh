#!/usr/bin/env bash
# Proves scripts/gpu-check.sh's behaviour on a machine without a GPU (run by hand, not in CI):
# a copy of the checkout at another path with a bundle made from build/ (built here), fake
# nvidia-smi, compute-sanitizer (5 s a run) and ncu on PATH; the real CUDA cases fail there (no device, and
# MBMPO_REQUIRE_GPU=1), which the summary must say. Checks:
#   - killed with SIGKILL at several moments, OUTDIR always holds a readable summary.txt with its
#     header, and at most 7 files;
#   - an uncut run names every step (PASS, FAIL or NOT RUN) and stays within its budget; with a
#     budget too short for all, the rest are NOT RUN (time);
#   - without a GPU, or without a bundle, or with a bad flag: exit 2 and one line on stderr.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$root/build/apps/mbmpo" ] || { echo "test-gpu-check: build first (scripts/build.sh)" >&2; exit 2; }
work=$(mktemp -d /tmp/gpu-check-test.XXXX)
trap 'rm -rf "$work"' EXIT
copy="$work/elsewhere/checkout"
mkdir -p "$copy"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$copy" 2>/dev/null)
mkdir -p "$copy/build-gpu/apps" "$copy/build-gpu/tests" "$copy/build-gpu/runtime-libs"
cp "$root/build/apps/mbmpo" "$copy/build-gpu/apps/"
cp "$root"/build/tests/test_* "$copy/build-gpu/tests/" 2>/dev/null
echo "/somewhere/else" > "$copy/build-gpu/bundle-root.txt"
git -C "$root" rev-parse HEAD > "$copy/build-gpu/bundle-commit.txt"

fakes="$work/fakes"
mkdir -p "$fakes"
cat > "$fakes/nvidia-smi" <<'EOF'
#!/bin/sh
case "$1" in -L) echo "GPU 0: NVIDIA H200 (UUID: GPU-fake)" ;; *) echo "fake nvidia-smi: H200, 141 GB" ;; esac
EOF
cat > "$fakes/compute-sanitizer" <<'EOF'
#!/bin/sh
sleep 5  # a sanitizer is slow: the kills below land inside its steps
while [ $# -gt 0 ]; do case "$1" in --tool|--error-exitcode) shift 2 ;; --*) shift ;; *) break ;; esac; done
"$@"; code=$?
echo "========= ERROR SUMMARY: 0 errors"
exit $code
EOF
cat > "$fakes/ncu" <<'EOF'
#!/bin/sh
exit 0
EOF
chmod +x "$fakes"/*

failures=0
check() {  # description, condition...
  local what=$1
  shift
  if "$@"; then echo "PASS  $what"; else echo "FAIL  $what"; failures=$((failures + 1)); fi
}
readable_summary() {  # OUTDIR
  [ -s "$1/summary.txt" ] && head -1 "$1/summary.txt" | grep -q '^gpu-check stage' &&
    [ "$(find "$1" -type f | wc -l)" -le 7 ]
}

for moment in 1 3 8 20 45; do
  outdir="$work/out-kill-$moment"
  (cd "$work" && PATH="$fakes:$PATH" setsid bash "$copy/scripts/gpu-check.sh" "$outdir" --budget 120 \
    > /dev/null 2>&1) &
  runner=$!
  sleep "$moment"
  pkill -KILL -s "$(ps -o sid= -p "$(pgrep -P $runner | head -1)" 2>/dev/null | tr -d ' ')" 2>/dev/null
  kill -KILL $runner 2>/dev/null
  wait $runner 2>/dev/null
  check "killed after $moment s: readable summary.txt ($(($(wc -l < "$outdir/summary.txt" 2>/dev/null || echo 0))) lines), at most 7 files" \
    readable_summary "$outdir"
done

outdir="$work/out-whole"
began=$(date +%s)
(cd "$work" && PATH="$fakes:$PATH" bash "$copy/scripts/gpu-check.sh" "$outdir" --budget 150 > /dev/null 2>&1)
code=$?
took=$(($(date +%s) - began))
echo "---- summary of the uncut run (exit $code, $took s):"
cat "$outdir/summary.txt"
echo "----"
check "uncut run: readable summary, at most 7 files" readable_summary "$outdir"
check "uncut run: exit 1 (the CUDA cases fail without a device)" test "$code" -eq 1
check "uncut run: within its budget of 150 s (took $took s)" test "$took" -le 160
for name in pre-flight "group: ensemble fit" "group: rollout" "group: meta-update" "library: test_policy" \
  "trainer:" "memcheck: test_policy" "racecheck: test_policy" "synccheck: test_meta_update" "bench: peak" "train:"; do
  check "uncut run names step '$name'" grep -q "$name" "$outdir/summary.txt"
done
check "uncut run: the CUDA cases' failure is shown" grep -q "MBMPO_REQUIRE_GPU=1 but" "$outdir/summary.txt"
check "uncut run: the bundle's CTest paths point at the copy" grep -qx "$copy" "$copy/build-gpu/bundle-root.txt"

outdir="$work/out-short"
(cd "$work" && PATH="$fakes:$PATH" bash "$copy/scripts/gpu-check.sh" "$outdir" --budget 30 > /dev/null 2>&1)
check "a 30 s budget: the steps that do not fit are listed as NOT RUN (time)" grep -q "^NOT RUN (time)  train:" "$outdir/summary.txt"

one_line_exit_2() {  # what, command...: exit 2 and exactly one line on stderr
  local err
  err=$("${@:2}" 2>&1 >/dev/null)
  local code=$?
  [ $code -eq 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && echo "    $1: $err"
}
check "no GPU: exit 2, one line" one_line_exit_2 "no GPU" env PATH="/usr/bin:/bin" bash "$copy/scripts/gpu-check.sh" "$work/out-nogpu"
rm -rf "$copy/build-gpu"
check "no bundle: exit 2, one line" one_line_exit_2 "no bundle" env PATH="$fakes:$PATH" bash "$copy/scripts/gpu-check.sh" "$work/out-nobundle"
check "bad flag: exit 2, one line" one_line_exit_2 "bad flag" bash "$copy/scripts/gpu-check.sh" "$work/out-bad" --budget soon

echo "test-gpu-check: $([ $failures -eq 0 ] && echo PASS || echo "$failures FAILED")"
[ $failures -eq 0 ]
