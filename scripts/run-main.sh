#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main job on a small default.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh" build
# Until the trainer lands (`mbmpo train`), the main job shows the build and the device and
# collects real random-policy data, the largest piece that works end to end so far.
"$root/build/apps/mbmpo" info
mkdir -p "$root/out"
"$root/build/apps/mbmpo" collect --env half_cheetah --episodes 10 --horizon 200 --seed 0 \
  --threads 2 --out "$root/out/half_cheetah_random.csv"
