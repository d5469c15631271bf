#!/usr/bin/env python3
"""The time-bytes frontier (scripts/bench.sh frontier): is the chunked path
at the default preset worth its time against one CRF at any preset?

Usage: bench_frontier.py FFMPEG FFPROBE DRAPTO SRC OUT TARGET DEFAULT_PRESET "PRESETS" "CHUNKED_PRESETS"

- drapto chunked (slope allocation, VMAF target TARGET) at DEFAULT_PRESET and
  at each preset of CHUNKED_PRESETS: its mean VMAF over every frame is the
  quality every other row is compared at.
- For each preset of PRESETS, drapto's standard path at the two whole CRFs
  whose every-frame mean VMAF brackets the chunked run's (found by stepping
  from a first guess), run now, so wall and CPU seconds are of this machine
  as it is; bytes (log), worst 2 s window, wall and CPU interpolated to the
  chunked run's mean: one CRF at equal mean quality. The same again at the
  chunked run's worst 2 s window: what one CRF costs to have no stretch worse
  than the chunked run's worst.

Every output is scored on every frame (vmaf_v0.6.1, 10-bit, frames paired by
number). Results are cached per encode in OUT; delete OUT for fresh times.
"""
import math, sys
from bench_common import Bench, interp

ffmpeg, ffprobe, drapto, src, out, target, default, presets, chunked_presets = sys.argv[1:10]
bench = Bench(ffmpeg, ffprobe, drapto, src, out)
presets = [int(p) for p in presets.split()]
chunked_presets = [int(p) for p in chunked_presets.split() if int(p) != int(default)]

# The CRF one preset needs for VMAF 93 on real 1080p footage, roughly: where the search starts,
# moved by how far the chunked run's CRFs (frame-weighted) lie from this guess at its preset (a
# dark or grainy film needs 5 lower: every step from a wrong guess is an encode scored).
FIRST_GUESS = {4: 37, 5: 37, 6: 37, 7: 36, 8: 35, 9: 33, 10: 31, 11: 28, 12: 28, 13: 28}
# Mean VMAF per CRF step, for the next step's size.
SLOPE = 0.5


def chunked(preset):
    return bench.encode_scored(f"p{preset}-chunked", preset, ["--chunked", "--vmaf-target", target])


def single(preset, crf):
    return bench.encode_scored(f"p{preset}-crf{crf}", preset, ["--no-chunked", "--crf", str(crf)])


def bracket(preset, key, value):
    """The standard path at two CRFs whose `key` ("mean" or "worst2s") lies
    either side of `value` (at most 2 CRF apart), stepping from the first
    guess (runs are cached: the two searches share them)."""
    runs = {}
    crf = FIRST_GUESS.get(preset, 32) + shift
    for _ in range(8):
        runs[crf] = single(preset, crf)
        above = [c for c, r in runs.items() if r[key] >= value]
        below = [c for c, r in runs.items() if r[key] < value]
        if above and below and min(below) - max(above) <= 2:
            return runs[max(above)], runs[min(below)], max(above), min(below)
        r = runs[crf]
        step = max(1, min(4, round(abs(r[key] - value) / SLOPE)))
        crf = crf + step if r[key] >= value else crf - step
        if above and below:
            crf = (max(above) + min(below)) // 2
    raise SystemExit(f"preset {preset}: no two CRFs bracket {key} {value:.2f}: {sorted(runs)}")


def one_crf(preset, key, value):
    """One CRF at `key` = `value`: the bracketing pair interpolated along
    `key` (bytes in log), and the label of the row."""
    a, b, ca, cb = bracket(preset, key, value)
    xs = [a[key], b[key]]
    r = {k: interp(xs, [a[k], b[k]], value) for k in ("mean", "worst2s", "wall", "cpu")}
    r["bytes"] = math.exp(interp(xs, [math.log(a["bytes"]), math.log(b["bytes"])], value))
    what = "mean" if key == "mean" else "worst 2 s"
    return f"one CRF, preset {preset}, equal {what} (CRF {ca}-{cb})", r


base = chunked(int(default))
mean = base["mean"]
weighted = sum(g["crf"] * g["frames"] for g in base["segments"]) / sum(g["frames"] for g in base["segments"])
shift = round(weighted - FIRST_GUESS.get(int(default), 32))
rows = [(f"chunked, preset {default}", base)]
for p in chunked_presets:
    rows.append((f"chunked, preset {p}", chunked(p)))
for p in presets:
    rows.append(one_crf(p, "mean", mean))
for p in presets:
    rows.append(one_crf(p, "worst2s", base["worst2s"]))

print(f"\ntime-bytes frontier: {bench.name} ({bench.width}x{bench.height}, {bench.fps:.3f} fps), VMAF target {target}, "
      f"every frame scored; one CRF interpolated to the chunked preset {default} run's mean VMAF {mean:.2f}")
print(f"{'encode':<46} {'MB':>7} {'mean':>6} {'worst 2s':>8} {'wall s':>7} {'CPU s':>7}  against chunked preset {default}")
for label, r in rows:
    note = ""
    if r is not base:
        smaller, faster = r["bytes"] < base["bytes"], r["wall"] < base["wall"]
        note = (f"{r['bytes'] / base['bytes']:.3f}x bytes, {r['wall'] / base['wall']:.2f}x wall"
                + (": smaller and faster" if smaller and faster else ""))
    print(f"{label:<46} {r['bytes'] / 1e6:>7.2f} {r['mean']:>6.2f} {r['worst2s']:>8.2f} {r['wall']:>7.1f} "
          f"{r['cpu']:>7.1f}  {note}")
dominated = [label for label, r in rows[1:] if label.startswith("one CRF") and "equal mean" in label
             and r["bytes"] < base["bytes"] and r["wall"] < base["wall"]]
print("on the frontier at equal mean VMAF: " + ("yes, no single CRF is both smaller and faster" if not dominated
                             else "no, dominated by " + "; ".join(dominated)))
