# Sourced by gpu-verify.sh and gpu-bench.sh (after they set `script`, `out` and `budget`): refuses
# without a GPU or a bundle (exit 2, one line), makes the bundle usable from wherever the checkout
# landed, and defines `left` (seconds left of the budget). Sets root, build, logs, start.
case $out in /*) ;; *) out="$PWD/$out" ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=build-gpu
start=$(date +%s)
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  echo "$script: no NVIDIA GPU on this machine (nvidia-smi -L lists none); run it on the GPU machine" >&2
  exit 2
fi
if [ ! -x "$build/apps/mbmpo" ] || [ ! -f "$build/bundle-root.txt" ]; then
  echo "$script: no bundle in $build: run scripts/gpu-bundle.sh on the build machine and carry $build" >&2
  exit 2
fi
# The bundle came from another path: point its CTest files and the CLI tests at this one.
built_at=$(cat "$build/bundle-root.txt")
if [ "$built_at" != "$root" ]; then
  grep -rlF "$built_at" "$build" --include='*.cmake' | xargs -r sed -i "s|$built_at|$root|g"
  echo "$root" > "$build/bundle-root.txt"
fi
export LD_LIBRARY_PATH="$root/$build/runtime-libs:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export MBMPO_BINARY="$root/$build/apps/mbmpo" MBMPO_TEST_DATA_DIR="$root/tests"
mkdir -p "$out"
logs=$(mktemp -d)
nvidia-smi > "$logs/nvidia-smi.txt" 2>&1
left() { echo $((budget - ($(date +%s) - start))); }
