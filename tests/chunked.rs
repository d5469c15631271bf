//! The chunked path: frame-exact segmentation on open-GOP sources, an
//! end-to-end VMAF-targeted encode, and resume after a kill.

mod common;

use common::*;
use drapto::cancel::Cancel;
use drapto::encode::chunked::segments::{self, Segment, Timeline};
use drapto::encode::chunked::{remote, search};
use drapto::tools::ffmpeg::FfmpegArgs;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

/// MD5 of every decoded frame of `args` (framemd5), in order.
fn frame_md5s(mut args: FfmpegArgs) -> Vec<String> {
    args.extend(["-f", "framemd5", "-"]);
    let out = args.command(&ffmpeg()).stderr(Stdio::null()).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit(',').next().unwrap().trim().to_string())
        .collect()
}

fn assert_frame_exact(src: &Path, chunk: f64) {
    let tl: Timeline = segments::timeline(Path::new("ffprobe"), src, &Cancel::new()).unwrap();
    let mut whole = FfmpegArgs::default();
    whole.extend(["-hide_banner", "-loglevel", "error"]).input(src).extend(["-map", "0:v:0"]);
    let expected = frame_md5s(whole);
    assert_eq!(expected.len(), tl.frames(), "timeline must count every decoded frame");

    // Segments at the planned points, and segments starting exactly on every
    // keyframe (where an open GOP's leading B-frames are at stake).
    let mut plans = vec![segments::plan_segments(&tl, &[], chunk)];
    let kf = keyframe_indices(src, &tl);
    assert!(kf.len() > 2, "fixture needs several GOPs");
    let mut bounds: Vec<usize> = kf.clone();
    bounds.push(tl.frames());
    plans.push(bounds.windows(2).enumerate().map(|(index, w)| Segment { index, start: w[0], end: w[1] }).collect());
    for plan in plans {
        let mut got = Vec::new();
        for s in &plan {
            let mut a = FfmpegArgs::default();
            a.extend(["-hide_banner", "-loglevel", "error"]);
            segments::seek_input(&mut a, src, &tl, s.start);
            segments::frames_output(&mut a, s.frames());
            let part = frame_md5s(a);
            assert_eq!(part.len(), s.frames(), "segment {s:?} frame count");
            got.extend(part);
        }
        assert_eq!(got.len(), expected.len());
        let first_diff = got.iter().zip(&expected).position(|(a, b)| a != b);
        assert_eq!(first_diff, None, "{}: frame {first_diff:?} differs (plan {plan:?})", src.display());
    }

    // The lossless extracts sent to other hosts hold exactly the same frames.
    let dir = tempfile::tempdir().unwrap();
    let mut got = Vec::new();
    for s in &segments::plan_segments(&tl, &[], chunk) {
        let out = dir.path().join(format!("{}.mkv", s.index));
        remote::make_extract(&ffmpeg(), src, &tl, *s, None, &out, &Cancel::new()).unwrap();
        let mut a = FfmpegArgs::default();
        a.extend(["-hide_banner", "-loglevel", "error"]).input(&out).extend(["-map", "0:v:0"]);
        let part = frame_md5s(a);
        assert_eq!(part.len(), s.frames(), "extract of {s:?}");
        let etl = segments::timeline(Path::new("ffprobe"), &out, &Cancel::new()).unwrap();
        assert_eq!(etl.frames(), s.frames(), "extract timeline of {s:?}");
        got.extend(part);
    }
    assert!(got == expected, "{}: extracts differ from the source's frames", src.display());
}

fn keyframe_indices(src: &Path, tl: &Timeline) -> Vec<usize> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(src)
        .output()
        .unwrap();
    let mut k: Vec<usize> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains('K'))
        .filter_map(|l| l.split(',').next()?.parse::<f64>().ok())
        .map(|t| tl.index_near(t))
        .collect();
    k.sort();
    k.dedup();
    k
}

#[test]
fn segments_are_frame_exact_on_open_gop_h264() {
    let src = fixture(
        "open_gop_h264.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=24000/1001:duration=6",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-x264-params",
            "open-gop=1:keyint=30:min-keyint=30:bframes=3:b-pyramid=0:scenecut=0",
        ],
    );
    assert_frame_exact(&src, 2.0);
}

#[test]
fn segments_are_frame_exact_on_open_gop_mpeg2_dvd() {
    let src = fixture(
        "open_gop_mpeg2.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=720x480:rate=30000/1001:duration=5",
            "-c:v",
            "mpeg2video",
            "-g",
            "15",
            "-bf",
            "2",
            "-b:v",
            "4M",
        ],
    );
    assert_frame_exact(&src, 1.5);
}

fn chunked_drapto(t: &Path) -> Command {
    let mut c = drapto(t);
    c.env("DRAPTO_ENABLE_CHUNKED_ENCODING", "true")
        .env("DRAPTO_CHUNK_SIZE", "2")
        .env("DRAPTO_PRESET", "12")
        .env("DRAPTO_VMAF_SUBSAMPLE", "1");
    c
}

