#!/usr/bin/env bash
# Fails when a Linux-only call is used outside the places the README lists
# as platform-specific (src/platform.rs), or when a test uses a Linux-only
# facility in a file without a Linux gate. macOS cannot be compiled here, so
# this is what keeps the portable paths portable.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
# Rust sources: code lines (comments skipped) naming a Linux-only API.
while IFS= read -r hit; do
  echo "check-portable: Linux-only call outside src/platform.rs: $hit" >&2
  status=1
done < <(grep -rnE 'prctl|/proc/|ioprio|SYS_[a-z]|apt-get|dpkg|inotify|epoll' src --include='*.rs' \
  | grep -v '^src/platform.rs:' \
  | grep -vE '^[^:]+:[0-9]+:\s*(//|\*)' || true)
# Tests: a file using a Linux-only facility must gate it.
for f in tests/*.rs; do
  if grep -qE '"/proc|ionice|"mount"|setpriv|/proc/' "$f" && ! grep -q 'cfg(target_os = "linux")' "$f"; then
    echo "check-portable: $f uses a Linux-only facility without #[cfg(target_os = \"linux\")]" >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "check-portable: no Linux-only call outside the listed places"
exit $status
