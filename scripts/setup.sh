#!/usr/bin/env bash
# Installs the Debian packages moegrad needs (only those missing), then configures and
# builds into build/ (or $MOEGRAD_BUILD_DIR). Safe to run again: apt-get runs only when
# something is missing and the build is incremental.
#   MOEGRAD_BUILD_DIR   build folder, relative to the repository root (default: build)
#   MOEGRAD_BUILD_TYPE  CMAKE_BUILD_TYPE (default: Release)
#   MOEGRAD_CMAKE_ARGS  extra configure arguments, e.g. "-DMOEGRAD_CUDA=OFF"
#   MOEGRAD_BUILD_TARGETS  targets to build, separated by spaces (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config python3
  libopenblas-openmp-dev libomp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libboost-program-options-dev nlohmann-json3-dev libpcre2-dev libicu-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null; then
      echo "setup: not root and sudo is missing; install as root: apt-get install ${missing[*]}" >&2
      exit 1
    fi
    SUDO=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# nvcc lives outside PATH on a stock CUDA install; CMake finds it through CUDACXX.
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi

BUILD_DIR="${MOEGRAD_BUILD_DIR:-build}"
BUILD_TYPE="${MOEGRAD_BUILD_TYPE:-Release}"
# The generator is fixed when a build folder is first configured; naming it again for a
# folder configured with another one would make cmake refuse.
GENERATOR=()
[[ -f "$BUILD_DIR/CMakeCache.txt" ]] || GENERATOR=(-G Ninja)
# shellcheck disable=SC2086  # MOEGRAD_CMAKE_ARGS is a list of arguments
cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${MOEGRAD_CMAKE_ARGS:-}
TARGETS=()
for t in ${MOEGRAD_BUILD_TARGETS:-}; do TARGETS+=(--target "$t"); done
cmake --build "$BUILD_DIR" --parallel "$(nproc)" "${TARGETS[@]}"
