#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds moegrad with CUDA into build-gpu/, runs the CUDA
# tests and then the whole suite, runs compute-sanitizer's memcheck over test_cuda (when
# compute-sanitizer is installed) and the benchmarks (when built), and writes one JSON report.
# Not part of scripts/test.sh: CI has no GPU.
#
# Usage: scripts/gpu-check.sh [--out FILE] [--arch SM] [--skip-build]
#   --out FILE    report path (default: $OUT/gpu-report.json when $OUT is set, else
#                 bench/results/gpu-report-<date>.json)
#   --arch SM     CMAKE_CUDA_ARCHITECTURES (default: 90, the H100)
#   --skip-build  use build-gpu/ as it is
# Exits 1, saying why, when there is no GPU or no CUDA build; once the tests have run it
# always writes the report, and exits 1 when a test or benchmark failed or memcheck found errors.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "gpu-check: $*" >&2; exit 1; }

REPORT="" ARCH=90 SKIP_BUILD=0
while (($#)); do
  case "$1" in
    --out) [[ $# -ge 2 ]] || die "--out needs a file"; REPORT=$2; shift 2 ;;
    --arch) [[ $# -ge 2 ]] || die "--arch needs a value"; ARCH=$2; shift 2 ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
if [[ -z "$REPORT" ]]; then
  if [[ -n "${OUT:-}" ]]; then REPORT="$OUT/gpu-report.json"
  else REPORT="$ROOT/bench/results/gpu-report-$(date +%Y%m%d-%H%M%S).json"; fi
fi
mkdir -p "$(dirname "$REPORT")"
REPORT=$(cd "$(dirname "$REPORT")" && pwd)/$(basename "$REPORT")

# ---- the GPU and the toolkit ----
command -v nvidia-smi >/dev/null ||
  die "no NVIDIA GPU: nvidia-smi not found (this check needs an NVIDIA GPU and its driver)"
GPU_QUERY=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1) ||
  die "no usable NVIDIA GPU: nvidia-smi failed: $GPU_QUERY"
[[ -n "$GPU_QUERY" ]] || die "no NVIDIA GPU: nvidia-smi lists no device"
export PATH="$PATH:/usr/local/cuda/bin"
command -v nvcc >/dev/null ||
  die "nvcc not found (on PATH or in /usr/local/cuda/bin): install the CUDA toolkit"
NVCC_VERSION=$(nvcc --version | grep -i release | sed 's/.*release //')
echo "gpu-check: $GPU_QUERY; nvcc $NVCC_VERSION"

BUILD=build-gpu
LOGS="${OUT:+$OUT/gpu-check-logs}"
LOGS="${LOGS:-$ROOT/$BUILD/gpu-check-logs}"
mkdir -p "$LOGS"
rm -f "$LOGS"/*

# ---- build ----
if ((!SKIP_BUILD)); then
  MOEGRAD_BUILD_DIR=$BUILD \
    MOEGRAD_CMAKE_ARGS="-DMOEGRAD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=$ARCH ${MOEGRAD_CMAKE_ARGS:-}" \
    ./scripts/setup.sh 2>&1 | tee "$LOGS/build.log" || die "build failed (log: $LOGS/build.log)"
fi
[[ -x $BUILD/app/moegrad ]] || die "$BUILD/app/moegrad is missing: build $BUILD first"
$BUILD/app/moegrad info | tee "$LOGS/info.log"
grep -q '^cuda built: *yes' "$LOGS/info.log" || die "$BUILD was built without CUDA (is nvcc usable?)"
grep -q '^cuda devices: *[1-9]' "$LOGS/info.log" || die "the CUDA runtime sees no device (driver problem?)"

# ---- tests: the CUDA ones first, then everything ----
status=0
ctest --test-dir $BUILD -L cuda --no-tests=error --output-on-failure -j4 --timeout 600 \
  --output-junit "$LOGS/ctest-cuda.xml" 2>&1 | tee "$LOGS/ctest-cuda.log" || status=1
ctest --test-dir $BUILD --output-on-failure -j4 --timeout 600 \
  --output-junit "$LOGS/ctest-all.xml" 2>&1 | tee "$LOGS/ctest-all.log" || status=1

# ---- compute-sanitizer ----
SANITIZER=$(command -v compute-sanitizer || true)
if [[ -n "$SANITIZER" ]]; then
  echo "gpu-check: $SANITIZER --tool memcheck $BUILD/tests/test_cuda"
  timeout 1200 "$SANITIZER" --tool memcheck "$BUILD/tests/test_cuda" >"$LOGS/memcheck.log" 2>&1 ||
    echo "gpu-check: memcheck exited non-zero (see $LOGS/memcheck.log)"
  tail -n 3 "$LOGS/memcheck.log"
  # A short training run (one step of tiny.cfg on the GPU) under memcheck and racecheck.
  for tool in memcheck racecheck; do
    echo "gpu-check: $tool on one training step of experiments/bench/tiny.cfg"
    timeout 1200 "$SANITIZER" --tool $tool "$BUILD/app/moegrad" bench \
      --config experiments/bench/tiny.cfg --steps 1 --warmup 0 >"$LOGS/train-$tool.log" 2>&1 ||
      echo "gpu-check: $tool on training exited non-zero (see $LOGS/train-$tool.log)"
    tail -n 2 "$LOGS/train-$tool.log"
  done
else
  echo "gpu-check: compute-sanitizer not found; memcheck skipped"
fi

# ---- benchmarks ----
for b in bench_gemm bench_elementwise; do
  if [[ -x $BUILD/bench/$b ]]; then
    echo "gpu-check: $b"
    "$BUILD/bench/$b" --benchmark_format=json >"$LOGS/$b.json" 2>"$LOGS/$b.err" ||
      { echo "gpu-check: $b failed (see $LOGS/$b.err)"; status=1; }
  else
    echo "gpu-check: $BUILD/bench/$b not built; skipped"
  fi
done

# Training steps on the GPU (train.device = auto picks it): tokens/s and the GEMM ratio.
for cfg in experiments/bench/*.cfg; do
  name=$(basename "$cfg" .cfg)
  echo "gpu-check: moegrad bench --config $cfg"
  timeout 1200 "$BUILD/app/moegrad" bench --config "$cfg" --steps 10 >"$LOGS/train-bench-$name.log" 2>&1 ||
    { echo "gpu-check: training benchmark $name failed (see $LOGS/train-bench-$name.log)"; status=1; }
  tail -n 3 "$LOGS/train-bench-$name.log"
done

# ---- report ----
GPU_QUERY="$GPU_QUERY" NVCC_VERSION="$NVCC_VERSION" ARCH="$ARCH" LOGS="$LOGS" REPORT="$REPORT" \
  SANITIZER="$SANITIZER" GIT_COMMIT="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  GIT_DIRTY="$(git status --porcelain 2>/dev/null | grep -q . && echo true || echo false)" \
  python3 scripts/gpu_report.py || status=1
exit $status
