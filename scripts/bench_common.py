"""What the quality benchmarks share (scripts/bench_quality.py,
scripts/bench_frontier.py, scripts/bench_sampling.py): drapto runs timed in wall and CPU seconds, video
bytes, every-frame VMAF against the source as drapto scores, and the figures
of a score series (mean, worst 2-second window, 1st-percentile frame), the
pooling and the subsampling drapto's measurement uses."""
import json, math, os, resource, shutil, subprocess, time


def children_cpu():
    """CPU seconds (user + system) of every finished child process so far,
    their own children included (each one waited for by its parent)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def harmonic(xs):
    """libvmaf's harmonic_mean pool (drapto's default pooling)."""
    return len(xs) / sum(1 / (x + 1) for x in xs) - 1


def scored_frames(frames, scheme, s):
    """Which frames of a segment of `frames` frames a subsampled measurement
    scores: every s-th from the first ("fixed", libvmaf's n_subsample), or
    floor(k * (s + 0.618...)) ("golden", a placement no periodic pattern
    aliases with)."""
    if scheme == "fixed":
        return list(range(0, frames, s))
    phi = (5 ** 0.5 - 1) / 2
    return [c for c in (math.floor(k * (s + phi)) for k in range(frames)) if c < frames]


def interp(xs, ys, x):
    """Piecewise-linear y at x over sorted xs (extrapolated from the end pairs)."""
    pts = sorted(zip(xs, ys))
    pairs = list(zip(pts, pts[1:]))
    (x0, y0), (x1, y1) = next((p for p in pairs if x <= p[1][0]), pairs[-1])
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 != x0 else y0


class Bench:
    """One source, encoded by drapto into folders under `out`."""

    def __init__(self, ffmpeg, ffprobe, drapto, src, out):
        self.ffmpeg, self.ffprobe, self.drapto, self.src, self.out = ffmpeg, ffprobe, drapto, src, out
        self.name = os.path.basename(src)
        os.makedirs(out, exist_ok=True)
        r = subprocess.run([ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height,avg_frame_rate,sample_aspect_ratio", "-of", "json", src], capture_output=True, text=True,
                           check=True)
        s = json.loads(r.stdout)["streams"][0]
        n, d = s["avg_frame_rate"].split("/")
        self.width, self.height, self.fps = s["width"], s["height"], float(n) / float(d)
        sn, _, sd = s.get("sample_aspect_ratio", "1:1").partition(":")
        self.sar = int(sn) / int(sd) if sn.isdigit() and sd.isdigit() and int(sn) and int(sd) else 1.0

    def vmaf_scale(self):
        """The size drapto scores at (VmafSpec::for_picture): a picture
        under 1080p, as shown (its sample aspect applied), fitted to
        1920x1080; None for the others."""
        shown = self.width * self.sar
        if shown >= 1728 or self.height >= 972:
            return None
        if shown * 1080 >= self.height * 1920:
            return 1920, max(2, round(1920 * self.height / shown) // 2 * 2)
        return max(2, round(1080 * shown / self.height) // 2 * 2), 1080

    def video_bytes(self, path):
        r = subprocess.run([self.ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=size", "-of",
                            "csv=p=0", path], capture_output=True, text=True, check=True)
        return sum(int(x) for x in r.stdout.split() if x.strip().isdigit())

    def run_drapto(self, tag, preset, args, env_extra=None):
        """Encodes the source into OUT/tag with drapto; returns (output, wall
        seconds, CPU seconds, events)."""
        d = os.path.join(self.out, tag)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        env = dict(os.environ, **(env_extra or {}))
        t0, c0 = time.time(), children_cpu()
        with open(os.path.join(d, "events.jsonl"), "w") as ev:
            subprocess.run([self.drapto, "encode", "--json", "-i", self.src, "-o", d, "--preset", str(preset), *args],
                           stdout=ev, env=env, check=True)
        wall, cpu = time.time() - t0, children_cpu() - c0
        events = [json.loads(l) for l in open(os.path.join(d, "events.jsonl")) if l.strip()]
        return os.path.join(d, self.name), wall, cpu, events

    def per_frame_vmaf(self, distorted, filters):
        """Per-frame VMAF of distorted against the source on every frame."""
        log = distorted + ".vmaf.json"
        size = self.vmaf_scale()
        scale = f",scale={size[0]}:{size[1]}:flags=bicubic" if size else ""
        ref = (filters + "," if filters else "") + f"setpts=N/(25*TB),format=yuv420p10le{scale}"
        graph = (f"[0:v]setpts=N/(25*TB),format=yuv420p10le{scale}[d];[1:v]{ref}[r];"
                 f"[d][r]libvmaf=model=version=vmaf_v0.6.1:n_subsample=1:n_threads=2:log_fmt=json:log_path={log}")
        subprocess.run([self.ffmpeg, "-hide_banner", "-loglevel", "fatal", "-i", distorted, "-i", self.src, "-lavfi",
                        graph, "-f", "null", "-"], check=True)
        frames = json.load(open(log))["frames"]
        os.remove(log)
        return [f["metrics"]["vmaf"] for f in frames]

    def figures(self, scores):
        """(mean, worst 2-second window's mean, 1st-percentile frame)."""
        n = len(scores)
        w = max(1, round(2 * self.fps))
        sums = [0.0]
        for s in scores:
            sums.append(sums[-1] + s)
        worst = min((sums[i + w] - sums[i]) / w for i in range(0, max(1, n - w + 1))) if n >= w else sum(scores) / n
        p1 = sorted(scores)[max(0, math.ceil(0.01 * n) - 1)]
        return sum(scores) / n, worst, p1

    def encode_scored(self, tag, preset, args, env_extra=None):
        """One drapto run scored on every frame: a dict of its figures (cached
        in OUT/tag.json: a tag is run once), with its segments when chunked."""
        cache = os.path.join(self.out, f"{tag}.json")
        if os.path.exists(cache):
            return json.load(open(cache))
        path, wall, cpu, events = self.run_drapto(tag, preset, args, env_extra)
        plan = next(e for e in events if e["event"] == "analysis_complete")["plan"]
        filters = ",".join(plan["video"]["filters"])
        scores = self.per_frame_vmaf(path, filters)
        mean, worst, p1 = self.figures(scores)
        segs = sorted((e for e in events if e["event"] == "segment_complete"), key=lambda e: e["segment"])
        r = {"tag": tag, "scores": scores, "bytes": self.video_bytes(path), "mean": mean, "worst2s": worst, "p1": p1,
             "wall": wall, "cpu": cpu, "filters": filters,
             "segments": [{"crf": s["crf"], "frames": s["frames"], "measured": s["measured_vmaf"],
                           "start": s["start_frame"],
                           "full_frame": sum(scores[s["start_frame"]:s["start_frame"] + s["frames"]]) / s["frames"]}
                          for s in segs],
             "probes": sum(s["probes"] for s in segs),
             "encodes": sum(1 for e in events if e["event"] == "segment_step" and e["step"]["kind"] == "encoding")}
        json.dump(r, open(cache, "w"))
        return r
