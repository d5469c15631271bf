#!/usr/bin/env bash
# drapto's benchmarks. Each prints a table; nothing here is a pass/fail test.
#   scripts/bench.sh overhead   drapto encode (standard path) vs the bare equivalent
#                               ffmpeg command on a 1080p clip, median of RUNS runs
#   scripts/bench.sh analysis   drapto analyze on a 2-hour 1080p file made by
#                               stream-copy concatenation of a generated minute
#   scripts/bench.sh chunked    chunked VMAF-targeted encode of a 60 s 1080p clip:
#                               per-segment accuracy (full-frame VMAF), cost vs a
#                               standard encode, and ab-av1 beside it when installed
# Environment: RUNS (default 3), PRESET (default 8), SECONDS_CLIP (clip length, default 60),
# BENCH_DIR (default target/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
ffmpeg=$(scripts/setup.sh | tail -n1)
export DRAPTO_FFMPEG="$ffmpeg"
cargo build --release --locked -q
drapto=$PWD/target/release/drapto
dir=${BENCH_DIR:-target/bench}
runs=${RUNS:-3}
preset=${PRESET:-8}
secs=${SECONDS_LONG:-${SECONDS_CLIP:-60}}
mkdir -p "$dir"
export DRAPTO_TEMP_DIR="$PWD/$dir/work" DRAPTO_LOG_DIR="$PWD/$dir/logs"

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# A 1080p clip with varied content (detail, flat areas, motion) and stereo audio.
clip_1080p() {
  local out=$dir/clip1080_${secs}s.mkv third=$((secs / 3))
  if [ ! -f "$out" ]; then
    "$ffmpeg" -hide_banner -loglevel error -y \
      -f lavfi -i "testsrc2=size=1920x1080:rate=24:duration=$third" \
      -f lavfi -i "mandelbrot=size=1920x1080:rate=24,trim=duration=$third,setpts=PTS-STARTPTS" \
      -f lavfi -i "life=size=1920x1080:rate=24:mold=10:ratio=0.1:death_color=#101030:life_color=#d0a040,trim=duration=$((secs - 2 * third)),setpts=PTS-STARTPTS,format=yuv420p" \
      -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$secs" \
      -filter_complex "[0:v][1:v][2:v]concat=n=3:v=1,format=yuv420p[v]" -map "[v]" -map 3:a \
      -c:v libx264 -preset veryfast -crf 16 -c:a flac -ac 2 "$out"
  fi
  echo "$out"
}

overhead() {
  local src; src=$(clip_1080p)
  local out=$dir/overhead; rm -rf "$out"; mkdir -p "$out"
  local dt=() bt=()
  for i in $(seq "$runs"); do
    rm -f "$out"/*.mkv; rm -rf "$DRAPTO_TEMP_DIR"
    local t0; t0=$(now)
    "$drapto" encode -q -i "$src" -o "$out" --preset "$preset" --no-chunked >/dev/null
    dt+=("$(sub "$(now)" "$t0")")
    t0=$(now)
    "$ffmpeg" -hide_banner -loglevel error -y -i "$src" -map 0:v:0 -map 0:a -c:v libsvtav1 -preset "$preset" -crf 25 \
      -pix_fmt yuv420p10le -svtav1-params tune=0:film-grain=0:film-grain-denoise=0 \
      -c:a libopus -b:a 128k -af aformat=channel_layouts=7.1\|5.1\|stereo\|mono -application audio \
      -frame_duration 20 -vbr on -compression_level 10 "$out/bare.mkv"
    bt+=("$(sub "$(now)" "$t0")")
  done
  local dm bm; dm=$(printf '%s\n' "${dt[@]}" | median); bm=$(printf '%s\n' "${bt[@]}" | median)
  printf '\n%-28s %s\n' "clip" "$(basename "$src") (1920x1080, ${secs}s, preset $preset, $runs runs)"
  printf '%-28s %s\n' "drapto encode (s)" "${dt[*]}" "bare ffmpeg (s)" "${bt[*]}"
  printf '%-28s %.2f / %.2f\n' "median drapto / bare (s)" "$dm" "$bm"
  printf '%-28s %s\n' "ratio (target <= 1.05)" "$(awk -v a="$dm" -v b="$bm" 'BEGIN { printf "%.3f", a / b }')"
}

analysis() {
  local minute=$dir/minute1080.mkv long=$dir/long_2h.mkv
  if [ ! -f "$long" ]; then
    "$ffmpeg" -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1440x800:rate=24:duration=60,pad=1920:1080:240:140:black" \
      -f lavfi -i "sine=frequency=300:sample_rate=48000:duration=60" \
      -c:v libx264 -preset ultrafast -crf 35 -g 240 -c:a aac -b:a 96k "$minute"
    : >"$dir/list.txt"
    for _ in $(seq 120); do echo "file '$PWD/$minute'" >>"$dir/list.txt"; done
    "$ffmpeg" -hide_banner -loglevel error -y -f concat -safe 0 -i "$dir/list.txt" -c copy "$long"
  fi
  local t0; t0=$(now)
  "$drapto" analyze "$long" >"$dir/analysis.txt"
  local t; t=$(sub "$(now)" "$t0")
  printf '\n%-28s %s\n' "file" "$(basename "$long") ($(du -h "$long" | cut -f1), 2 h, 1920x1080 letterboxed + pillarboxed)"
  printf '%-28s %.1f s\n' "drapto analyze wall time" "$t"
  grep -E "crop|interlacing|threshold" "$dir/analysis.txt" | sed 's/^/  /'
}

chunked() {
  local src; src=$(clip_1080p)
  local out=$dir/chunked; rm -rf "$out" "$DRAPTO_TEMP_DIR"; mkdir -p "$out/std" "$out/chk"
  local t0; t0=$(now)
  "$drapto" encode -q -i "$src" -o "$out/std" --preset "$preset" --no-chunked >/dev/null
  local ts; ts=$(sub "$(now)" "$t0")
  t0=$(now)
  "$drapto" encode --json -i "$src" -o "$out/chk" --preset "$preset" --chunked >"$out/events.jsonl"
  local tc; tc=$(sub "$(now)" "$t0")
  python3 scripts/bench_chunked.py "$ffmpeg" "$src" "$out" "$ts" "$tc" "$preset"
}

case ${1:-} in
  overhead) overhead ;;
  analysis) analysis ;;
  chunked) chunked ;;
  *) sed -n 2,12p "$0"; exit 2 ;;
esac
