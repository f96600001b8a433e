#!/usr/bin/env bash
# Builds build-gpu/ on this (CPU) machine for an offline GPU machine (no MuJoCo, CLI11, GoogleTest
# or Eigen there, no network): Release, CUDA architecture MBMPO_CUDA_ARCH (default 90, H100),
# tests and benchmarks included; copies next to the binaries the shared libraries such a machine
# lacks; drops what is not needed at run time; prints the bundle's size (must stay under 48 MiB,
# the checkout travels in at most 64 MiB). Then, on the GPU machine:
#   bash scripts/gpu-check.sh OUTDIR            # stage 1: tests, sanitizers, suites, 2 iterations
#   bash scripts/gpu-check.sh OUTDIR --stage 2  # PyTorch peers, large scale, ncu, 8 seeds
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=build-gpu
arch=${MBMPO_CUDA_ARCH:-90}
limit_mib=48

bash scripts/setup.sh
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
command -v nvcc >/dev/null || { echo "gpu-bundle: nvcc not found: install the CUDA toolkit (README.md)" >&2; exit 2; }

# A fresh configure each time: the bundle must not carry a CPU-only cache or stale objects.
rm -rf "$build"
# No Python package: the GPU machine has neither the project's .venv nor the network to make one
# (its CUDA paths are the library's, which the C++ tests cover).
# The GPU machine's CPU is unknown: its host code is pinned to x86-64-v3 (AVX2/FMA), which any
# server CPU of the last decade runs (an AVX-512 build would refuse one without it).
bash scripts/build.sh "$build" -DMBMPO_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$arch" -DMBMPO_BUILD_TESTS=ON \
  -DMBMPO_PYTHON=OFF -DMBMPO_CPU_ARCH=x86-64-v3

# Shared libraries the GPU machine lacks: everything outside glibc, libstdc++/libgcc and CUDA's
# own (MuJoCo and its dependencies, OpenMP's runtime).
libs="$build/runtime-libs"
mkdir -p "$libs"
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libgcc_s\.|libstdc\+\+\.|libcuda\.|libcudart\.|libcublas|libcublasLt|libnvToolsExt|libnvrtc)'
for binary in "$build/apps/mbmpo" "$build"/tests/test_*; do
  [ -x "$binary" ] && [ -f "$binary" ] || continue
  ldd "$binary" | awk '/=> \//{print $1, $3}' | while read -r name path; do
    [[ $name =~ $skip ]] && continue
    cp -Lu "$path" "$libs/$name"
  done
done

# Only what runs: binaries, runtime libraries, and the CTest files (ctest reads them there).
find "$build" \( -name '*.o' -o -name '*.a' -o -name '*.ninja' -o -name '.ninja_*' -o -name '*.log' \) -delete
rm -rf "$build/CMakeFiles" "$build"/*/CMakeFiles "$build"/*/*/CMakeFiles "$build/Testing"
strip --strip-unneeded "$build/apps/mbmpo" "$build"/tests/test_* 2>/dev/null || true
# Where the build was made: gpu-check.sh rewrites this path in the CTest files to wherever the
# checkout lands on the GPU machine.
echo "$root" > "$build/bundle-root.txt"
git -C "$root" rev-parse HEAD > "$build/bundle-commit.txt" 2>/dev/null || echo unknown > "$build/bundle-commit.txt"

size_kib=$(du -sk "$build" | cut -f1)
echo "gpu-bundle: $build is $((size_kib / 1024)) MiB ($size_kib KiB; limit $limit_mib MiB), CUDA architecture $arch"
ls -la "$libs"
if [ "$size_kib" -gt $((limit_mib * 1024)) ]; then
  echo "gpu-bundle: the bundle is over $limit_mib MiB" >&2
  exit 1
fi
grep -qx "$build" .git/info/exclude 2>/dev/null || echo "gpu-bundle: add '$build' to .git/info/exclude and name it in the device tool's carry"
