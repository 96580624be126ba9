#!/usr/bin/env bash
# Installs what is missing, builds into build/ and runs moegrad's default demo.
# Extra arguments go to that command, e.g. ./scripts/run-demo.sh --steps 100
set -euo pipefail
cd "$(dirname "$0")/.."

# What a newcomer sees first; an experiment becomes the default by changing this line.
DEFAULT_COMMAND=(demo)

./scripts/setup.sh
build/app/moegrad --help
echo
exec build/app/moegrad "${DEFAULT_COMMAND[@]}" "$@"
