#!/usr/bin/env bash
# moegrad's training benchmark against the PyTorch eager reference (bench/torch_reference.py) on
# one config, with the same threads. The two run alternately, two rounds, so that a burst of
# other work on the machine does not land on one side only; the ratio is best against best.
#
#   bench/compare_torch.sh experiments/bench/tiny.cfg [--steps N] [--warmup N]
#
# Environment: MOEGRAD (default build/app/moegrad), PYTHON (default .venv-bench/bin/python, see
# bench/README.md), OMP_NUM_THREADS (default: every core), TORCH_ARGS (more options for
# torch_reference.py, e.g. "--attn sdpa").
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage="usage: bench/compare_torch.sh CONFIG [--steps N] [--warmup N]"
[[ $# -ge 1 && $1 != -* ]] || { echo "$usage" >&2; exit 2; }
config=$1
shift
args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps | --warmup)
      [[ $# -ge 2 ]] || { echo "$usage" >&2; exit 2; }
      args+=("$1" "$2")
      shift 2
      ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done

moegrad=${MOEGRAD:-$root/build/app/moegrad}
python=${PYTHON:-$root/.venv-bench/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
[[ -x $moegrad ]] || { echo "compare_torch: no moegrad binary at $moegrad (set MOEGRAD)" >&2; exit 1; }
[[ -x $python ]] || { echo "compare_torch: no python at $python (set PYTHON; bench/README.md)" >&2; exit 1; }

# Runs one benchmark with its output on stderr and prints its tokens_per_s value.
run() {
  local name=$1 out rate
  shift
  echo "== $name" >&2
  out=$("$@" 2>&1) || { echo "$out" >&2; echo "compare_torch: $name failed" >&2; return 1; }
  echo "$out" >&2
  rate=$(echo "$out" | sed -n 's/^tokens_per_s=//p' | tail -n 1)
  [[ -n $rate ]] || { echo "compare_torch: $name printed no tokens_per_s line" >&2; return 1; }
  echo "$rate"
}

declare -a m_rates t_rates
for round in 1 2; do
  m_rates+=("$(run "moegrad, round $round" "$moegrad" bench --config "$config" "${args[@]}")")
  # shellcheck disable=SC2086  # TORCH_ARGS is a list of options
  t_rates+=("$(run "torch, round $round" "$python" "$root/bench/torch_reference.py" \
    --config "$config" --threads "$OMP_NUM_THREADS" "${args[@]}" ${TORCH_ARGS:-})")
done

echo
echo "config: $config, OMP_NUM_THREADS=$OMP_NUM_THREADS"
echo "moegrad tokens/s: ${m_rates[*]}"
echo "torch   tokens/s: ${t_rates[*]}"
printf '%s\n' "${m_rates[@]}" "--" "${t_rates[@]}" | awk '
  $0 == "--" { side = 1; next }
  side == 0 && $1 > m { m = $1 }
  side == 1 && $1 > t { t = $1 }
  END { printf "best: moegrad %.6g, torch %.6g\nratio moegrad/torch: %.3f\n", m, t, m / t }'
