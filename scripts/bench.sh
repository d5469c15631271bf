#!/usr/bin/env bash
# drapto's benchmarks. Each prints a table; nothing here is a pass/fail test.
#   scripts/bench.sh overhead   drapto encode (standard path) vs the bare equivalent
#                               ffmpeg command on 90 s of real footage at 1080p, per
#                               preset of PRESETS (default "4 8 10 12"), median of RUNS
#                               runs, with drapto's seconds per stage
#   scripts/bench.sh rerun      a rerun over a folder of 50 small finished files
#   scripts/bench.sh analysis   drapto analyze on a 2-hour 1080p file made by
#                               stream-copy concatenation of a generated minute
#   scripts/bench.sh chunked    chunked VMAF-targeted encode of a 60 s 1080p clip:
#                               per-segment accuracy (full-frame VMAF), cost (wall and
#                               CPU) vs a standard encode run before and after it, and
#                               ab-av1 beside it when installed
#   scripts/bench.sh quality    quality per byte on 90 s of real footage (HEIGHT, default
#                               1080): a ladder of fixed CRFs (LADDER, default "24 28 32 36")
#                               on the standard path, drapto chunked per allocation of MODES
#                               (default "slope target"), ab-av1 when installed; every frame
#                               scored; chunked size / the single-CRF curve's at equal mean
#                               VMAF, worst 2 s window, cost (PRESET, TARGET default 93)
#   scripts/bench.sh frontier   the time-bytes frontier on the real clip (REAL_SECONDS, default
#                               34): drapto chunked at PRESET (default 6) against one CRF at
#                               each preset of PRESETS (default "4 6 8 10 12"), interpolated
#                               to the chunked run's mean VMAF between two CRFs run now; MB,
#                               mean and worst 2 s VMAF (every frame), wall and CPU seconds;
#                               chunked at CHUNKED_PRESETS too (default none)
#   scripts/bench.sh xpsnr      whether XPSNR could score the survey: per segment of a quality
#                               run's chunked encode (run `quality` first, same CLIP), the CRF
#                               for TARGET by every-frame VMAF against the CRF read from XPSNR
#                               through a line fitted on the other segments (all of XPSNR, or
#                               one VMAF point and XPSNR's changes), over the ladder's encodes
#   scripts/bench.sh episode    a TV episode's length (EPISODE_MINUTES, default 22) of the real
#                               footage as a hard-telecined DVD rip, encoded chunked at PRESET,
#                               stopped by SIGINT once STOP_AT (default 0.4) of its segments are
#                               done and resumed: each run's time and memory, what the resume
#                               reused, and whether every film frame, marker, audio sample,
#                               subtitle line and chapter came through in place
#   scripts/bench.sh pieces     how well the survey's samples speak for their segment by piece
#                               length (PIECES, default "8 12 24"): over 5 s windows of a quality
#                               run's clip (run `quality` first, same CLIP), the CRF for TARGET
#                               read from the sample encoded at SURVEY_PRESET (default 8) against
#                               the one read from the ladder's whole encodes; mean and spread
#   scripts/bench.sh sampling   how far a VMAF measured on one frame in N is from every frame:
#                               the real clip (REAL_SECONDS, default 34) as it is, on twos and
#                               on threes, encoded once (PRESET, CRF default 32), every frame
#                               scored; per stride (fixed, as libvmaf's n_subsample, and a
#                               golden-ratio placement), over 5 s and 10 s segments
#   scripts/bench.sh distributed the same chunked encode of a 720p clip three ways:
#                               drapto's own workers, GNU Parallel with `:` only, and
#                               GNU Parallel over `:` + this machine through a private
#                               sshd on 127.0.0.1 (no cores added: the difference is
#                               the overhead of distribution, per segment)
#   scripts/bench.sh library    discovery over a generated library tree of 2,000 files (a few
#                               real rips among extras, subtitles, .nfo and posters) with a
#                               file pattern and size window: the dry run, the first run and
#                               the rerun when every rip is encoded; then drapto watch: from
#                               the moment a rip stops growing to the start of its encode,
#                               at the default settle time (SETTLE to change it)
# Environment: RUNS (default 3), PRESET (default 6, drapto's own; 8 runs in about half the
# time), SECONDS_CLIP (clip length, default 60), REAL_SECONDS (real footage, default 90),
# CLIP (quality and frontier: "real", the 1080p mix, "twos", the same on twos, "dark", the
# same dark and grainy, or "street", 80 s of an SD camera), BENCH_DIR (default target/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
ffmpeg=$(scripts/setup.sh | tail -n1)
export DRAPTO_FFMPEG="$ffmpeg"
cargo build --release --locked -q
# (Where cargo put it: a CARGO_TARGET_DIR elsewhere left an old build here.)
drapto=$(realpath "${CARGO_TARGET_DIR:-target}")/release/drapto
dir=${BENCH_DIR:-target/bench}
runs=${RUNS:-3}
preset=${PRESET:-6}
secs=${SECONDS_LONG:-${SECONDS_CLIP:-60}}
mkdir -p "$dir"
export DRAPTO_TEMP_DIR="$PWD/$dir/work" DRAPTO_LOG_DIR="$PWD/$dir/logs"

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# A 1080p clip with varied content (detail, flat areas, motion) and stereo
# audio, in H.264 with Blu-ray's GOP structure (a keyframe at least every
# second: x264 keyint 24, as Blu-ray authoring requires for 1080p24).
clip_1080p() {
  local out=$dir/clip1080_${secs}s_bd.mkv third=$((secs / 3))
  if [ ! -f "$out" ]; then
    "$ffmpeg" -hide_banner -loglevel error -y \
      -f lavfi -i "testsrc2=size=1920x1080:rate=24:duration=$third" \
      -f lavfi -i "mandelbrot=size=1920x1080:rate=24,trim=duration=$third,setpts=PTS-STARTPTS" \
      -f lavfi -i "life=size=1920x1080:rate=24:mold=10:ratio=0.1:death_color=#101030:life_color=#d0a040,trim=duration=$((secs - 2 * third)),setpts=PTS-STARTPTS,format=yuv420p" \
      -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$secs" \
      -filter_complex "[0:v][1:v][2:v]concat=n=3:v=1,format=yuv420p[v]" -map "[v]" -map 3:a \
      -c:v libx264 -preset veryfast -crf 16 -g 24 -c:a flac -ac 2 "$out"
  fi
  echo "$out"
}

