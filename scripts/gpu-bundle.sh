#!/usr/bin/env bash
# Builds the GPU programs (test_cuda, moegrad, the benchmarks) here, where nvcc and the Debian
# packages are, and packs them with the shared libraries they need beyond the C/C++ runtime
# and CUDA into one tarball, for a GPU machine that can install nothing (no network, no apt).
# There: scripts/gpu-check.sh --bundle FILE. Needs nvcc here; the GPU machine needs the
# driver and a CUDA toolkit of the same major version (for libcudart and libcublas).
#
# Usage: scripts/gpu-bundle.sh [--out FILE] [--arch SM] [--build DIR]
#   --out FILE   tarball path (default: BUILD/gpu-bundle.tar.xz)
#   --arch SM    CMAKE_CUDA_ARCHITECTURES (default: 90, the H100)
#   --build DIR  build directory (default: build-gpu)
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "gpu-bundle: $*" >&2; exit 1; }

BUILD=build-gpu OUT_FILE="" ARCH=90
while (($#)); do
  case "$1" in
    --out) [[ $# -ge 2 ]] || die "--out needs a file"; OUT_FILE=$2; shift 2 ;;
    --arch) [[ $# -ge 2 ]] || die "--arch needs a value"; ARCH=$2; shift 2 ;;
    --build) [[ $# -ge 2 ]] || die "--build needs a folder"; BUILD=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-bundle: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
OUT_FILE=${OUT_FILE:-$BUILD/gpu-bundle.tar.xz}

# -march=native would tie the programs to this machine's CPU, not the GPU machine's.
MOEGRAD_BUILD_DIR=$BUILD MOEGRAD_CMAKE_ARGS="-DMOEGRAD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=$ARCH \
-DMOEGRAD_NATIVE=OFF ${MOEGRAD_CMAKE_ARGS:-}" MOEGRAD_BUILD_TARGETS="test_cuda moegrad bench_gemm bench_elementwise bench_attention bench_host" \
  ./scripts/setup.sh
PROGRAMS=(tests/test_cuda app/moegrad bench/bench_gemm bench/bench_elementwise bench/bench_attention
  bench/bench_host)
for p in "${PROGRAMS[@]}"; do [[ -x $BUILD/$p ]] || die "$BUILD/$p was not built"; done

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/lib"
for p in "${PROGRAMS[@]}"; do
  mkdir -p "$STAGE/$(dirname "$p")"
  strip -o "$STAGE/$p" "$BUILD/$p"
done
# Every library the programs load, except glibc's, the C++ runtime's and CUDA's, which the
# GPU machine has in versions that match its driver.
for p in "${PROGRAMS[@]}"; do ldd "$BUILD/$p"; done | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' |
  sort -u | while read -r name path; do
    case "$name" in
      libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libstdc++.so*|libgcc_s.so*) ;;
      libcuda*|libcublas*|libnv*) ;;
      *) cp -L "$path" "$STAGE/lib/$name" ;;
    esac
  done
git rev-parse HEAD >"$STAGE/commit" 2>/dev/null || echo unknown >"$STAGE/commit"
echo "$ARCH" >"$STAGE/arch"
/usr/local/cuda/bin/nvcc --version 2>/dev/null | grep -i release | sed 's/.*release //' >"$STAGE/nvcc" ||
  nvcc --version | grep -i release | sed 's/.*release //' >"$STAGE/nvcc"
mkdir -p "$(dirname "$OUT_FILE")"
tar -C "$STAGE" -cJf "$OUT_FILE.tmp" . && mv "$OUT_FILE.tmp" "$OUT_FILE"
echo "gpu-bundle: $OUT_FILE ($(du -h "$OUT_FILE" | cut -f1)): ${PROGRAMS[*]} + $(ls "$STAGE/lib" | tr '\n' ' ')"