fn chunk_clip() -> std::path::PathBuf {
    fixture(
        "chunky.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=12:duration=3",
            "-f",
            "lavfi",
            "-i",
            "smptehdbars=size=320x240:rate=12:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=500:sample_rate=48000:duration=6",
            "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1,format=yuv420p[v]",
            "-map",
            "[v]",
            "-map",
            "2:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "12",
            "-c:a",
            "flac",
        ],
    )
}

#[test]
fn chunked_encode_hits_the_target_and_keeps_every_frame() {
    assert!(has_libvmaf(), "the test ffmpeg must have libvmaf (scripts/setup.sh installs one)");
    let src = chunk_clip();
    let t = tempfile::tempdir().unwrap();
    let out_dir = t.path().join("out");
    let o = run(chunked_drapto(t.path()).args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success());
    let ev = events(&o);
    let plan = ev.iter().find(|e| e["event"] == "analysis_complete").unwrap();
    assert_eq!(plan["plan"]["path"], "chunked");
    let segs: Vec<_> = ev.iter().filter(|e| e["event"] == "segment_complete").collect();
    assert!(segs.len() >= 3, "{} segments", segs.len());
    assert!(ev.iter().any(|e| e["event"] == "segment_probe"));
    for s in &segs {
        let predicted = s["predicted_vmaf"].as_f64().unwrap();
        let measured = s["measured_vmaf"].as_f64().unwrap();
        // The search settles within [target, target + tolerance] on its
        // samples; the whole segment, scored on every frame, stays close.
        assert!((93.0..=94.0).contains(&predicted) || s["crf"].as_f64() == Some(55.0), "{s}");
        assert!(measured >= 91.5, "segment measured {measured}: {s}");
    }
    assert_chunked_sequence(&ev);
    let out = out_dir.join("chunky.mkv");
    assert_eq!(frame_count(&out), frame_count(&src), "every frame exactly once");
    let p = ffprobe(&out);
    let v = streams(&p, "video")[0];
    let a = streams(&p, "audio")[0];
    let vd: f64 = v["tags"]["DURATION"].as_str().map(parse_hms).unwrap();
    let ad: f64 = a["tags"]["DURATION"].as_str().map(parse_hms).unwrap();
    assert!((vd - 6.0).abs() < 0.1 && (ad - 6.0).abs() < 0.1, "video {vd} audio {ad}");
    // Timestamps are continuous: no gap or overlap between segments.
    let pts = packet_times(&out);
    let gaps: Vec<f64> = pts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| (g - 1.0 / 12.0).abs() < 0.002), "irregular frame spacing: {gaps:?}");
    // The state files tell the same story.
    let work = std::fs::read_dir(t.path().join("work/jobs")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(work, 0, "work folder removed after success");
}

#[test]
fn segments_start_in_order_from_the_prior_then_from_their_neighbour() {
    let src = chunk_clip();
    let t = tempfile::tempdir().unwrap();
    let mut c = chunked_drapto(t.path());
    c.env("DRAPTO_PARALLEL_JOBS", "1");
    let o = run(c.args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(t.path().join("out")));
    assert!(o.status.success());
    let ev = events(&o);
    let plan = &ev.iter().find(|e| e["event"] == "analysis_complete").unwrap()["plan"];
    let prior = search::prior_crf(plan["video"]["crf"].as_f64().unwrap(), plan["chunked"]["target"].as_f64().unwrap());
    // Each segment's first probe, in the order the probes started.
    let mut firsts: Vec<(u64, f64)> = Vec::new();
    for e in ev.iter().filter(|e| e["event"] == "segment_step" && e["step"]["kind"] == "probing") {
        let seg = e["segment"].as_u64().unwrap();
        if !firsts.iter().any(|(s, _)| *s == seg) {
            firsts.push((seg, e["step"]["crf"].as_f64().unwrap()));
        }
    }
    let crf_of = |seg: u64| {
        ev.iter().find(|e| e["event"] == "segment_complete" && e["segment"] == seg).unwrap()["crf"].as_f64().unwrap()
    };
    assert!(firsts.len() >= 3, "{firsts:?}");
    assert_eq!(firsts.iter().map(|(s, _)| *s).collect::<Vec<_>>(), (0..firsts.len() as u64).collect::<Vec<_>>());
    // Nothing known: the prior (on the quarter-CRF grid). Then, one worker
    // running them in order, each starts where the segment before settled.
    assert!((firsts[0].1 - prior).abs() <= 0.125 + 1e-9, "first probe {} for prior {prior}", firsts[0].1);
    for (seg, crf) in &firsts[1..] {
        assert_eq!(*crf, crf_of(seg - 1), "segment {seg} starts from segment {}'s CRF", seg - 1);
    }
}