# 90 s of real footage (scripts/fetch-footage.sh: Big Buck Bunny, the Megamind
# trailer, a city, bikes; hard cuts, dark scenes) at 1920x1080 24 fps, H.264
# with Blu-ray GOPs, with the trailer's stereo audio looped under it.
real_1080p() {
  local h=${HEIGHT:-1080} w len=${REAL_SECONDS:-90}
  w=$((h * 16 / 9 / 2 * 2))
  local out=$dir/real${h}_${len}s.mkv f=.tools/footage
  if [ ! -f "$out" ]; then
    # The four clips back to back are 34 s; longer runs loop them.
    local v="scale=$w:$h:force_original_aspect_ratio=decrease,pad=$w:$h:-1:-1,setsar=1,fps=24,format=yuv420p"
    "$ffmpeg" -hide_banner -loglevel error -y -i "$f/bigbuckbunny.mp4" -i "$f/Megamind.avi" -i "$f/cityCC0.mpg" \
      -i "$f/bikes.mp4" -stream_loop -1 -i "$f/Megamind.avi" -filter_complex \
      "[0:v]$v[a];[1:v]$v[b];[2:v]$v[c];[3:v]$v[d];[a][b][c][d]concat=n=4:v=1,loop=loop=3:size=1000,trim=duration=$len,setpts=PTS-STARTPTS[v]" \
      -map "[v]" -map 4:a -t "$len" -c:v libx264 -preset veryfast -crf 16 -g 24 -c:a flac -ac 2 "$out"
  fi
  echo "$out"
}

# vtest.avi (OpenCV's samples, Debian opencv-doc) as it is: 79.5 s of a
# fixed street camera at 768x576, 10 fps, sensor noise and small moving
# people, the other real footage the registries hold at its own size; H.264
# with a keyframe every 2.4 s, no audio.
street_sd() {
  local out=$dir/street576_80s.mkv
  if [ ! -f "$out" ]; then
    "$ffmpeg" -hide_banner -loglevel error -y -i .tools/footage/vtest.avi -map 0:v \
      -vf "setsar=1,format=yuv420p" -c:v libx264 -preset veryfast -crf 16 -g 24 "$out"
  fi
  echo "$out"
}

