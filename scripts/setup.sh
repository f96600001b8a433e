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
  python3-dev python3-venv     # the Python package (its build and test tools go into .venv)
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done

root=$(cd "$(dirname "$0")/.." && pwd)

# The Python package's build and test tools (nanobind, scikit-build-core, numpy, pytest,
# matplotlib, gymnasium: python/requirements.txt) in the project's own virtual environment.
python_tools() {
  if [ ! -x "$root/.venv/bin/python" ]; then
    echo "setup: creating .venv (python3 -m venv)"
    python3 -m venv "$root/.venv"
  fi
  if ! "$root/.venv/bin/python" -c "import nanobind, numpy, pytest, matplotlib, gymnasium" 2>/dev/null; then
    echo "setup: installing python/requirements.txt into .venv"
    "$root/.venv/bin/python" -m pip install -q -r "$root/python/requirements.txt"
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
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
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
python_tools
