#!/usr/bin/env bash
# The demo experiment on the embedded default corpus (Debian's man pages), end to end:
#   1. the corpus (scripts/corpus-manpages.sh: man pages rendered to text in eight languages,
#      a fixed share of each language's pages held out);
#   2. moegrad run experiments/demo/pipeline.cfg: tokenizer and shards, an English base model,
#      continual pre-training on seven languages, routing analyses, SEFT / SSFT / AEFT /
#      final-layers adaptation to Ukrainian, proxy benchmarks and perplexity of every model,
#      router steering, a profile, and runs/demo/report.md.
# Finished stages are skipped and an interrupted training stage resumes, so the script can be
# rerun. Usage: experiments/demo/run.sh [MOEGRAD_BINARY] (default build/app/moegrad).
set -euo pipefail
cd "$(dirname "$0")/../.."
moegrad=${1:-build/app/moegrad}
# OpenMP threads that spin while they wait slow training by 4-15x when anything else runs on
# the cores; passive ones cost nothing measurable on an idle machine (bench/README.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

printf '\n== corpus: Debian'"'"'s man pages\n'
./scripts/corpus-manpages.sh --languages en,de,fr,es,ru,pl,cs,uk
"$moegrad" run experiments/demo/pipeline.cfg
