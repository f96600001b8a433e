#!/usr/bin/env bash
# Configures and builds mbmpo into BUILD_DIR (default: build). Extra arguments go to cmake's
# configure step, e.g. -DCMAKE_CUDA_ARCHITECTURES=80;90 or -DMBMPO_CUDA=OFF.
# MBMPO_JOBS sets the parallel build jobs (default 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-build}
shift || true

# The CUDA toolkit's usual home is not always on PATH.
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# The Python package builds against the project's .venv (scripts/setup.sh makes it).
python=()
[ -x "$root/.venv/bin/python" ] && python=(-DPython_EXECUTABLE="$root/.venv/bin/python")
if [ ! -f "$root/$build_dir/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$root/$build_dir" "${generator[@]}" "${python[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
elif [ $# -gt 0 ]; then
  cmake "$root/$build_dir" "$@"
fi
cmake --build "$root/$build_dir" -j "${MBMPO_JOBS:-2}"
