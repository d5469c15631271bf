#!/usr/bin/env python3
"""A TV episode's length through the chunked path, interrupted once and
resumed, as a user leaves drapto in charge (scripts/bench.sh episode).

Usage: bench_episode.py FFMPEG FFPROBE DRAPTO SRC FILM_FRAMES OUT PRESET STOP_AT

SRC is a hard-telecined DVD rip (bench.sh dvd_episode) of FILM_FRAMES film
frames with a white film frame at 720 + 1440k. drapto encodes it chunked at
PRESET; once a STOP_AT share of its segments is done, the run gets SIGINT on
its process group (a Ctrl-C at the terminal), and a second run resumes it.

Printed: each run's wall and CPU seconds, drapto's own peak memory, how long
the clean stop took and what the resume reused; the segments' CRFs and
drapto's measured scores (this bench scores no frames itself: at 1920x1080
every frame of a 22-minute episode costs more than the encode); and the
checks a long file must pass: every film frame back (inverse telecine at every
segment boundary), each marker on its film frame at its film time (no drift
over the whole length), the audio as long as the source's, every subtitle
line and chapter kept. A failed check prints FAIL and the exit status is 1.
"""
import json, os, shutil, signal, subprocess, sys, threading, time
from bench_common import children_cpu

ffmpeg, ffprobe, drapto, src, film, out, preset, stop_at = sys.argv[1:9]
film, stop_at = int(film), float(stop_at)
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
FILM_TB = 1001 / 24000


def peak_rss(pid, box, done):
    """Samples drapto's resident memory (its own, not its encoders') every
    second into box[0], in MiB, until done is set (stays None without a
    /proc to read, as on macOS)."""
    while not done.is_set():
        try:
            with open(f"/proc/{pid}/status") as f:
                kb = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
            box[0] = max(box[0] or 0.0, kb / 1024)
        except (OSError, StopIteration):
            pass
        done.wait(1.0)


def run(tag, stop_share):
    """One drapto run; SIGINT to its process group once stop_share of the
    segments are done (0: never). Returns its events and figures."""
    cmd = [drapto, "encode", "--json", "-i", src, "-o", os.path.join(out, "out"), "--preset", preset, "--chunked"]
    cpu0, t0 = children_cpu(), time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(os.path.join(out, f"{tag}.stderr"), "w"),
                         text=True, start_new_session=True)
    box, done = [None], threading.Event()
    threading.Thread(target=peak_rss, args=(p.pid, box, done), daemon=True).start()
    events, stopped = [], None
    with open(os.path.join(out, f"{tag}.jsonl"), "w") as log:
        for line in p.stdout:
            log.write(line)
            e = json.loads(line)
            events.append(e)
            if (stop_share and stopped is None and e["event"] == "segment_complete"
                    and e["done"] >= stop_share * e["total"]):
                os.killpg(p.pid, signal.SIGINT)
                stopped = time.time()
    rc = p.wait()
    done.set()
    end = time.time()
    return {"events": events, "rc": rc, "wall": end - t0, "cpu": children_cpu() - cpu0, "rss": box[0],
            "stop_latency": end - stopped if stopped else None}


def frames_of(path):
    """Per decoded frame of the output: (pts seconds, minimum luma, 8-bit)."""
    r = subprocess.run([ffmpeg, "-hide_banner", "-v", "error", "-i", path, "-map", "0:v:0", "-vf",
                        "format=yuv420p,signalstats,metadata=print:key=lavfi.signalstats.YMIN:file=-",
                        "-f", "null", "-"], capture_output=True, text=True, check=True)
    rows, pts = [], None
    for line in r.stdout.splitlines():
        if line.startswith("frame:"):
            pts = float(line.split("pts_time:")[1])
        elif line.startswith("lavfi.signalstats.YMIN="):
            rows.append((pts, float(line.split("=")[1])))
    return rows


def packets(path, sel):
    """(pts, duration) in seconds of every packet of stream sel."""
    r = subprocess.run([ffprobe, "-v", "error", "-select_streams", sel, "-show_entries",
                        "packet=pts_time,duration_time", "-of", "csv=p=0", path], capture_output=True, text=True,
                       check=True)
    return [tuple(float(x) for x in l.split(",")[:2]) for l in r.stdout.splitlines() if l and "N/A" not in l]


def chapters(path):
    r = subprocess.run([ffprobe, "-v", "error", "-show_chapters", "-of", "json", path], capture_output=True,
                       text=True, check=True)
    return [(round(float(c["start_time"]), 3), c.get("tags", {}).get("title")) for c in json.loads(r.stdout)["chapters"]]


