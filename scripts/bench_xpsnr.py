#!/usr/bin/env python3
"""Would XPSNR do for the survey? (scripts/bench.sh xpsnr)

Usage: bench_xpsnr.py FFMPEG SRC OUT TARGET

Reads what `bench.sh quality` left in OUT for SRC: the ladder's encodes of the
whole clip at several CRFs with their per-frame VMAF (every frame), and the
segments of a chunked run (their first frame and length). Scores every frame
of each ladder encode with XPSNR (luma, the static ffmpeg's `xpsnr` filter;
cached in OUT), then per segment and CRF pools VMAF (harmonic mean, as drapto
pools) and XPSNR (mean in the MSE domain).

The survey would decide from XPSNR mapped to VMAF by a line learned from
segments already measured in full. Here each segment is left out in turn:
the line is fitted on the other segments' (XPSNR, VMAF) pairs, the segment's
CRF for TARGET is read from its XPSNR through that line, and compared with
the CRF its real VMAF gives (both interpolated between ladder rungs). Prints
per segment both CRFs, the difference, and the real VMAF at the CRF XPSNR
picks; then the mean |CRF difference| and the mean |VMAF miss|.

A second table keeps one VMAF point per segment (the ladder's middle rung,
as a survey's first probe would be scored) and reads only the change from
XPSNR: VMAF(c) = VMAF(middle) + k * (XPSNR(c) - XPSNR(middle)), with the film's
k fitted through the origin on the other segments' changes: the survey's
second probe scored by XPSNR alone.
"""
import glob, json, math, os, re, subprocess, sys

ffmpeg, src, out, target = sys.argv[1:5]
target = float(target)


def xpsnr_frames(encode):
    """Per-frame luma XPSNR of `encode` against SRC (frames paired by number)."""
    cache = encode + ".xpsnr.json"
    if os.path.exists(cache):
        return json.load(open(cache))
    stats = encode + ".xpsnr.txt"
    side = "setpts=N/(25*TB),format=yuv420p"
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "fatal", "-i", encode, "-i", src, "-lavfi",
                    f"[0:v]{side}[d];[1:v]{side}[r];[d][r]xpsnr=stats_file={stats}", "-f", "null", "-"], check=True)
    values = [float(m.group(1)) for m in re.finditer(r"XPSNR y: *([0-9.inf]+)", open(stats).read())]
    os.remove(stats)
    json.dump(values, open(cache, "w"))
    return values


def harmonic(xs):
    return len(xs) / sum(1.0 / max(x, 1e-6) for x in xs)


def mse_mean(db):
    """Mean of dB values in the MSE domain (what one PSNR over all frames gives)."""
    finite = [min(d, 100.0) for d in db]
    return -10 * math.log10(sum(10 ** (-d / 10) for d in finite) / len(finite))


def crf_for(points, goal):
    """CRF where the (crf, score) points (score falling with CRF) cross goal,
    linearly interpolated; clamped to the ladder's ends."""
    pts = sorted(points)
    for (c0, s0), (c1, s1) in zip(pts, pts[1:]):
        if s0 >= goal >= s1 and s0 != s1:
            return c0 + (s0 - goal) / (s0 - s1) * (c1 - c0)
    return pts[0][0] if goal > pts[0][1] else pts[-1][0]


def score_at(points, crf):
    pts = sorted(points)
    for (c0, s0), (c1, s1) in zip(pts, pts[1:]):
        if c0 <= crf <= c1:
            return s0 + (crf - c0) / (c1 - c0) * (s1 - s0)
    return pts[0][1] if crf < pts[0][0] else pts[-1][1]


def fit(pairs):
    """Least-squares VMAF = a + b * XPSNR."""
    n = len(pairs)
    mx = sum(x for x, _ in pairs) / n
    my = sum(y for _, y in pairs) / n
    sxx = sum((x - mx) ** 2 for x, _ in pairs)
    b = sum((x - mx) * (y - my) for x, y in pairs) / sxx
    return my - b * mx, b


rungs = []
for path in sorted(glob.glob(os.path.join(out, "p*-crf*.json"))):
    m = re.search(r"p(\d+)-crf(\d+)\.json$", path)
    r = json.load(open(path))
    encode = os.path.join(out, os.path.basename(path)[:-5], os.path.basename(src))
    if m and r.get("scores") and os.path.exists(encode):
        rungs.append((int(m.group(2)), r["scores"], xpsnr_frames(encode)))
chunked = sorted(glob.glob(os.path.join(out, "p*-chunked-*.json")))
segs = [s for s in json.load(open(chunked[0]))["segments"] if "start" in s] if chunked else []
if len(rungs) < 2 or len(segs) < 3:
    sys.exit(f"{out}: needs a ladder of two CRFs or more and a chunked run (scripts/bench.sh quality)")

# Per segment: [(crf, vmaf, xpsnr)] over the ladder.
table = [[(c, harmonic(v[s["start"]:s["start"] + s["frames"]]), mse_mean(x[s["start"]:s["start"] + s["frames"]]))
          for c, v, x in rungs] for s in segs]
def report(title, pick):
    """Prints per segment the CRF by VMAF and by `pick(i, rows)` (a curve of
    (crf, predicted VMAF) for segment i), and the summary."""
    print(title)
    print(f"{'seg':>4} {'frames':>6} {'CRF by VMAF':>11} {'CRF by XPSNR':>12} {'diff':>6} {'VMAF there':>10}")
    diffs, misses = [], []
    for i, (s, rows) in enumerate(zip(segs, table)):
        by_vmaf = crf_for([(c, v) for c, v, _ in rows], target)
        by_xpsnr = crf_for(pick(i, rows), target)
        there = score_at([(c, v) for c, v, _ in rows], by_xpsnr)
        diffs.append(by_xpsnr - by_vmaf)
        misses.append(there - target)
        print(f"{i + 1:>4} {s['frames']:>6} {by_vmaf:>11.2f} {by_xpsnr:>12.2f} {by_xpsnr - by_vmaf:>+6.2f} {there:>10.2f}")
    print(f"mean |CRF difference| {sum(map(abs, diffs)) / len(diffs):.2f}, worst {max(diffs, key=abs):+.2f}; "
          f"mean |VMAF miss| {sum(map(abs, misses)) / len(misses):.2f}, worst {max(misses, key=abs):+.2f}")


def whole_line(i, rows):
    """Segment i's curve from its XPSNR alone, through the line fitted on
    the other segments."""
    a, b = fit([(x, v) for j, other in enumerate(table) if j != i for _, v, x in other])
    return [(c, a + b * x) for c, _, x in rows]


mid = len(rungs) // 2


def changes(i, rows):
    """Segment i's curve from its middle rung's VMAF and XPSNR's changes."""
    pairs = [(x - other[mid][2], v - other[mid][1]) for j, other in enumerate(table) if j != i for _, v, x in other]
    k = sum(x * v for x, v in pairs) / max(sum(x * x for x, _ in pairs), 1e-9)
    return [(c, rows[mid][1] + k * (x - rows[mid][2])) for c, _, x in rows]


report(f"\nXPSNR for the survey: {os.path.basename(src)}, ladder CRF {', '.join(str(c) for c, _, _ in rungs)}, "
       f"target {target}; per segment, the line XPSNR -> VMAF fitted on the other segments", whole_line)
report(f"\none VMAF point per segment (CRF {rungs[mid][0]}), the change from XPSNR (the film's k, other segments):",
       changes)
