#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages mbmpo needs that are missing; does nothing when all are
# there. The CUDA toolkit is not installed here (see README.md): without nvcc the build is CPU-only.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config
  libmujoco-dev libqhull-dev   # MuJoCo C API; its CMake config names qhull's include folder
  libcli11-dev                 # command line
  libgtest-dev                 # tests
  libeigen3-dev                # CPU backend matrix products
  nlohmann-json3-dev           # JSON logs, configs, benchmark records
  libtomlplusplus-dev          # config.toml
  libxxhash-dev                # checkpoint checksums
  libegl-dev libegl-mesa0 libgl1-mesa-dri  # offscreen rendering without a display (EGL, llvmpipe)
)
# The Python package's: wanted, not required (without them the package is not built or tested,
# and the build says so).
python_packages=(python3-dev python3-venv)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done

root=$(cd "$(dirname "$0")/.." && pwd)

# The Python package's build and test tools (nanobind, scikit-build-core, numpy, pytest,
# matplotlib, gymnasium, ray[tune], safetensors, moviepy, mypy: python/requirements.txt) in the project's own virtual environment.
python_tools() {
  local ok=true
  if [ ! -x "$root/.venv/bin/python" ]; then
    echo "setup: creating .venv (python3 -m venv)"
    python3 -m venv "$root/.venv" || ok=false
  fi
  if $ok && ! "$root/.venv/bin/python" -c "import nanobind, numpy, pytest, matplotlib, gymnasium, ray.tune, psutil, safetensors, moviepy, mypy" 2>/dev/null; then
    echo "setup: installing python/requirements.txt into .venv"
    "$root/.venv/bin/python" -m pip install -q -r "$root/python/requirements.txt" || ok=false
  fi
  if ! $ok; then
    rm -rf "$root/.venv"
    echo "setup: WARNING: could not set up .venv with python/requirements.txt: the Python package will not be" \
         "built or tested (the C++ library, CLI and tests are not affected)" >&2
  fi
}

missing_python=()
for package in "${python_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing_python+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ] && [ ${#missing_python[@]} -eq 0 ]; then
  echo "setup: all packages present"
  python_tools
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ ${#missing_python[@]} -gt 0 ]; then
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing_python[@]}" ||
    echo "setup: WARNING: could not install ${missing_python[*]}" >&2
fi
python_tools
