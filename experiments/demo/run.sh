#!/usr/bin/env bash
# The demo experiment on the embedded default corpus (Debian's man pages), end to end:
#   1. the corpus (scripts/corpus-manpages.sh), an English BPE tokenizer, token shards;
#   2. pretrain.cfg: a small English-only OLMoE from scratch;
#   3. cpt.cfg: continual pre-training on seven languages;
#   4. adapt-uk.cfg: adaptation of the last layers' experts to Ukrainian;
#   5. routing analyses (moegrad analyze) of the English base and the CPT model;
#   6. a profile of the demo model's training step (runs/demo/profile/profile.txt).
# A finished step is skipped and an interrupted run resumes from its checkpoint, so the script
# can be rerun. Usage: experiments/demo/run.sh [MOEGRAD_BINARY] (default build/app/moegrad).
set -euo pipefail
cd "$(dirname "$0")/../.."
moegrad=${1:-build/app/moegrad}
# OpenMP threads that spin while they wait slow training by 4-15x when anything else runs on
# the cores; passive ones cost nothing measurable on an idle machine (bench/README.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
out=runs/demo
languages=en,de,fr,es,ru,pl,cs,uk

step() { printf '\n== %s\n' "$*"; }

step "corpus: Debian's man pages in $languages"
./scripts/corpus-manpages.sh --languages "$languages"

mkdir -p "$out"
if [[ ! -f $out/tokenizer.json ]]; then
  step "tokenizer: byte-level BPE, 4096 tokens, trained on the English training pages"
  "$moegrad" data train-tokenizer --input corpora/manpages/en/train --vocab-size 4096 \
    --out "$out/tokenizer.json"
fi
for split in train heldout; do
  if [[ ! -f $out/shards/$split/shards.json ]]; then
    step "token shards: $split"
    inputs=()
    for lang in ${languages//,/ }; do inputs+=(--input "$lang=corpora/manpages/$lang/$split"); done
    "$moegrad" data build --tokenizer "$out/tokenizer.json" "${inputs[@]}" --out "$out/shards/$split"
  fi
done

for stage in pretrain cpt adapt-uk; do
  if [[ -f $out/$stage/summary.json ]]; then
    step "$stage: done before ($out/$stage)"
    continue
  fi
  step "train: experiments/demo/$stage.cfg"
  resume=()
  [[ -d $out/$stage/checkpoints ]] && resume=(--resume)
  "$moegrad" train --config "experiments/demo/$stage.cfg" "${resume[@]}"
done

step "routing analysis of the English base and of the CPT model (held-out text)"
for stage in pretrain cpt; do
  "$moegrad" analyze --model "$out/$stage/model" --data "$out/shards/heldout" \
    --out "$out/analysis/$stage" --seq-len 128 --tokens 65536
done

step "profile of a training step of the demo model (moegrad profile)"
"$moegrad" profile --config experiments/demo/pretrain.cfg --steps 3 --warmup 1 --top 12 \
  --out "$out/profile" | head -4

step "held-out evaluation per language after each stage"
python3 - "$out" <<'PY' 2>/dev/null || grep -h '^eval' "$out"/*/train.log
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
rows = []
for stage in ["pretrain", "cpt", "adapt-uk"]:
    lines = [json.loads(l) for l in (out / stage / "metrics.jsonl").read_text().splitlines()]
    evals = [e for e in lines if e["type"] == "eval"]
    rows += [(stage, evals[0]), (stage, evals[-1])]
langs = sorted(rows[0][1]["languages"])
for key, title in (("loss", "loss (nats per token)"), ("bpb", "bits per byte of text")):
    print(f"\n{title:24}" + " ".join(f"{l:>6}" for l in langs))
    for stage, e in rows:
        print(f"{stage:>10} step {e['step']:5d}   " +
              " ".join(f"{e['languages'][l].get(key, 0):6.3f}" for l in langs))
PY
cat <<MSG

Results: $out/
  tokenizer.json, shards/          the data
  pretrain/ cpt/ adapt-uk/         each: model/ (an HF model directory), metrics.jsonl,
                                   train.log, trainable.json, summary.json, checkpoints/
MSG
