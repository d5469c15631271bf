#!/usr/bin/env python3
"""Quality per byte of the chunked path against the single-CRF curve
(scripts/bench.sh quality).

Usage: bench_quality.py FFMPEG FFPROBE DRAPTO SRC OUT PRESET TARGET "LADDER" "MODES"
(a mode: an allocation, "slope" or "target", optionally with a segment length: "slope:5")

- The ladder: drapto's standard path (--no-chunked) at each CRF of LADDER,
  the same encoder parameters and filters as the chunked path's segments.
- drapto chunked: one run per allocation of MODES (DRAPTO_CHUNKED_ALLOCATION).
- ab-av1 auto-encode --min-vmaf TARGET when it is on PATH.

Every output is scored on every frame against the source (vmaf_v0.6.1, 10-bit,
frames paired by number, through the plan's filters, scaled as drapto scores:
pictures under 1080p fitted to 1920x1080 as shown). Per encode: video bytes, mean VMAF,
worst 2-second window (mean over a sliding 2 s), 1st-percentile frame, wall
time. Then, for each chunked run: the single-CRF curve's size at the same mean
VMAF (log-size interpolated between ladder rungs), the ratio, the curve's worst
window at that mean, and the bytes one CRF needs to reach the run's worst
window; and its wall time against the standard path's, run again right after
it at the ladder's CRF of equal mean VMAF (the machine's speed drifts, so the
ladder's cached times are printed beside it, not relied on). Results are
cached per file in OUT (a rung is encoded and scored once per source and
preset).
"""
import json, math, os, shutil, subprocess, sys, time
from bench_common import Bench, harmonic, interp, scored_frames

ffmpeg, ffprobe, drapto, src, out, preset, target, ladder, modes = sys.argv[1:10]
ladder = [int(c) for c in ladder.split()]
modes = modes.split()
bench = Bench(ffmpeg, ffprobe, drapto, src, out)
name, width, height, fps = bench.name, bench.width, bench.height, bench.fps


def standard_beside(mean):
    """The standard path's wall and CPU time on SRC, run now, at the ladder's
    CRF of equal mean VMAF (to the nearest integer): the cost of a chunked run
    is taken against it, both on the machine as it is now (its speed drifts
    by 10-20% over hours, so the ladder's cached times are no measure)."""
    means = [rungs[c]["mean"] for c in ladder]
    crf = round(interp(means, ladder, mean))
    _, wall, cpu, _ = bench.run_drapto(f"p{preset}-standard-now", preset, ["--no-chunked", "--crf", str(crf)])
    return {"crf": crf, "wall": wall, "cpu": cpu}


def measured(tag, args, env_extra=None):
    """The figures of one encode, from the cache when it has them (a chunked
    run's with the standard path's time measured right after it)."""
    r = bench.encode_scored(tag, preset, args, env_extra)
    if r["segments"] and "standard" not in r:
        r["standard"] = standard_beside(r["mean"])
        json.dump(r, open(os.path.join(out, f"{tag}.json"), "w"))
    return r


def stride_report(r):
    """How far each segment's subsampled score (harmonic mean, as drapto
    pools) is from the same segment scored on every frame, per stride and
    placement; and how far drapto's own accepted measurement was."""
    segs = [s for s in r["segments"] if "start" in s]
    lines = [f"measurement against every frame, {r['tag']} ({len(segs)} segments, harmonic mean pooling):"]
    full = [harmonic(r["scores"][s["start"]:s["start"] + s["frames"]]) for s in segs]
    own = [s["measured"] - f for s, f in zip(segs, full) if s["measured"] is not None]
    if own:
        lines.append(f"  drapto's accepted scores: mean error {sum(own) / len(own):+.2f}, worst {max(own, key=abs):+.2f}, "
                     f"within 0.5: {sum(1 for e in own if abs(e) <= 0.5)}/{len(own)}")
    for scheme in ("fixed", "golden"):
        for st in (2, 3, 5, 7, 8, 9, 11, 13, 16):
            errs = []
            for s, f in zip(segs, full):
                seg = r["scores"][s["start"]:s["start"] + s["frames"]]
                errs.append(harmonic([seg[i] for i in scored_frames(len(seg), scheme, st)]) - f)
            lines.append(f"  {scheme:<6} every {st:>2}: mean error {sum(errs) / len(errs):+.2f}, worst {max(errs, key=abs):+.2f}, "
                         f"within 0.5: {sum(1 for e in errs if abs(e) <= 0.5)}/{len(errs)}")
    return "\n".join(lines)


