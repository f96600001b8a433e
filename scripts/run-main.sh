#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main job on a small default.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh" build
# The main job: a small MB-MPO run (3 iterations of half_cheetah, about 5 s on 2 CPU
# cores; on the GPU when one is usable). A fresh run directory each time.
"$root/build/apps/mbmpo" info
mkdir -p "$root/runs"
run_dir="$root/runs/smoke-$(date +%Y%m%d-%H%M%S)"
"$root/build/apps/mbmpo" train --env half_cheetah --preset smoke --run-dir "$run_dir"
"$root/build/apps/mbmpo" eval --run-dir "$run_dir" --episodes 5
