#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds moegrad with CUDA into build-gpu/ (or takes the
# programs from a bundle made by scripts/gpu-bundle.sh, for a machine that can install
# nothing), runs the CUDA tests and then the whole suite, compute-sanitizer's memcheck over
# test_cuda and memcheck + racecheck over one training step (when compute-sanitizer is
# installed), the benchmarks (with HF transformers' training step on medium.cfg when torch and
# transformers are installed), and writes one JSON report.
# Not part of scripts/test.sh: CI has no GPU.
#
# Usage: scripts/gpu-check.sh [--out FILE] [--arch SM] [--skip-build] [--bundle FILE]
#                             [--step-timeout S] [--only PHASES]
#   --out FILE         report path (default: $OUT/gpu-report.json when $OUT is set, else
#                      bench/results/gpu-report-<date>.json); with $OUT set, the logs are
#                      packed beside it as $OUT/gpu-check-logs.tar.xz
#   --arch SM          CMAKE_CUDA_ARCHITECTURES (default: 90, the H100)
#   --skip-build       use build-gpu/ as it is
#   --bundle FILE      use the programs of a gpu-bundle.sh tarball; the CPU-only suite is
#                      not run (it is not in the bundle, and CI runs it)
#   --step-timeout S   seconds each test, sanitizer or benchmark run may take (default 1200)
#   --only PHASES      a comma-separated subset of tests,sanitizer,kernels,train,reference,profile
#                      (default: all): kernels = the benchmark programs, train = moegrad's
#                      training benchmarks, reference = transformers' training step. A run
#                      split over several calls gives one report each; scripts/gpu_report.py
#                      --merge OUT IN... joins them.
# Exits 1, saying why, when there is no GPU or no CUDA build. It rewrites the report after each
# phase and each training benchmark, so a run stopped from outside keeps what it measured, and
# exits 1 when a test or benchmark failed or a sanitizer found errors.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "gpu-check: $*" >&2; exit 1; }

