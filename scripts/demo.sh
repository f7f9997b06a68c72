#!/usr/bin/env bash
# Sets everything up, then enrols the sample people and identifies the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/fastface demo "$@"
