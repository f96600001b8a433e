#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main job on a small default.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh" build
# Until the trainer lands (issue: `mbmpo train`), the main job shows the build and the device.
"$root/build/apps/mbmpo" info