# The 1080p mix re-timed "on twos": each picture held for two frames, as
# animation is drawn and as converted frame rates repeat frames; a
# measurement that scores every nth frame can alias with the pattern.
real_twos() {
  local src out; src=$(real_1080p)
  out=$dir/$(basename "$src" .mkv)_twos.mkv
  if [ ! -f "$out" ]; then
    "$ffmpeg" -hide_banner -loglevel error -y -i "$src" -map 0:v -vf "fps=12,fps=24" \
      -c:v libx264 -preset veryfast -crf 16 -g 24 "$out"
  fi
  echo "$out"
}

# The 1080p mix graded as a dark film and grainy as a 35 mm scan: a low-key
# grade (mid-grey pressed to a quarter, highlights kept, colour muted; where
# AV1's banding and lost shadow detail show) and fine moving grain on top
# (strongest in luma), kept by x264's grain tuning at a Blu-ray's rate.
real_dark() {
  local src out; src=$(real_1080p)
  out=$dir/$(basename "$src" .mkv)_dark.mkv
  if [ ! -f "$out" ]; then
    "$ffmpeg" -hide_banner -loglevel error -y -i "$src" -map 0:v \
      -vf "lutyuv=y=16+pow(max(val-16\,0)/219\,1.8)*160:u=128+(val-128)*0.7:v=128+(val-128)*0.7,noise=c0s=3:c0f=t:c1s=1:c1f=t:c2s=1:c2f=t,gblur=sigma=0.5:planes=1" \
      -c:v libx264 -preset veryfast -tune grain -crf 17 -g 24 "$out.part.mkv"
    mv "$out.part.mkv" "$out"
  fi
  echo "$out"
}

# A TV episode as a DVD rip has it (EPISODE_MINUTES, default 22): the real
# footage looped at 23.976 fps, 16:9 (720x480, SAR 32:27), hard telecined
# (3:2 pulldown) into interlaced MPEG-2 at 29.97 fps, AC-3 stereo (the
# trailer's sound looped), a subtitle line and a white film frame 30 s into
# every minute (the markers bench_episode.py finds again), a chapter every
# 5 min. Film frames: a multiple of 4, so the pulldown ends on a whole cycle.
dvd_episode() {
  local mins=${EPISODE_MINUTES:-22} f=.tools/footage
  local out=$dir/episode_${mins}min.mkv film=$((mins * 60 * 24000 / 1001 / 4 * 4))
  if [ ! -f "$out" ]; then
    local v="scale=854:480:force_original_aspect_ratio=decrease,pad=854:480:-1:-1,scale=720:480,setsar=32/27,fps=24000/1001,format=yuv420p"
    local meta=$dir/episode.ffmeta srt=$dir/episode.srt
    python3 - "$mins" "$meta" "$srt" <<'PY'
import sys
mins, meta, srt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
t = lambda ms: "%02d:%02d:%02d,%03d" % (ms // 3600000, ms // 60000 % 60, ms // 1000 % 60, ms % 1000)
with open(meta, "w") as m:
    m.write(";FFMETADATA1\n")
    for k in range(0, mins, 5):
        m.write(f"[CHAPTER]\nTIMEBASE=1/1000\nSTART={k * 60000}\nEND={min(k + 5, mins) * 60000}\ntitle=Part {k // 5 + 1}\n")
with open(srt, "w") as s:
    for k in range(mins):
        a = round((k * 1440 + 720) * 1001 / 24)
        s.write(f"{k + 1}\n{t(a)} --> {t(a + 2000)}\nMarker {k + 1}\n\n")
PY
    # (-loglevel fatal: the trailer's last AC-3 frame is cut short, which
    # its decoder says at every loop.)
    "$ffmpeg" -hide_banner -loglevel fatal -y -i "$f/bigbuckbunny.mp4" -i "$f/Megamind.avi" -i "$f/cityCC0.mpg" \
      -i "$f/bikes.mp4" -stream_loop -1 -i "$f/Megamind.avi" -i "$srt" -i "$meta" -filter_complex \
      "[0:v]$v[a];[1:v]$v[b];[2:v]$v[c];[3:v]$v[d];[a][b][c][d]concat=n=4:v=1,loop=loop=-1:size=1000,trim=end_frame=$film,setpts=N/(24000/1001)/TB,drawbox=c=white:t=fill:enable='eq(mod(n\,1440)\,720)',telecine=pattern=23[v]" \
      -map "[v]" -map 4:a -map 5:s -map_chapters 6 -t "$(awk -v n="$film" 'BEGIN { printf "%.3f", n * 1001 / 24000 }')" \
      -c:v mpeg2video -flags +ilme+ildct -g 15 -bf 2 -b:v 6M -maxrate 9M -bufsize 1835k \
      -c:a ac3 -b:a 192k -ac 2 -c:s srt -metadata:s:s:0 language=eng "$out.part.mkv"
    mv "$out.part.mkv" "$out"
  fi
  echo "$out $film"
}

# The real clip a quality benchmark runs on: CLIP=real (default, the 1080p
# mix above), CLIP=twos (the same on twos), CLIP=dark (the same dark and
# grainy) or CLIP=street (the SD camera clip).
real_clip() {
  case ${CLIP:-real} in
    real) real_1080p ;;
    twos) real_twos ;;
    dark) real_dark ;;
    street) street_sd ;;
    *) echo "CLIP: real, twos, dark or street, not ${CLIP}" >&2; exit 2 ;;
  esac
}

