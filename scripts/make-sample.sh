#!/usr/bin/env bash
# Generates a small sample "rip": OUT.mkv with a moving test picture, two
# audio tracks (stereo English, 5.1 French with a title), SRT and ASS
# subtitles, a font attachment, chapters and a title.
# Usage: scripts/make-sample.sh OUT.mkv [WIDTHxHEIGHT] [SECONDS]
set -euo pipefail
out=${1:?usage: make-sample.sh OUT.mkv [WIDTHxHEIGHT] [SECONDS]}
size=${2:-1280x720}
secs=${3:-10}
ffmpeg=${DRAPTO_FFMPEG:-ffmpeg}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
half=$((secs / 2))
cat >"$tmp/subs.srt" <<SRT
1
00:00:01,000 --> 00:00:03,000
Hello from drapto's sample.

2
00:00:0${half},000 --> 00:00:0$((half + 1)),500
Second line.
SRT
cat >"$tmp/subs.ass" <<ASS
[Script Info]
ScriptType: v4.00+
PlayResX: 384
PlayResY: 288

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Sample Sans,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:01.00,0:00:03.00,Default,,0,0,0,,Styled hello
ASS
printf ';FFMETADATA1\ntitle=drapto sample\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=%d\ntitle=Opening\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=%d\nEND=%d\ntitle=Ending\n' \
  $((half * 1000)) $((half * 1000)) $((secs * 1000)) >"$tmp/meta.txt"
head -c 4096 /dev/urandom >"$tmp/SampleSans.ttf"
"$ffmpeg" -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=$size:rate=24000/1001:duration=$secs" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$secs" \
  -f lavfi -i "sine=frequency=220:sample_rate=48000:duration=$secs" \
  -i "$tmp/subs.srt" -i "$tmp/subs.ass" -i "$tmp/meta.txt" \
  -attach "$tmp/SampleSans.ttf" -metadata:s:t:0 mimetype=application/x-truetype-font \
  -map 0:v -map 1:a -map 2:a -map 3:s -map 4:s -map_metadata 5 -map_chapters 5 \
  -c:v libx264 -preset veryfast -crf 18 -pix_fmt yuv420p \
  -c:a:0 flac -ac:a:0 2 -c:a:1 ac3 -b:a:1 384k -ac:a:1 6 \
  -c:s copy \
  -metadata:s:a:0 language=eng -metadata:s:a:1 language=fre -metadata:s:a:1 title="Surround 5.1" \
  -metadata:s:s:0 language=eng -metadata:s:s:1 language=eng -metadata:s:s:1 title=Styled \
  -disposition:a:0 default -disposition:a:1 0 -disposition:s:0 0 -disposition:s:1 forced \
  "$out"
echo "$out"
