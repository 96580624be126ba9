#!/usr/bin/env bash
# Routes 33 languages in 22 scripts through a trained demo model and analyses its routing
# (experiments/languages30/README.md):
#   1. the corpus (scripts/corpus-iso-codes.sh: names of countries, languages, currencies and
#      scripts as Debian's iso-codes translates them; corpora/iso-codes);
#   2. moegrad data build: every language's documents with the demo's tokenizer;
#   3. moegrad analyze: 16384 tokens per language in windows of 128 through the demo's model;
#      tables, routing.json and SVG figures in OUT/analysis.
# Usage: experiments/languages30/run.sh [MOEGRAD_BINARY] [DEMO_DIR]
#   MOEGRAD_BINARY  default build/app/moegrad
#   DEMO_DIR        a finished `moegrad run experiments/demo/pipeline.cfg`, default runs/demo
# Environment: OUT (default runs/languages30), MODEL (default DEMO_DIR/cpt/model; e.g.
# DEMO_DIR/pretrain/model for the English base model), LANGUAGES (default: the corpus
# script's), DEVICE (default auto).
set -euo pipefail
cd "$(dirname "$0")/../.."
moegrad=${1:-build/app/moegrad}
demo=${2:-runs/demo}
out=${OUT:-runs/languages30}
model=${MODEL:-$demo/cpt/model}
corpus=corpora/iso-codes
# OpenMP threads that spin while they wait slow everything else on the cores (bench/README.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

die() {
  echo "languages30: error: $*" >&2
  exit 1
}
[[ -x $moegrad ]] || die "no moegrad binary at '$moegrad' (build it, or pass its path first)"
[[ -f $demo/tokenizer.json ]] || die "no tokenizer at '$demo/tokenizer.json': is '$demo' a demo run?"
[[ -f $model/config.json ]] ||
  die "no model at '$model' (the demo's continual pre-training writes it; set MODEL to another)"

printf '\n== corpus: Debian'"'"'s iso-codes\n'
./scripts/corpus-iso-codes.sh --out "$corpus" ${LANGUAGES:+--languages "$LANGUAGES"}
# The languages the corpus script built: those of its manifest, in its order.
mapfile -t langs < <(python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["languages"]))' \
  "$corpus/manifest.json")
inputs=()
for lang in "${langs[@]}"; do inputs+=(--input "$lang=$corpus/$lang/heldout"); done

printf '\n== shards: %d languages\n' "${#langs[@]}"
start=$SECONDS
rm -rf "$out/shards"
"$moegrad" data build --tokenizer "$demo/tokenizer.json" "${inputs[@]}" --out "$out/shards"
echo "shards: $((SECONDS - start)) s"

printf '\n== analysis of %s\n' "$model"
start=$SECONDS
"$moegrad" analyze --model "$model" --data "$out/shards" --out "$out/analysis" \
  --seq-len 128 --tokens 16384 --device "${DEVICE:-auto}"
echo "analysis: $((SECONDS - start)) s; figures in $out/analysis/figures"