rows = [measured(f"p{preset}-crf{c}", ["--no-chunked", "--crf", str(c)]) for c in ladder]
rungs = {c: r for c, r in zip(ladder, rows)}
for m in modes:
    # "slope" or "slope:5" (with segments of about 5 s).
    alloc, _, chunk = m.partition(":")
    env = {} if alloc == "default" else {"DRAPTO_CHUNKED_ALLOCATION": alloc}
    if chunk:
        env["DRAPTO_CHUNK_SIZE"] = chunk
    rows.append(measured(f"p{preset}-chunked-{m.replace(':', '-')}", ["--chunked", "--vmaf-target", target], env))
ab = shutil.which("ab-av1")
if ab:
    cache = os.path.join(out, f"p{preset}-ab-av1.json")
    if not os.path.exists(cache):
        abo = os.path.join(out, f"p{preset}-ab-av1.mkv")
        env = dict(os.environ, PATH=os.path.dirname(os.path.abspath(ffmpeg)) + os.pathsep + os.environ["PATH"])
        t0 = time.time()
        subprocess.run([ab, "auto-encode", "-i", src, "-o", abo, "--preset", preset, "--min-vmaf", target,
                        "--pix-format", "yuv420p10le", "--svt", "tune=0", "--acodec", "libopus"], env=env, check=True,
                       capture_output=True)
        wall = time.time() - t0
        mean, worst, p1 = bench.figures(bench.per_frame_vmaf(abo, rows[0]["filters"]))
        json.dump({"tag": "ab-av1", "bytes": bench.video_bytes(abo), "mean": mean, "worst2s": worst, "p1": p1, "wall": wall,
                   "segments": []}, open(cache, "w"))
    rows.append(json.load(open(cache)))

curve = sorted((r["mean"], math.log(r["bytes"]), r["worst2s"]) for r in rows[:len(ladder)])
vm, lb, ww = zip(*curve)
print(f"\nquality per byte: {name} ({width}x{height}, {fps:.3f} fps), preset {preset}, VMAF target {target}; "
      f"every frame scored (vmaf_v0.6.1), video bytes only")
print(f"{'encode':<28} {'MB':>8} {'mean':>7} {'worst 2s':>8} {'1% frame':>8} {'wall s':>7}  vs one CRF at equal mean")
for r in rows:
    extra = ""
    if r in rows[len(ladder):]:
        size_at = math.exp(interp(vm, lb, r["mean"]))
        worst_at = interp(vm, ww, r["mean"])
        need = math.exp(interp(ww, lb, r["worst2s"]))
        extra = (f"size {r['bytes'] / size_at:.3f}x (curve {size_at / 1e6:.2f} MB), curve's worst 2 s {worst_at:.2f}; "
                 f"one CRF reaching this worst 2 s: {need / 1e6:.2f} MB")
    print(f"{r['tag']:<28} {r['bytes'] / 1e6:>8.2f} {r['mean']:>7.2f} {r['worst2s']:>8.2f} {r['p1']:>8.2f} "
          f"{r['wall']:>7.1f}  {extra}")
for r in rows[len(ladder):]:
    segs = r["segments"]
    if not segs:
        continue
    t = float(target)
    within = sum(1 for s in segs if s["measured"] is not None and t - 1 <= s["measured"] <= t + 2)
    full = [s["full_frame"] for s in segs if "full_frame" in s]
    crfs = [s["crf"] for s in segs]
    line = (f"{r['tag']}: {len(segs)} segments, CRF {min(crfs):.2f}-{max(crfs):.2f}, {r.get('probes', '?')} probes, "
            f"{r.get('encodes', '?')} segment encodes; within [t-1, t+2]: drapto's measurement {within}/{len(segs)}")
    if full:
        ok = sum(1 for f in full if t - 1 <= f <= t + 2)
        line += f", full-frame {ok}/{len(full)} ({100 * ok / len(full):.0f}%), lowest segment {min(full):.2f}"
    print(line)
for r in rows[len(ladder):]:
    if r["segments"] and "scores" in r:
        print(stride_report(r))
walls = {c: rungs[c]["wall"] for c in ladder}
print("standard path wall by CRF: " + ", ".join(f"{c}: {w:.1f} s" for c, w in walls.items()))
for r in rows[len(ladder):]:
    if r["segments"]:
        # The standard encode of equal quality: the ladder's wall time interpolated at the run's mean VMAF.
        std = interp([rungs[c]["mean"] for c in ladder], [walls[c] for c in ladder], r["mean"])
        line = (f"cost {r['tag']}: {r['wall']:.1f} s = {r['wall'] / std:.2f}x the ladder's standard-path time at "
                f"equal mean VMAF ({std:.1f} s, cached)")
        if "standard" in r:
            s = r["standard"]
            line += (f"; {r['wall'] / s['wall']:.2f}x the standard path run right after it "
                     f"(CRF {s['crf']}: {s['wall']:.1f} s)")
            if "cpu" in r and "cpu" in s:
                line += f"; CPU {r['cpu']:.0f} s = {r['cpu'] / s['cpu']:.2f}x its {s['cpu']:.0f} s"
        print(line)
