#!/usr/bin/env bash
# Installs what is missing, builds into build/ and runs moegrad's default experiment
# (experiments/demo/run.sh: the man-page corpus, then moegrad run experiments/demo/pipeline.cfg:
# English pretraining, multilingual continual pre-training, routing analysis, selective
# adaptation to Ukrainian, benchmarks, steering, profile, runs/demo/report.md), about 30
# minutes on 2 CPU cores. Rerunning it skips the stages already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# What a newcomer sees first; another experiment becomes the default by changing this line.
DEFAULT_COMMAND=(experiments/demo/run.sh build/app/moegrad)

./scripts/setup.sh
build/app/moegrad --help
echo
exec "${DEFAULT_COMMAND[@]}" "$@"
