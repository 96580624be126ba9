#!/usr/bin/env bash
# The CPU test suite under AddressSanitizer and UndefinedBehaviorSanitizer (leaks included):
# builds into build-sanitize/ (CUDA and benchmarks off) and runs ctest there. Not part of
# ./scripts/test.sh: the instrumented build takes about 40 minutes on 2 cores. Any report
# fails its test (-fno-sanitize-recover), and the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

# CMake reads CXXFLAGS and LDFLAGS when it first configures the folder.
export CXXFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
export LDFLAGS="-fsanitize=address,undefined"
MOEGRAD_BUILD_DIR=build-sanitize MOEGRAD_BUILD_TYPE=RelWithDebInfo \
  MOEGRAD_CMAKE_ARGS="-DMOEGRAD_CUDA=OFF -DMOEGRAD_BENCH=OFF" ./scripts/setup.sh

export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 OMP_WAIT_POLICY=passive
ctest --test-dir build-sanitize --output-on-failure -j "$(nproc)" --timeout 600