overhead() {
  local src; src=$(real_1080p)
  printf '\n%s\n' "clip: $(basename "$src") (real footage, 1920x1080, 90 s), $runs run(s) per preset, drapto and bare interleaved"
  printf '%-7s %10s %10s %7s %9s %9s %7s   %s\n' preset "drapto s" "bare s" ratio "drapto cpu" "bare cpu" "cpu" \
    "drapto stages (s): analysis video audio mux validation"
  for p in ${PRESETS:-4 8 10 12}; do overhead_at "$src" "$p"; done
}

# One preset of the overhead bench: median wall times and the stages of the
# median drapto run.
overhead_at() {
  local src=$1 preset=$2
  local out=$dir/overhead; rm -rf "$out"; mkdir -p "$out"
  local dt=() bt=() dc=() bc=()
  # CPU seconds (user + system, children included) beside the wall time:
  # steal time on a shared host moves the wall clock, not the CPU.
  local TIMEFORMAT='%U %S'
  cpu() { awk '{ printf "%.2f", $1 + $2 }' "$1"; }
  for i in $(seq "$runs"); do
    rm -f "$out"/*.mkv; rm -rf "$DRAPTO_TEMP_DIR"
    local t0; t0=$(now)
    { time "$drapto" encode --json -i "$src" -o "$out" --preset "$preset" --no-chunked >"$out/events-$i.jsonl" 2>"$out/stderr"; } 2>"$out/cpu"
    dt+=("$(sub "$(now)" "$t0")"); dc+=("$(cpu "$out/cpu")")
    t0=$(now)
    { time "$ffmpeg" -hide_banner -loglevel error -y -i "$src" -map 0:v:0 -map 0:a -c:v libsvtav1 -preset "$preset" -crf 25 \
      -pix_fmt yuv420p10le -svtav1-params tune=0:film-grain=0:film-grain-denoise=0 \
      -c:a libopus -b:a 128k -af aformat=channel_layouts=7.1\|5.1\|stereo\|mono -application audio \
      -frame_duration 20 -vbr on -compression_level 10 "$out/bare.mkv" 2>"$out/stderr"; } 2>"$out/cpu"
    bt+=("$(sub "$(now)" "$t0")"); bc+=("$(cpu "$out/cpu")")
  done
  local dm bm dcm bcm; dm=$(printf '%s\n' "${dt[@]}" | median); bm=$(printf '%s\n' "${bt[@]}" | median)
  dcm=$(printf '%s\n' "${dc[@]}" | median); bcm=$(printf '%s\n' "${bc[@]}" | median)
  local stages; stages=$(python3 -c '
import json, sys
t = {}
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["event"] == "stage_complete":
        k = e["stage"]["kind"]
        t[k] = t.get(k, 0) + e["seconds"]
print(" ".join("%.1f" % t.get(k, 0) for k in ["analysis", "video", "audio", "mux", "validation"]))
' "$out/events-1.jsonl")
  printf '%-7s %10.1f %10.1f %7.3f %9.1f %9.1f %7.3f   %s\n' "$preset" "$dm" "$bm" "$(awk -v a="$dm" -v b="$bm" 'BEGIN { print a / b }')" \
    "$dcm" "$bcm" "$(awk -v a="$dcm" -v b="$bcm" 'BEGIN { print a / b }')" "$stages"
}

rerun() {
  local d=$dir/rerun; rm -rf "$d" "$DRAPTO_TEMP_DIR"; mkdir -p "$d/in" "$d/out"
  "$ffmpeg" -hide_banner -loglevel error -y -i .tools/footage/bikes.mp4 -t 2 -c:v libx264 -preset veryfast -an "$d/one.mkv"
  for i in $(seq -w 50); do cp "$d/one.mkv" "$d/in/film$i.mkv"; done
  local first second
  first=$(timed "$drapto" encode -q -i "$d/in" -o "$d/out" --preset 12 --no-chunked)
  second=$(timed "$drapto" encode -q -i "$d/in" -o "$d/out" --preset 12 --no-chunked)
  printf '\n%-40s %s\n' "50 small files, first run (wall, CPU s)" "$first" "rerun, all finished (wall, CPU s)" "$second"
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

# Runs a command; prints "wall user+sys" seconds (children included).
timed() {
  local TIMEFORMAT='%R %U %S' t
  t=$( { time "$@" >/dev/null; } 2>&1 | tail -n1)
  awk '{ printf "%.2f %.2f", $1, $2 + $3 }' <<<"$t"
}

chunked() {
  local src; src=$(clip_1080p)
  local out=$dir/chunked; rm -rf "$out" "$DRAPTO_TEMP_DIR"; mkdir -p "$out/std" "$out/chk"
  # The standard encode runs before and after the chunked one: this
  # machine's speed drifts by 10-20% over minutes, and the cost is taken
  # against the mean of the two.
  local s1 c s2
  s1=$(timed "$drapto" encode -q -i "$src" -o "$out/std" --preset "$preset" --no-chunked)
  c=$(timed bash -c '"$0" encode --json -i "$1" -o "$2" --preset "$3" --chunked >"$4"' \
    "$drapto" "$src" "$out/chk" "$preset" "$out/events.jsonl")
  rm -f "$out/std"/*.mkv
  s2=$(timed "$drapto" encode -q -i "$src" -o "$out/std" --preset "$preset" --no-chunked)
  python3 scripts/bench_chunked.py "$ffmpeg" "$src" "$out" "$s1" "$c" "$s2" "$preset"
}

# A private sshd on 127.0.0.1 that lets this user in as host "loop".
start_sshd() {
  local d=$1 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rm -f "$d"/client* "$d"/host*
  ssh-keygen -q -t ed25519 -N '' -f "$d/client"; ssh-keygen -q -t ed25519 -N '' -f "$d/host"
  printf 'Port %s\nListenAddress 127.0.0.1\nHostKey %s/host\nAuthorizedKeysFile %s/client.pub\nPidFile %s/sshd.pid\nPasswordAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n' \
    "$port" "$d" "$d" "$d" >"$d/sshd_config"
  printf 'Host loop\n  HostName 127.0.0.1\n  Port %s\n  User %s\n  IdentityFile %s/client\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n  LogLevel ERROR\n' \
    "$port" "$(id -un)" "$d" >"$d/ssh_config"
  mkdir -p /run/sshd 2>/dev/null || true
  /usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log"
  sleep 0.5
}

distributed() {
  local src=$dir/clip720_30s.mkv d; d=$(mkdir -p "$dir/ssh" && cd "$dir/ssh" && pwd)
  if [ ! -f "$src" ]; then
    "$ffmpeg" -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1280x720:rate=24:duration=30" \
      -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=30" -c:v libx264 -preset veryfast -crf 18 -c:a flac "$src"
  fi
  start_sshd "$d"
  trap 'kill "$(cat "'"$d"'/sshd.pid")" 2>/dev/null || true' EXIT
  printf '2/:\n' >"$d/hosts-local"; printf ':\nloop\n' >"$d/hosts-two"
  export DRAPTO_SSH="ssh -F $d/ssh_config" DRAPTO_REMOTE_DRAPTO="DRAPTO_FFMPEG=$ffmpeg $drapto"
  local common=(--json encode -i "$src" --preset 10 --chunk-size 5 --parallel-jobs 2 --chunked)
  local t=() names=("drapto workers (2)" "GNU Parallel, ':' x2" "GNU Parallel, ':' + ssh host")
  local i=0
  for hosts in "" "$d/hosts-local" "$d/hosts-two"; do
    rm -rf "$DRAPTO_TEMP_DIR" "$dir/dist-out"
    local t0; t0=$(now)
    if [ -z "$hosts" ]; then "$drapto" "${common[@]}" -o "$dir/dist-out" >"$dir/dist-$i.jsonl"
    else "$drapto" "${common[@]}" -o "$dir/dist-out" --hosts "$hosts" >"$dir/dist-$i.jsonl"; fi
    t+=("$(sub "$(now)" "$t0")")
    i=$((i + 1))
  done
  local segs; segs=$(grep -c '"segment_complete"' "$dir/dist-0.jsonl")
  printf '\n%-34s %s\n' "clip" "$(basename "$src") (1280x720, 30 s, preset 10, $segs segments, 2 slots each way)"
  for i in 0 1 2; do
    local hosts_used; hosts_used=$(grep '"segment_complete"' "$dir/dist-$i.jsonl" | python3 -c 'import sys,json,collections; print(dict(collections.Counter(json.loads(l).get("host") or "-" for l in sys.stdin)))')
    printf '%-34s %8.1f s   segments by host %s\n' "${names[$i]}" "${t[$i]}" "$hosts_used"
  done
  printf '%-34s %8.2f s\n' "overhead per segment, ':' only" "$(awk -v a="${t[1]}" -v b="${t[0]}" -v n="$segs" 'BEGIN { print (a - b) / n }')"
  printf '%-34s %8.2f s\n' "overhead per segment, with ssh" "$(awk -v a="${t[2]}" -v b="${t[0]}" -v n="$segs" 'BEGIN { print (a - b) / n }')"
}

quality() {
  local src; src=$(real_clip)
  rm -rf "$DRAPTO_TEMP_DIR"
  python3 scripts/bench_quality.py "$ffmpeg" "$(command -v ffprobe)" "$drapto" "$src" "$dir/quality/$(basename "$src" .mkv)" "$preset" \
    "${TARGET:-93}" "${LADDER:-24 28 32 36}" "${MODES:-slope target}"
}

frontier() {
  local src; src=$(REAL_SECONDS=${REAL_SECONDS:-34} real_clip)
  rm -rf "$DRAPTO_TEMP_DIR"
  python3 scripts/bench_frontier.py "$ffmpeg" "$(command -v ffprobe)" "$drapto" "$src" \
    "$dir/frontier/$(basename "$src" .mkv)" "${TARGET:-93}" "$preset" "${PRESETS:-4 6 8 10 12}" "${CHUNKED_PRESETS:-}"
}

xpsnr() {
  local src; src=$(REAL_SECONDS=${REAL_SECONDS:-34} real_clip)
  python3 scripts/bench_xpsnr.py "$ffmpeg" "$src" "$dir/quality/$(basename "$src" .mkv)" "${TARGET:-93}"
}

episode() {
  local src film; read -r src film < <(dvd_episode)
  rm -rf "$DRAPTO_TEMP_DIR"
  python3 scripts/bench_episode.py "$ffmpeg" "$(command -v ffprobe)" "$drapto" "$src" "$film" \
    "$dir/episode" "$preset" "${STOP_AT:-0.4}"
}

pieces() {
  local src; src=$(REAL_SECONDS=${REAL_SECONDS:-34} real_clip)
  python3 scripts/bench_pieces.py "$ffmpeg" "$src" "$dir/quality/$(basename "$src" .mkv)" "${TARGET:-93}" \
    "${SURVEY_PRESET:-8}" "${PIECES:-8 12 24}"
}
sampling() {
  local src; src=$(REAL_SECONDS=${REAL_SECONDS:-34} real_1080p)
  python3 scripts/bench_sampling.py "$ffmpeg" "$drapto" "$src" "$dir/sampling" "$preset" "${CRF:-32}"
}

library() {
  local d=$dir/library; rm -rf "$d" "$DRAPTO_TEMP_DIR"; mkdir -p "$d/lib" "$d/out"
  "$ffmpeg" -hide_banner -loglevel error -y -i .tools/footage/bikes.mp4 -t 2 -c:v libx264 -preset veryfast -an "$d/rip.mkv"
  # 100 titles of 20 files each: 5 of them with a rip, the others extras.
  for t in $(seq -w 100); do
    local f="$d/lib/Movies/Title $t"; mkdir -p "$f/Extras"
    for e in $(seq 1 14); do printf 'x%.0s' $(seq 1 64) > "$f/Extras/Featurette $e.mkv"; done
    printf 'nfo' > "$f/Title $t.nfo"; printf 'jpg' > "$f/poster.jpg"; printf 'srt' > "$f/Title $t.en.srt"
    printf 'x' > "$f/.hidden"; printf 'x' > "$f/Title $t.mkv.part"
    if [ $((10#$t % 20)) -eq 0 ]; then cp "$d/rip.mkv" "$f/Title $t.mkv"; else printf 'tiny' > "$f/Title $t.mkv"; fi
  done
  local files; files=$(find "$d/lib" -type f | wc -l)
  local flags=(--min-size 10KB --file-pattern '*.mkv' --preset 12 --no-chunked --max-output-ratio 0)
  local dry first second
  dry=$(timed "$drapto" encode -q --dry-run -i "$d/lib" -o "$d/out" "${flags[@]}")
  first=$(timed "$drapto" encode -q -i "$d/lib" -o "$d/out" "${flags[@]}")
  second=$(timed "$drapto" encode -q -i "$d/lib" -o "$d/out" "${flags[@]}")
  printf '\n%s files, %s rips encoded\n' "$files" "$(find "$d/out" -name '*.mkv' | wc -l)"
  printf '%-44s %s\n' "dry run (wall, CPU s)" "$dry" "first run, 5 rips encoded (wall, CPU s)" "$first" \
    "rerun, every rip finished (wall, CPU s)" "$second"
  # Watch: a rip written over 5 s; the time from its last write to its encode's start.
  rm -rf "$d/wlib" "$d/wout"; mkdir -p "$d/wlib"
  python3 - "$drapto" "$d/wlib" "$d/wout" "$d/rip.mkv" "${SETTLE:-120}" <<'PY'
import json, subprocess, sys, time, threading
drapto, lib, out, rip, settle = sys.argv[1:6]
p = subprocess.Popen([drapto, "watch", "--json", "--settle", settle, "--preset", "12", "--no-chunked", "--max-output-ratio", "0", "-i", lib, "-o", out],
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
started = {}
def read():
    for line in p.stdout:
        e = json.loads(line)
        if e.get("event") == "file_started":
            started["t"] = time.time()
threading.Thread(target=read, daemon=True).start()
time.sleep(2)
data = open(rip, "rb").read()
with open(f"{lib}/New.mkv", "wb") as f:
    for i in range(5):
        f.write(data[i * len(data) // 5:(i + 1) * len(data) // 5]); f.flush(); time.sleep(1)
done = time.time()
while "t" not in started and time.time() - done < int(settle) + 120:
    time.sleep(0.1)
p.terminate(); p.wait()
print(f"watch, settle {settle} s: encode started {started.get('t', float('nan')) - done:.1f} s after the last write")
PY
}

case ${1:-} in
  library) library ;;
  overhead) overhead ;;
  rerun) rerun ;;
  analysis) analysis ;;
  chunked) chunked ;;
  distributed) distributed ;;
  quality) quality ;;
  sampling) sampling ;;
  pieces) pieces ;;
  xpsnr) xpsnr ;;
  frontier) frontier ;;
  episode) episode ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
esac
