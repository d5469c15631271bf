#!/usr/bin/env python3
"""How well a subsampled VMAF measurement stands for every frame
(scripts/bench.sh sampling).

Usage: bench_sampling.py FFMPEG DRAPTO SRC OUT PRESET CRF

SRC (real footage) three ways: as it is, re-timed "on twos" (each picture
held for two frames, as animation is drawn) and "on threes". Each is encoded
once on drapto's standard path at CRF and PRESET, and scored on every frame
(libvmaf vmaf_v0.6.1, 10-bit). Then, over segments of 5 s and 10 s starting
at every whole second (overlapping, so that a 34 s clip gives 30 and 25 of
them, every phase of the film's patterns against the segment start), each
segment's score from a subset of its frames
(harmonic mean, drapto's pooling) against the same segment's every-frame
score, per stride: "fixed" scores frames 0, s, 2s, ... (libvmaf's
n_subsample, what drapto measures), "golden" frames floor(k * (s + 0.618...)),
a placement no periodic pattern aliases with (tried, and less accurate: a
fixed odd stride samples SVT-AV1's 16-frame mini-GOP layers evenly, and
those dominate the per-frame scores). Printed per stride: the mean |error|,
the worst error, and the number of segments within 0.5.

Then where the chunked path's survey takes its samples: one second of
frames per 5 s of segment (at most three), as one piece per second (the
earlier survey) or cut in pieces of 8, 4 or 2 frames spread evenly over the
segment (drapto's `survey_ranges`), and the same with two thirds of the
frames. Each plan's frames are pooled from the same every-frame scores (what
those frames score inside the whole encode), so this is the error of where
the samples lie alone; a probe's own encode of its cut samples adds its own
(measured by `bench.sh quality`).
"""
import json, os, subprocess, sys
from bench_common import harmonic, scored_frames

ffmpeg, drapto, src, out, preset, crf = sys.argv[1:7]
os.makedirs(out, exist_ok=True)
STRIDES = [2, 3, 4, 5, 7, 8, 9, 11, 16]


def run(args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make(pattern):
    """SRC with each picture held `pattern` frames (1: as it is)."""
    path = os.path.join(out, f"src-{pattern}.mkv")
    if not os.path.exists(path):
        vf = "null" if pattern == 1 else f"fps=24/{pattern},fps=24"
        run([ffmpeg, "-y", "-i", src, "-vf", vf, "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "14", path])
    return path


def scores(source, pattern):
    """Per-frame VMAF of drapto's standard encode of `source`."""
    cache = os.path.join(out, f"scores-{pattern}-p{preset}-crf{crf}.json")
    if os.path.exists(cache):
        return json.load(open(cache))
    d = os.path.join(out, f"enc-{pattern}")
    run([drapto, "encode", "-q", "-i", source, "-o", d, "--no-chunked", "--preset", preset, "--crf", crf,
         "--max-output-ratio", "0"])
    enc = os.path.join(d, os.path.basename(source))
    log = os.path.join(out, "frames.json")
    side = "setpts=N/(25*TB),format=yuv420p10le"
    run([ffmpeg, "-i", enc, "-i", source, "-lavfi",
         f"[0:v]{side}[d];[1:v]{side}[r];[d][r]libvmaf=model=version=vmaf_v0.6.1:n_threads=2:log_fmt=json:log_path={log}",
         "-f", "null", "-"])
    s = [f["metrics"]["vmaf"] for f in json.load(open(log))["frames"]]
    os.remove(log)
    json.dump(s, open(cache, "w"))
    return s


PATTERNS = [(1, "as it is"), (2, "on twos"), (3, "on threes")]


def windows():
    """(label, all scores, segment seconds, segments) for every pattern and
    segment length: segments of 5 s and 10 s, one starting every second."""
    for pattern, label in PATTERNS:
        sc = scores(make(pattern), pattern)
        for secs in (5, 10):
            n = 24 * secs
            yield label, sc, secs, [sc[i:i + n] for i in range(0, len(sc) - n + 1, 24)]


def cell(name, errs):
    """mean |error| / worst error / segments within 0.5."""
    ok = sum(1 for e in errs if abs(e) <= 0.5)
    return f"{name}: {sum(abs(e) for e in errs) / len(errs):.2f}/{max(errs, key=abs):+.2f}/{ok}"


print(f"\nsubsampled VMAF against every frame: {os.path.basename(src)}, drapto standard path, preset {preset}, CRF {crf}")
print("per stride: mean |error| / worst error / segments within 0.5 (harmonic mean pooling)")
for label, sc, secs, segs in windows():
    print(f"{label}, {len(segs)} segments of {secs} s, one starting every second (mean {sum(sc) / len(sc):.2f}):")
    for scheme in ("fixed", "golden"):
        cells = [cell(f"{s:>2}", [harmonic([g[i] for i in scored_frames(len(g), scheme, s)]) - harmonic(g) for g in segs])
                 for s in STRIDES]
        print(f"  {scheme:<6} " + "  ".join(cells))


def spread(length, n, each):
    """drapto's sample_ranges: n pieces of `each` frames spread over `length`."""
    if n * each >= length:
        return list(range(length))
    free = length - each
    return [min(free, round(free * (k + 0.5) / n)) + i for k in range(n) for i in range(each)]


PLANS = [(24, 1.0), (8, 1.0), (4, 1.0), (2, 1.0), (8, 2 / 3), (4, 2 / 3)]
print("\nsurvey samples against the whole segment (mean of the samples' frames inside the whole encode):")
print("per plan (frames per piece, share of the survey's frames): mean |error| / worst error / segments within 0.5")
for label, sc, secs, segs in windows():
    n = 24 * secs
    frames = 24 * min(3, max(1, round(secs / 5)))
    cells = []
    for piece, share in PLANS:
        total = round(frames * share)
        k = max(1, total // piece)
        picked = spread(n, k, total // k)
        cells.append(cell(f"{k}x{total // k}", [sum(g[i] for i in picked) / len(picked) - sum(g) / n for g in segs]))
    print(f"  {label:<9} {secs:>2} s ({len(segs)}): " + "  ".join(cells))
