#!/usr/bin/env bash
# README command 2: install what is missing, build, and run the whole test suite.
# CUDA cases skip (reason printed) without a usable GPU; MBMPO_REQUIRE_GPU=1 makes them fail instead.
# On a CPU with AVX-512 the default build (build/) runs the CPU backend with AVX-512 (x86-64-v4);
# the suite then runs again on a CPU-only build for x86-64-v3 (build-x86-64-v3/), so that each
# instruction-set path this machine supports is tested. MBMPO_TEST_ONE_PATH=1 skips the second.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh" build
(cd "$root/build" && ctest --output-on-failure -j "${MBMPO_JOBS:-2}")

arch=$(sed -n 's/^MBMPO_CPU_ARCH:STRING=//p' "$root/build/CMakeCache.txt")
if [ "$arch" = "x86-64-v4" ] && [ "${MBMPO_TEST_ONE_PATH:-0}" != 1 ]; then
  echo "run-tests: the same suite on the x86-64-v3 (AVX2/FMA) path"
  bash "$root/scripts/build.sh" build-x86-64-v3 -DMBMPO_CPU_ARCH=x86-64-v3 -DMBMPO_CUDA=OFF
  # The suites that test no arithmetic (the Ray sweeps) skip on this second path, saying so.
  (cd "$root/build-x86-64-v3" && MBMPO_TEST_SECOND_PATH=1 ctest --output-on-failure -j "${MBMPO_JOBS:-2}")
fi
