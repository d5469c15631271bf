#!/usr/bin/env bash
# Installs everything drapto and its tests need (idempotent). On macOS:
#   - ffmpeg, mediainfo, mkvtoolnix, GNU Parallel and rsync from Homebrew, and
#     a check that Homebrew's ffmpeg has everything drapto uses (it says what
#     is missing, and how to get it: brew install ffmpeg-full);
#   - real footage (scripts/fetch-footage.sh).
# On Debian 12:
#   - ffmpeg/ffprobe, mediainfo, mkvtoolnix from Debian (apt-get);
#   - GNU Parallel, rsync, ssh client and server (distributed segment encodes
#     and their tests, which run a private sshd on 127.0.0.1);
#   - the static ffmpeg 9 (SVT-AV1 4.x, libvmaf, libopus) from the PyPI wheel
#     imageio-ffmpeg, unpacked to .tools/bin/ffmpeg;
#   - for the tests only, ffmpeg 4.2 without SVT-AV1 at .tools/old/ffmpeg;
#   - real footage for the tests and benchmarks (scripts/fetch-footage.sh).
# Prints the ffmpeg to use as the last line.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGEIO_FFMPEG_VERSION=0.8.1

if [ "$(uname -s)" = Darwin ]; then
  command -v brew >/dev/null || { echo "setup: Homebrew is needed (https://brew.sh), then run this again" >&2; exit 1; }
  want=()
  command -v ffprobe >/dev/null || want+=(ffmpeg)
  command -v mediainfo >/dev/null || want+=(media-info)
  command -v mkvmerge >/dev/null || want+=(mkvtoolnix)
  command -v parallel >/dev/null || want+=(parallel)
  command -v rsync >/dev/null || want+=(rsync)
  if [ ${#want[@]} -gt 0 ]; then
    echo "setup: installing ${want[*]} with brew" >&2
    brew install "${want[@]}" >&2
  fi
  prefix=$(brew --prefix)
  ffmpeg=$prefix/bin/ffmpeg
  [ -x "$prefix/opt/ffmpeg-full/bin/ffmpeg" ] && ffmpeg=$prefix/opt/ffmpeg-full/bin/ffmpeg
  missing=()
  encoders=$("$ffmpeg" -hide_banner -encoders 2>/dev/null)
  filters=$("$ffmpeg" -hide_banner -filters 2>/dev/null)
  for e in libsvtav1 libopus; do grep -q " $e " <<<"$encoders" || missing+=("encoder $e"); done
  for f in libvmaf cropdetect crop idet bwdif fieldmatch decimate setparams scale zscale; do grep -q " $f " <<<"$filters" || missing+=("filter $f"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: $ffmpeg lacks: ${missing[*]}; run: brew install ffmpeg-full (then this script again)" >&2
    exit 1
  fi
  scripts/fetch-footage.sh
  echo "$ffmpeg"
  exit 0
fi

missing=()
command -v ffprobe >/dev/null || missing+=(ffmpeg)
command -v mediainfo >/dev/null || missing+=(mediainfo)
command -v mkvmerge >/dev/null || missing+=(mkvtoolnix)
command -v parallel >/dev/null || missing+=(parallel)
command -v rsync >/dev/null || missing+=(rsync)
command -v lsof >/dev/null || missing+=(lsof)
command -v ssh >/dev/null || missing+=(openssh-client)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "setup: installing ${missing[*]} with apt-get" >&2
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >&2
fi

if [ ! -x .tools/bin/ffmpeg ]; then
  echo "setup: fetching the static ffmpeg (imageio-ffmpeg $IMAGEIO_FFMPEG_VERSION wheel from PyPI)" >&2
  rm -rf .tools/wheel && mkdir -p .tools/wheel .tools/bin
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    "imageio-ffmpeg==$IMAGEIO_FFMPEG_VERSION" -d .tools/wheel >&2
  python3 -m zipfile -e .tools/wheel/imageio_ffmpeg-*.whl .tools/wheel/unpacked
  bin=$(ls .tools/wheel/unpacked/imageio_ffmpeg/binaries/ffmpeg-linux-* | head -n1)
  mv "$bin" .tools/bin/ffmpeg
  chmod +x .tools/bin/ffmpeg
  rm -rf .tools/wheel
fi
# A real ffmpeg without libsvtav1 (4.2, from an old imageio-ffmpeg wheel): the
# hostile-environment tests check what drapto says about such a build.
if [ ! -x .tools/old/ffmpeg ]; then
  echo "setup: fetching ffmpeg 4.2 without SVT-AV1 for the tests (imageio-ffmpeg 0.4.2 wheel)" >&2
  rm -rf .tools/wheel-old && mkdir -p .tools/wheel-old .tools/old
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux2010_x86_64 \
    "imageio-ffmpeg==0.4.2" -d .tools/wheel-old >&2
  python3 -m zipfile -e .tools/wheel-old/imageio_ffmpeg-*.whl .tools/wheel-old/unpacked
  mv .tools/wheel-old/unpacked/imageio_ffmpeg/binaries/ffmpeg-linux64-v4.2.2 .tools/old/ffmpeg
  chmod +x .tools/old/ffmpeg
  rm -rf .tools/wheel-old
fi
scripts/fetch-footage.sh
echo "$PWD/.tools/bin/ffmpeg"
