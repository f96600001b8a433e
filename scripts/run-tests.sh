#!/usr/bin/env bash
# README command 2: install what is missing, build, and run the whole test suite.
# CUDA cases skip (reason printed) without a usable GPU; MBMPO_REQUIRE_GPU=1 makes them fail instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh" build
cd "$root/build"
ctest --output-on-failure -j "${MBMPO_JOBS:-2}"
