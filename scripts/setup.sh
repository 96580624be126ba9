#!/usr/bin/env bash
# Installs the Debian packages moegrad needs (only those missing), then configures and
# builds into build/. Safe to run again: apt-get runs only when something is missing and
# the build is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libopenblas-openmp-dev libomp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libboost-program-options-dev nlohmann-json3-dev libpcre2-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# nvcc lives outside PATH on a stock CUDA install; CMake finds it through CUDACXX.
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi

BUILD_TYPE="${MOEGRAD_BUILD_TYPE:-Release}"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${MOEGRAD_CMAKE_ARGS:-}
cmake --build build --parallel "$(nproc)"