/// The `--json` events of a chunked file come in order: analysis, the video
/// stage (each segment's steps, probes and completion in between), audio,
/// mux, validation, file complete; and each segment's own events in the
/// order of its work.
fn assert_chunked_sequence(ev: &[serde_json::Value]) {
    let kinds: Vec<&str> = ev.iter().map(|e| e["event"].as_str().unwrap()).filter(|k| *k != "progress").collect();
    let stage = |e: &serde_json::Value| e["stage"]["kind"].as_str().unwrap_or("").to_string();
    let pos = |pred: &dyn Fn(&serde_json::Value) -> bool| ev.iter().position(pred).expect("event present");
    let video_start = pos(&|e| e["event"] == "stage_started" && stage(e) == "video");
    let video_end = pos(&|e| e["event"] == "stage_complete" && stage(e) == "video");
    assert!(video_start > pos(&|e| e["event"] == "analysis_complete"));
    assert!(ev[video_start]["detail"].as_str().unwrap().starts_with("chunked:"));
    for (i, e) in ev.iter().enumerate() {
        if e["event"].as_str().unwrap().starts_with("segment_") {
            assert!(i > video_start && i < video_end, "segment events inside the video stage: {e}");
        }
    }
    let audio = pos(&|e| e["event"] == "stage_started" && stage(e) == "audio");
    let mux = pos(&|e| e["event"] == "stage_started" && stage(e) == "mux");
    let valid = pos(&|e| e["event"] == "validation_complete");
    let done = pos(&|e| e["event"] == "file_complete");
    assert!(video_end < audio && audio < mux && mux < valid && valid < done, "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"batch_complete"));
    // Per segment: probing → (encoding → measuring) → complete.
    let total = ev.iter().filter(|e| e["event"] == "segment_complete").count();
    for seg in 0..total as u64 {
        let mine: Vec<String> = ev
            .iter()
            .filter(|e| e["segment"].as_u64() == Some(seg))
            .map(|e| match e["event"].as_str().unwrap() {
                "segment_step" => e["step"]["kind"].as_str().unwrap().to_string(),
                k => k.to_string(),
            })
            .collect();
        assert_eq!(mine.last().map(String::as_str), Some("segment_complete"), "segment {seg}: {mine:?}");
        let first_probe = mine.iter().position(|k| k == "probing").expect("a probe");
        assert!(mine[..first_probe].iter().all(|k| k == "sampling"), "segment {seg}: {mine:?}");
        assert_eq!(
            mine.iter().filter(|k| *k == "probing").count(),
            mine.iter().filter(|k| *k == "segment_probe").count(),
            "every probe started is reported: {mine:?}"
        );
        if let Some(enc) = mine.iter().position(|k| k == "encoding") {
            assert_eq!(mine[enc + 1], "measuring", "segment {seg}: {mine:?}");
            assert!(mine[..enc].iter().all(|k| k != "measuring"));
        }
    }
}

fn parse_hms(s: &str) -> f64 {
    let mut parts = s.split(':').map(|p| p.parse::<f64>().unwrap());
    let (h, m, sec) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    h * 3600.0 + m * 60.0 + sec
}

fn packet_times(path: &Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    let mut v: Vec<f64> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim_end_matches(',').parse().ok()).collect();
    v.sort_by(f64::total_cmp);
    v
}

#[test]
fn killed_chunked_job_resumes_without_redoing_finished_segments() {
    let t = tempfile::tempdir().unwrap();
    // A private copy, so that no other test's encoders match its name.
    let src = t.path().join("resume me.mkv");
    std::fs::copy(chunk_clip(), &src).unwrap();
    let out_dir = t.path().join("out");
    let mut child = chunked_drapto(t.path())
        .args(["encode", "--json", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(&out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        if line.unwrap().contains("\"segment_complete\"") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert!(!out_dir.join("resume me.mkv").exists(), "no output under the final name");

    let jobs: Vec<_> = std::fs::read_dir(t.path().join("work/jobs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(jobs.len(), 1);
    let encoded = jobs[0].join("encoded");
    let finished: Vec<_> = std::fs::read_dir(&encoded)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mkv") && !p.to_string_lossy().contains("partial"))
        .collect();
    assert!(!finished.is_empty());
    // No encoder outlives drapto.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ps = Command::new("pgrep").args(["-f", &src.to_string_lossy()]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&ps.stdout).trim().is_empty(),
        "orphaned children: {}",
        String::from_utf8_lossy(&ps.stdout)
    );

    let o = run(chunked_drapto(t.path()).args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success());
    let ev = events(&o);
    assert!(
        ev.iter().any(|e| e["event"] == "warning" && e["message"].as_str().unwrap().contains("resuming")),
        "the run says what it reused"
    );
    let redone = ev.iter().filter(|e| e["event"] == "segment_complete").count();
    let total =
        ev.iter().find(|e| e["event"] == "segment_complete").map(|e| e["total"].as_u64().unwrap()).unwrap() as usize;
    assert_eq!(redone, total - finished.len(), "finished segments are not encoded again");
    assert_eq!(frame_count(&out_dir.join("resume me.mkv")), frame_count(&src));
}