first = run("first", stop_at)
second = run("second", 0)
ok = True


def check(name, good, detail):
    global ok
    ok &= good
    print(f"  {'ok  ' if good else 'FAIL'} {name}: {detail}")


segs = {e["segment"]: e for e in first["events"] + second["events"] if e["event"] == "segment_complete"}
done_first = max((e["done"] for e in first["events"] if e["event"] == "segment_complete"), default=0)
again = [e for e in second["events"] if e["event"] == "segment_complete"]
total = next(iter(segs.values()))["total"] if segs else 0
plan = next(e for e in first["events"] if e["event"] == "analysis_complete")["plan"]
outs = [os.path.join(out, "out", f) for f in os.listdir(os.path.join(out, "out")) if f.endswith(".mkv")]
encoded = outs[0] if len(outs) == 1 else None

print(f"\nepisode: {os.path.basename(src)}, {film} film frames ({film * FILM_TB / 60:.1f} min), preset {preset}, "
      f"{plan['chunked']['workers']} worker(s) x {plan['chunked']['threads_per_worker']} thread(s), "
      f"filters {','.join(plan['video']['filters'])}")
for tag, r in (("first run (stopped)", first), ("second run (resumed)", second)):
    lat = f", stopped {r['stop_latency']:.1f} s after SIGINT" if r["stop_latency"] is not None else ""
    rss = "unknown" if r["rss"] is None else f"{r['rss']:.0f} MiB"
    print(f"  {tag:<22} rc {r['rc']}, wall {r['wall']:.0f} s, CPU {r['cpu']:.0f} s, drapto peak RSS {rss}{lat}")
resumed_at = again[0]["done"] - 1 if again else total
print(f"  segments {total}: {done_first} done when stopped, the resume started at {resumed_at} done "
      f"and encoded {len(again)}")
measured = [e["measured_vmaf"] for e in segs.values() if e.get("measured_vmaf") is not None]
target = plan["chunked"]["target"]
band = sum(1 for m in measured if target - 1 <= m <= target + 2)
crfs = sorted(e["crf"] for e in segs.values())
if measured:
    print(f"  drapto's measured scores: mean {sum(measured) / len(measured):.2f}, min {min(measured):.2f}, "
          f"{band}/{len(measured)} within [{target - 1}, {target + 2}]; CRF {crfs[0]}-{crfs[-1]}")
if encoded:
    print(f"  output {os.path.getsize(encoded) / 1e6:.1f} MB (source {os.path.getsize(src) / 1e6:.1f} MB)")

print("checks:")
check("both runs", first["rc"] != 0 and second["rc"] == 0, f"first rc {first['rc']} (stopped), second rc {second['rc']}")
check("one output", encoded is not None, f"{len(outs)} .mkv file(s) in the output folder")
if encoded:
    rows = frames_of(encoded)
    check("every film frame", len(rows) == film, f"{len(rows)} frames for {film}")
    marks = [i for i, (_, y) in enumerate(rows) if y > 200]
    want = list(range(720, film, 1440))
    check("markers on their frames", marks == want, f"{len(marks)} white frames for {len(want)}"
          + ("" if marks == want else f", first differences {[(a, b) for a, b in zip(marks, want) if a != b][:3]}"))
    drift = max(abs(pts - rows[0][0] - i * FILM_TB) for i, (pts, _) in enumerate(rows))
    check("film times", drift <= 0.00051, f"worst frame {drift * 1000:.2f} ms from its film time "
          f"(first at {rows[0][0] * 1000:.0f} ms; milliseconds round by 0.5 at most)")
    a_src, a_out = packets(src, "a:0"), packets(encoded, "a:0")
    end = lambda ps: max(p + d for p, d in ps)
    check("audio", abs(end(a_src) - end(a_out)) <= 0.05 and abs(a_out[0][0] - a_src[0][0]) <= 0.005,
          f"ends {end(a_out):.3f} s (source {end(a_src):.3f}), starts {a_out[0][0]:.3f} s (source {a_src[0][0]:.3f})")
    s_src, s_out = packets(src, "s:0"), packets(encoded, "s:0")
    check("subtitles", s_src == s_out, f"{len(s_out)} lines for {len(s_src)}, same times: {s_src == s_out}")
    c_src, c_out = chapters(src), chapters(encoded)
    check("chapters", c_src == c_out, f"{len(c_out)} for {len(c_src)}, same times and names: {c_src == c_out}")
sys.exit(0 if ok else 1)