PHASES=tests,sanitizer,kernels,train,reference,profile
REPORT="" ARCH=90 SKIP_BUILD=0 BUNDLE="" STEP_TIMEOUT=1200 ONLY=$PHASES
while (($#)); do
  case "$1" in
    --out) [[ $# -ge 2 ]] || die "--out needs a file"; REPORT=$2; shift 2 ;;
    --arch) [[ $# -ge 2 ]] || die "--arch needs a value"; ARCH=$2; shift 2 ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    --bundle) [[ $# -ge 2 ]] || die "--bundle needs a file"; BUNDLE=$2; shift 2 ;;
    --step-timeout) [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] ||
      die "--step-timeout needs a positive number of seconds"; STEP_TIMEOUT=$2; shift 2 ;;
    --only) [[ $# -ge 2 ]] || die "--only needs a list of phases ($PHASES)"; ONLY=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
IFS=, read -ra only_list <<<"$ONLY"
((${#only_list[@]})) || die "--only needs at least one phase ($PHASES)"
for phase in "${only_list[@]}"; do
  [[ ",$PHASES," == *",$phase,"* ]] || die "--only: unknown phase '$phase' (phases: $PHASES)"
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }
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
BUILD=build-gpu
if [[ -n "$BUNDLE" ]]; then
  [[ -f "$BUNDLE" ]] || die "--bundle $BUNDLE: no such file"
  BUILD=build-gpu-bundle
  rm -rf "$BUILD" && mkdir -p "$BUILD"
  tar -C "$BUILD" -xJf "$BUNDLE" || die "--bundle $BUNDLE: not a gpu-bundle.sh tarball"
  for f in commit arch nvcc tests/test_cuda app/moegrad; do
    [[ -e $BUILD/$f ]] || die "--bundle $BUNDLE: no $f in it (make it with scripts/gpu-bundle.sh)"
  done
  SKIP_BUILD=1 ARCH=$(<"$BUILD/arch") NVCC_VERSION="$(<"$BUILD/nvcc") (bundle)"
  GIT_COMMIT=$(<"$BUILD/commit")
  export LD_LIBRARY_PATH="$ROOT/$BUILD/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  command -v nvcc >/dev/null ||
    die "nvcc not found (on PATH or in /usr/local/cuda/bin): install the CUDA toolkit"
  NVCC_VERSION=$(nvcc --version | grep -i release | sed 's/.*release //')
  GIT_COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
fi
echo "gpu-check: $GPU_QUERY; nvcc $NVCC_VERSION"

# Not under $OUT itself: the device tool brings back a few files from there, not a folder of logs.
LOGS="$ROOT/$BUILD/gpu-check-logs"
mkdir -p "$LOGS"
rm -f "$LOGS"/*

SANITIZER=$(command -v compute-sanitizer || true)
GIT_DIRTY=$(git status --porcelain 2>/dev/null | grep -q . && echo true || echo false)
# The report of what has run so far (and, with $OUT set, the logs packed beside it); returns
# gpu_report.py's verdict.
write_report() {
  local verdict=0
  GPU_QUERY="$GPU_QUERY" NVCC_VERSION="$NVCC_VERSION" ARCH="$ARCH" LOGS="$LOGS" REPORT="$REPORT" \
    SANITIZER="$SANITIZER" GIT_COMMIT="$GIT_COMMIT" PHASES="$ONLY" ALL_TESTS=$ALL_TESTS \
    GIT_DIRTY="$GIT_DIRTY" python3 scripts/gpu_report.py "$@" || verdict=1
  if [[ -n "${OUT:-}" ]]; then
    tar -C "$(dirname "$LOGS")" -cJf "$OUT/gpu-check-logs.tar.xz.part" "$(basename "$LOGS")" &&
      mv "$OUT/gpu-check-logs.tar.xz.part" "$OUT/gpu-check-logs.tar.xz"
  fi
  return $verdict
}

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
status=0 ALL_TESTS=1
[[ -n "$BUNDLE" ]] && ALL_TESTS=0  # the bundle holds test programs, not ctest's files
if want tests; then
  if [[ -n "$BUNDLE" ]]; then
    timeout "$STEP_TIMEOUT" "$BUILD/tests/test_cuda" --gtest_output="xml:$LOGS/ctest-cuda.xml" 2>&1 |
      tee "$LOGS/ctest-cuda.log" || status=1
  else
    ctest --test-dir $BUILD -L cuda --no-tests=error --output-on-failure -j4 --timeout "$STEP_TIMEOUT" \
      --output-junit "$LOGS/ctest-cuda.xml" 2>&1 | tee "$LOGS/ctest-cuda.log" || status=1
    ctest --test-dir $BUILD --output-on-failure -j4 --timeout "$STEP_TIMEOUT" \
      --output-junit "$LOGS/ctest-all.xml" 2>&1 | tee "$LOGS/ctest-all.log" || status=1
  fi
  write_report --quiet || true
fi

# ---- compute-sanitizer ----
if want sanitizer && [[ -z "$SANITIZER" ]]; then
  echo "gpu-check: compute-sanitizer not found; the sanitizer runs skipped"
elif want sanitizer; then
  echo "gpu-check: $SANITIZER --tool memcheck $BUILD/tests/test_cuda"
  timeout "$STEP_TIMEOUT" "$SANITIZER" --tool memcheck "$BUILD/tests/test_cuda" >"$LOGS/memcheck.log" 2>&1 ||
    echo "gpu-check: memcheck exited non-zero (see $LOGS/memcheck.log)"
  tail -n 3 "$LOGS/memcheck.log"
  # A short training run (one step of tiny.cfg on the GPU) under memcheck and racecheck.
  # racecheck looks at shared memory only, and instrumenting cuBLAS's kernels for it takes
  # minutes a step: it checks moegrad's own kernels.
  for tool in memcheck racecheck; do
    filter=()
    [[ $tool == racecheck ]] && filter=(--kernel-name kns=moegrad)
    echo "gpu-check: $tool on one training step of experiments/bench/tiny.cfg"
    timeout "$STEP_TIMEOUT" "$SANITIZER" --tool $tool "${filter[@]}" "$BUILD/app/moegrad" bench \
      --config experiments/bench/tiny.cfg --steps 1 --warmup 0 >"$LOGS/train-$tool.log" 2>&1 ||
      echo "gpu-check: $tool on training exited non-zero (see $LOGS/train-$tool.log)"
    tail -n 2 "$LOGS/train-$tool.log"
  done
  # The experts' own grouped GEMM is not in the default (f32, grouped) step above: racecheck on
  # its parity tests (its double-buffered shared-memory stages).
  echo "gpu-check: racecheck on test_cuda's gathered grouped GEMM tests"
  timeout "$STEP_TIMEOUT" "$SANITIZER" --tool racecheck --kernel-name kns=gathered_grouped \
    "$BUILD/tests/test_cuda" --gtest_filter='MatmulCudaBf16.GatheredGrouped*:ExpertsCuda.*' \
    >"$LOGS/grouped-racecheck.log" 2>&1 ||
    echo "gpu-check: racecheck on the grouped GEMM exited non-zero (see $LOGS/grouped-racecheck.log)"
  tail -n 2 "$LOGS/grouped-racecheck.log"
  write_report --quiet || true
fi

# ---- benchmarks (the GPU ones: the CPU figures belong to bench/README.md's CPU runs) ----
if want kernels; then
  for b in bench_gemm bench_elementwise bench_attention bench_host; do
    if [[ -x $BUILD/bench/$b ]]; then
      echo "gpu-check: $b"
      timeout "$STEP_TIMEOUT" "$BUILD/bench/$b" --benchmark_filter=^cuda/ --benchmark_format=json \
        >"$LOGS/$b.json" 2>"$LOGS/$b.err" ||
        { echo "gpu-check: $b failed (see $LOGS/$b.err)"; status=1; }
    else
      echo "gpu-check: $BUILD/bench/$b not built; skipped"
    fi
    write_report --quiet || true
  done
fi

# Training steps on the GPU (train.device = auto picks it): tokens/s and the GEMM ratio, in f32
# and in bf16 mixed precision (against the bf16 GEMM rate: the MFU).
bench_log() {  # NAME COMMAND...: one training benchmark's output into train-bench-NAME.log
  local name=$1
  shift
  echo "gpu-check: $*"
  timeout "$STEP_TIMEOUT" "$@" >"$LOGS/train-bench-$name.log" 2>&1 ||
    { echo "gpu-check: training benchmark $name failed (see $LOGS/train-bench-$name.log)"; status=1; }
  tail -n 3 "$LOGS/train-bench-$name.log"
  write_report --quiet || true
}
train_bench() { local name=$1; shift; bench_log "$name" "$BUILD/app/moegrad" bench "$@"; }
if want train; then
  # medium.cfg in bf16 first, with the experts on cuBLAS's grouped GEMM (the default) and on
  # moegrad's own kernels, which read the expert counts on the GPU and gather the tokens' rows in
  # their loads (train.expert_gemm = gathered): which should be the default.
  train_bench medium-bf16 --config experiments/bench/medium.cfg --steps 10 --train.precision=bf16
  train_bench medium-bf16-gathered --config experiments/bench/medium.cfg --steps 10 \
    --train.precision=bf16 --train.expert_gemm=gathered
  # Four micro-batches an optimizer step: AdamW's fixed cost (28 bytes read and written for each
  # of medium.cfg's 1.78B parameters, about 17 ms) over four times the tokens (bench/README.md,
  # "What 40% MFU on medium.cfg takes").
  train_bench medium-bf16-accum4 --config experiments/bench/medium.cfg --steps 4 \
    --train.precision=bf16 --train.grad_accum=4
  train_bench medium-bf16-accum4-gathered --config experiments/bench/medium.cfg --steps 4 \
    --train.precision=bf16 --train.grad_accum=4 --train.expert_gemm=gathered
  train_bench medium --config experiments/bench/medium.cfg --steps 10
  for name in tiny small; do
    train_bench "$name" --config "experiments/bench/$name.cfg" --steps 10
    train_bench "$name-bf16" --config "experiments/bench/$name.cfg" --steps 10 --train.precision=bf16
  done
  # Selective adaptation of an OLMoE-1B-7B-shaped model in bf16: its peak against inference's.
  train_bench olmoe-1b-7b-adapt --config experiments/bench/olmoe-1b-7b-adapt.cfg --steps 3 \
    --warmup 1 --inference
fi
# HuggingFace transformers' OlmoeForCausalLM training step on the same config and GPU, eager and
# torch.compile (bf16 autocast, f32 parameters and AdamW), when torch and transformers import
# with CUDA: issue 5's comparison.
if want reference; then
  if python3 -c 'import torch, transformers; assert torch.cuda.is_available()' 2>/dev/null; then
    for mode in eager compile; do
      flags=()
      [[ $mode == compile ]] && flags=(--compile)
      bench_log "transformers-medium-bf16-$mode" python3 bench/torch_reference.py \
        --config experiments/bench/medium.cfg --device cuda --steps 8 --precision bf16 \
        ${flags[@]+"${flags[@]}"}
    done
  else
    echo "gpu-check: torch and transformers with CUDA do not import here; the transformers runs skipped"
  fi
fi
# Where a bf16 medium.cfg step's time goes, ops and the host's phases (kept in the report).
if want profile; then
  echo "gpu-check: moegrad profile --config experiments/bench/medium.cfg --train.precision=bf16"
  timeout "$STEP_TIMEOUT" "$BUILD/app/moegrad" profile --config experiments/bench/medium.cfg --steps 2 \
    --warmup 2 --train.precision=bf16 >"$LOGS/profile-medium-bf16.txt" 2>&1 ||
    { echo "gpu-check: profile failed (see $LOGS/profile-medium-bf16.txt)"; status=1; }
fi

# ---- report ----
write_report || status=1
exit $status
