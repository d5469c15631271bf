#!/usr/bin/env bash
# Runs drapto's whole test suite: installs the tools it needs (scripts/setup.sh),
# then the unit and integration tests against the static ffmpeg 9.
set -euo pipefail
cd "$(dirname "$0")/.."
ffmpeg=$(scripts/setup.sh | tail -n1)
export DRAPTO_FFMPEG="$ffmpeg"
cargo test --locked --no-fail-fast "$@"
