#!/usr/bin/env python3
"""How well do the survey's samples speak for their segment, by piece length?
(scripts/bench.sh pieces)

Usage: bench_pieces.py FFMPEG SRC OUT TARGET SURVEY_PRESET PIECES

Reads what `bench.sh quality` left in OUT for SRC: the ladder's encodes of the
whole clip at several CRFs (drapto's standard path) with every frame's VMAF.
Over windows of 5 s every 2.5 s (segments as the survey sees them), cuts the
survey's sample the way drapto does (one second of frames per 5 s of
segment, in pieces of N frames spread evenly over it, back to back, raw),
encodes it at each ladder CRF at SURVEY_PRESET with drapto's encoder settings,
and scores every frame against the cut. Per window it reads the CRF for
TARGET from the sample (pooled as drapto's probe pools: harmonic mean of
every 3rd frame but those that follow a cut; and from every frame) and from
the whole encodes' frames of the window, both on the log-deficit line
between ladder rungs. Prints per piece length of PIECES the difference per
window (sample − whole; positive: the sample says a higher CRF will do),
its mean, which the plan's bias learns, and its spread, which no film-wide
correction removes: each CRF of spread is a segment planned off its mark.
The cuts and encodes are cached in OUT/pieces. SCALE=half cuts the samples
at half the width and height (encoded and scored there), to ask whether a
survey of smaller pictures would rank segments as well, for a quarter of the
pixels; the CPU seconds of its encodes and scores are printed beside.
"""
import json, math, os, statistics, subprocess, sys

sys.path.insert(0, os.path.dirname(__file__))
from bench_common import harmonic  # noqa: E402

ffmpeg, src, out, target, preset, pieces = sys.argv[1:7]
target, pieces = float(target), [int(p) for p in pieces.split()]
half = os.environ.get("SCALE", "") == "half"
work = os.path.join(out, "pieces")
os.makedirs(work, exist_ok=True)
ladder = {}
for name in sorted(os.listdir(out)):
    if name.startswith("p") and "-crf" in name and name.endswith(".json"):
        r = json.load(open(os.path.join(out, name)))
        ladder[float(name.split("-crf")[1][:-5])] = r["scores"]
if len(ladder) < 2:
    sys.exit(f"no ladder in {out}: run `scripts/bench.sh quality` with the same CLIP first")
crfs = sorted(ladder)
frames = min(len(s) for s in ladder.values())
rate = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=avg_frame_rate", "-of", "csv=p=0",
                       src], capture_output=True, text=True)
num, _, den = rate.stdout.strip().partition("/")
fps = float(num) / float(den or 1)
window, stride = round(5 * fps), round(2.5 * fps)


def sample_ranges(start, length, piece):
    """drapto's survey_ranges: one second per 5 s (1 to 3), in pieces of `piece`."""
    count = min(max(round(length / fps / 5.0), 1), 3)
    total = round(count * fps)
    n = max(total // piece, 1)
    each = total // n
    if each * n >= length:
        return [(start, length)]
    free = length - each
    return [(start + min(round(free * (k + 0.5) / n), free), each) for k in range(n)]


def run(args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def frame_scores(encode, reference):
    side = "setpts=N/(25*TB),format=yuv420p"
    r = subprocess.run([ffmpeg, "-v", "error", "-i", encode, "-i", reference, "-lavfi",
                        f"[0:v]{side}[d];[1:v]{side}[r];[d][r]libvmaf=model=version=vmaf_v0.6.1:log_fmt=csv:log_path=/dev/stdout",
                        "-f", "null", "-"], check=True, capture_output=True, text=True).stdout
    rows = [line.split(",") for line in r.strip().splitlines()]
    column = rows[0].index("vmaf")
    return [float(row[column]) for row in rows[1:]]


def sample_scores(start, piece):
    """(drapto's probe pooling, every frame) of the window's sample at each ladder CRF."""
    ranges = sample_ranges(start, window, piece)
    cache = os.path.join(work, f"w{start}-n{piece}-p{preset}{'-half' if half else ''}.json")
    if os.path.exists(cache):
        return {(k if k == "cpu" else float(k)): v for k, v in json.load(open(cache)).items()}
    cut = os.path.join(work, "cut.nut")
    keep = "+".join(f"between(n\\,{a}\\,{a + c - 1})" for a, c in ranges)
    scale = ",scale=iw/2:ih/2:flags=bicubic" if half else ""
    run([ffmpeg, "-v", "error", "-y", "-i", src, "-an", "-sn", "-vf", f"select={keep},setpts=N/({fps}*TB){scale}",
         "-fps_mode", "passthrough", "-c:v", "rawvideo", "-f", "nut", cut])
    starts, at = set(), 0
    for _, c in ranges:
        starts.add(at)
        at += c
    result = {}
    before = os.times()
    for crf in crfs:
        encode = os.path.join(work, "probe.mkv")
        run([ffmpeg, "-v", "error", "-y", "-i", cut, "-c:v", "libsvtav1", "-preset", str(preset), "-crf", str(int(crf)),
             "-pix_fmt", "yuv420p10le", "-svtav1-params", "tune=0:film-grain=0:film-grain-denoise=0", encode])
        s = frame_scores(encode, cut)
        probe = [x for k, x in enumerate(s) if k % 3 == 0 and k not in starts] or s
        result[crf] = (harmonic(probe), harmonic(s[1:]))
    after = os.times()
    result["cpu"] = (after.children_user + after.children_system - before.children_user - before.children_system, 0)
    json.dump(result, open(cache, "w"))
    return result


def crf_for(points):
    """CRF where (crf, score) points cross TARGET, on the log-deficit line
    between neighbouring rungs (extrapolated from the end pairs)."""
    pts = sorted(points)
    y = math.log(100 - target)
    ys = [math.log(max(100 - s, 0.01)) for _, s in pts]
    pairs = list(zip(zip([c for c, _ in pts], ys), zip([c for c, _ in pts][1:], ys[1:])))
    (c0, y0), (c1, y1) = next((p for p in pairs if p[0][1] <= y <= p[1][1]), pairs[0] if y < ys[0] else pairs[-1])
    return c0 + (y - y0) * (c1 - c0) / ((y1 - y0) or 1e-9)


starts = list(range(0, frames - window + 1, stride))
print(f"{os.path.basename(src)}: {len(starts)} windows of {window} frames, ladder CRFs {crfs}, survey preset {preset}, "
      f"target {target}")
print("CRF for the target read from the sample minus from the whole (per window; mean; spread)"
      + (" — samples at half size" if half else ""))
for piece in pieces:
    cpu = 0.0
    for k, label in ((0, "probe scoring"), (1, "every frame")):
        d = []
        for s in starts:
            whole = crf_for([(c, harmonic(ladder[c][s:s + window])) for c in crfs])
            scores = sample_scores(s, piece)
            cpu = cpu + scores["cpu"][0] if k == 0 else cpu
            sample = crf_for([(c, v[k]) for c, v in scores.items() if c != "cpu"])
            d.append(sample - whole)
        print(f"pieces of {piece:>2}, {label:<13}: " + " ".join(f"{x:+.1f}" for x in d) +
              f" | mean {statistics.mean(d):+.2f}, sd {statistics.pstdev(d):.2f}")
    print(f"pieces of {piece:>2}: encode and score CPU {cpu:.1f} s over {len(starts)} windows x {len(crfs)} CRFs"
          " (cached windows count as 0)")
