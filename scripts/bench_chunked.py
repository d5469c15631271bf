#!/usr/bin/env python3
"""Scores a chunked drapto encode for scripts/bench.sh chunked.

Reads the run's --json events, measures the full-frame (n_subsample=1) VMAF of
every frame of the output against the source in one libvmaf pass, pools it per
segment (harmonic mean, as drapto does), and prints a table: per segment the
CRF, drapto's predicted (samples) and measured scores and the full-frame truth;
then mean absolute error against the target, the share within
[target - 1, target + 2], and the cost against the standard encode.
Optionally runs ab-av1 (auto-encode) on the same clip when it is on PATH.
"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

ffmpeg, src, out, std1, chk, std2, preset = sys.argv[1:8]
# Each timing is "wall cpu" seconds.
(s1_wall, s1_cpu), (t_chk, c_cpu), (s2_wall, s2_cpu) = (tuple(map(float, t.split())) for t in (std1, chk, std2))
t_std = (s1_wall + s2_wall) / 2
events = [json.loads(l) for l in open(os.path.join(out, "events.jsonl")) if l.strip()]
plan = next(e for e in events if e["event"] == "analysis_complete")["plan"]
target = plan["chunked"]["target"]
filters = ",".join(plan["video"]["filters"])
segs = sorted((e for e in events if e["event"] == "segment_complete"), key=lambda e: e["segment"])
encoded = os.path.join(out, "chk", os.path.basename(src))
standard = os.path.join(out, "std", os.path.basename(src))


def per_frame_vmaf(distorted):
    """Per-frame VMAF of distorted against src, every frame, 1080p model."""
    log = tempfile.mktemp(suffix=".json")
    ref = (filters + "," if filters else "") + "setpts=N/(25*TB),format=yuv420p10le"
    graph = (f"[0:v]setpts=N/(25*TB),format=yuv420p10le[d];[1:v]{ref}[r];"
             f"[d][r]libvmaf=model=version=vmaf_v0.6.1:n_subsample=1:n_threads=2:log_fmt=json:log_path={log}")
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "fatal", "-i", distorted, "-i", src,
                    "-lavfi", graph, "-f", "null", "-"], check=True)
    frames = json.load(open(log))["frames"]
    os.remove(log)
    return [f["metrics"]["vmaf"] for f in frames]


def hmean(xs):
    return len(xs) / sum(1.0 / max(x, 1e-6) for x in xs)


scores = per_frame_vmaf(encoded)
rows, errors, within = [], [], 0
for s in segs:
    a, n = s["start_frame"], s["frames"]
    truth = hmean(scores[a:a + n])
    errors.append(abs(truth - target))
    ok = target - 1 <= truth <= target + 2
    within += ok
    rows.append((s["segment"] + 1, s["crf"], s["tier"], s["probes"], s["predicted_vmaf"], s["measured_vmaf"], truth, ok,
                 s.get("prediction", "probe")))

size = lambda p: os.path.getsize(p) / 1e6
print(f"\nchunked VMAF targeting: {os.path.basename(src)}, target {target}, preset {preset}, "
      f"{plan['chunked']['workers']} worker(s) x {plan['chunked']['threads_per_worker']} thread(s)")
print(f"{'seg':>4} {'crf':>6} {'tier':>4} {'probes':>6} {'predicted':>9} {'by':>5} {'measured':>8} {'full-frame':>10}  within")
for r in rows:
    print(f"{r[0]:>4} {r[1]:>6.2f} {r[2]:>4} {r[3]:>6} {r[4]:>9.2f} {r[8]:>5} {r[5] if r[5] is None else round(r[5], 2):>8} {r[6]:>10.2f}  {'yes' if r[7] else 'NO'}")
print(f"probes {sum(r[3] for r in rows)} for {len(rows)} segments; predicted VMAF from the slope (no confirming probe): "
      f"{sum(r[8] == 'model' for r in rows)}")
whole = hmean(scores)
print(f"\nmean |full-frame - target|     {statistics.mean(errors):.2f}")
print(f"segments within [t-1, t+2]    {within}/{len(rows)} ({100 * within / len(rows):.0f}%, goal >= 90%)")
print(f"whole file full-frame VMAF    {whole:.2f} (harmonic mean), {statistics.mean(scores):.2f} (mean)")
print(f"chunked: {t_chk:.1f} s ({c_cpu:.0f} CPU-s), {size(encoded):.2f} MB   standard (CRF {plan['video']['crf']}): "
      f"{s1_wall:.1f} s before, {s2_wall:.1f} s after ({s1_cpu:.0f} / {s2_cpu:.0f} CPU-s), {size(standard):.2f} MB, "
      f"VMAF {hmean(per_frame_vmaf(standard)):.2f}")
print(f"cost chunked / standard       {t_chk / t_std:.2f} wall (goal <= 1.5), "
      f"{c_cpu / ((s1_cpu + s2_cpu) / 2):.2f} CPU")

# ab-av1 runs `ffmpeg` from PATH: the same one drapto used (with libvmaf).
os.environ["PATH"] = os.path.dirname(os.path.abspath(ffmpeg)) + os.pathsep + os.environ["PATH"]
ab = shutil.which("ab-av1")
if ab:
    abo = os.path.join(out, "ab-av1.mkv")
    t0 = time.time()
    r = subprocess.run([ab, "auto-encode", "-i", src, "-o", abo, "--preset", preset, "--min-vmaf", str(target),
                        "--pix-format", "yuv420p10le", "--svt", "tune=0", "--acodec", "libopus"],
                       capture_output=True, text=True)
    t_ab = time.time() - t0
    import re
    found = re.findall(r"crf (\d+(?:\.\d+)?) VMAF (\d+(?:\.\d+)?)", r.stderr + r.stdout)
    crf = f"chose CRF {found[-1][0]} (its predicted VMAF {found[-1][1]})" if found else "CRF not found in its output"
    if r.returncode == 0:
        print(f"ab-av1 auto-encode: {t_ab:.1f} s, {size(abo):.2f} MB, full-frame VMAF {hmean(per_frame_vmaf(abo)):.2f}; {crf}")
    else:
        print(f"ab-av1 failed ({r.returncode}): {(r.stderr or r.stdout)[-300:]}")
else:
    print("ab-av1 not on PATH (cargo install ab-av1) — peer comparison skipped")
