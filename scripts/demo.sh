#!/usr/bin/env bash
# Sets everything up and encodes a sample: installs the tools (scripts/setup.sh),
# builds drapto, and encodes INPUT (a file or folder) or, when none is given, a
# generated 10-second 720p sample rip, into OUTPUT (default target/demo/out).
# Usage: scripts/demo.sh [INPUT] [OUTPUT]
set -euo pipefail
cd "$(dirname "$0")/.."
ffmpeg=$(scripts/setup.sh | tail -n1)
export DRAPTO_FFMPEG="$ffmpeg"
cargo build --release --locked
input=${1:-}
output=${2:-target/demo/out}
if [ -z "$input" ]; then
  mkdir -p target/demo/in
  input=target/demo/in/sample.mkv
  [ -f "$input" ] || scripts/make-sample.sh "$input" 1280x720 10 >/dev/null
  echo "demo: generated sample rip $input"
fi
exec target/release/drapto encode -i "$input" -o "$output"
