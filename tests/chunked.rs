//! The chunked path: frame-exact segmentation on open-GOP sources, an
//! end-to-end VMAF-targeted encode, and resume after a kill.

mod common;

use common::*;
use drapto::cancel::Cancel;
use drapto::encode::chunked::layout::{self, Segment, Timeline};
use drapto::encode::chunked::scenes;
use drapto::encode::chunked::vmaf::{self, VmafSpec};
use drapto::encode::chunked::{
    Allocation, ChunkedParams, Fixed, Report, SegmentJob, remote, run_segment, search, survey_segment,
};
use drapto::events::{PredictionSource, SegmentStep};
use drapto::plan::EncoderSettings;
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
    let tl: Timeline = layout::timeline(Path::new("ffprobe"), src, &Cancel::new()).unwrap();
    let mut whole = FfmpegArgs::default();
    whole.extend(["-hide_banner", "-loglevel", "error"]).input(src).extend(["-map", "0:v:0"]);
    let expected = frame_md5s(whole);
    assert_eq!(expected.len(), tl.frames(), "timeline must count every decoded frame");

    // Segments at the planned points, and segments starting exactly on every
    // keyframe (where an open GOP's leading B-frames are at stake).
    let mut plans = vec![layout::plan_segments(&tl, &[], chunk)];
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
            layout::seek_input(&mut a, src, &tl, s.start);
            layout::frames_output(&mut a, s.frames());
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
    for s in &layout::plan_segments(&tl, &[], chunk) {
        let out = dir.path().join(format!("{}.mkv", s.index));
        remote::make_extract(&ffmpeg(), src, &tl, *s, None, None, &out, &Cancel::new()).unwrap();
        let mut a = FfmpegArgs::default();
        a.extend(["-hide_banner", "-loglevel", "error"]).input(&out).extend(["-map", "0:v:0"]);
        let part = frame_md5s(a);
        assert_eq!(part.len(), s.frames(), "extract of {s:?}");
        let etl = layout::timeline(Path::new("ffprobe"), &out, &Cancel::new()).unwrap();
        assert_eq!(etl.frames(), s.frames(), "extract timeline of {s:?}");
        got.extend(part);
    }
    assert!(got == expected, "{}: extracts differ from the source's frames", src.display());
}

/// The inverse telecine drapto plans for hard-telecined film.
const IVTC: &str =
    "fieldmatch=order=tff:combmatch=full,bwdif=mode=send_frame:parity=tff:deint=interlaced,decimate=cycle=5";

/// Output frames of the inverse telecine, cut into segments (anywhere in a
/// cycle) and as lossless extracts, are exactly those of one decode of the
/// whole file through it.
fn assert_ivtc_frame_exact(src: &Path, chunk: f64) {
    let src_tl: Timeline = layout::timeline(Path::new("ffprobe"), src, &Cancel::new()).unwrap();
    let tl = layout::output_timeline(&src_tl, Some(5));
    let mut whole = FfmpegArgs::default();
    whole.extend(["-hide_banner", "-loglevel", "error"]).input(src).extend(["-map", "0:v:0", "-vf", IVTC]);
    let expected = frame_md5s(whole);
    assert_eq!(expected.len(), tl.frames(), "4 of every 5 source frames come out");
    let planned = layout::plan_segments(&tl, &[], chunk);
    assert!(planned.len() > 2);
    // Boundaries off the cycle, too.
    let odd: Vec<Segment> = {
        let mut b: Vec<usize> = (0..tl.frames()).step_by(37).collect();
        b.push(tl.frames());
        b.windows(2).enumerate().map(|(index, w)| Segment { index, start: w[0], end: w[1] }).collect()
    };
    for plan in [&planned, &odd] {
        let mut got = Vec::new();
        for s in plan {
            let mut a = FfmpegArgs::default();
            a.extend(["-hide_banner", "-loglevel", "error"]);
            let chain = layout::open_frames(&mut a, src, &src_tl, s.range(), Some(IVTC), Some(5));
            layout::frames_output(&mut a, s.frames());
            a.arg("-vf").arg(chain);
            let part = frame_md5s(a);
            assert_eq!(part.len(), s.frames(), "segment {s:?} frame count");
            got.extend(part);
        }
        let first_diff = got.iter().zip(&expected).position(|(a, b)| a != b);
        assert_eq!((got.len(), first_diff), (expected.len(), None), "plan {plan:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut got = Vec::new();
    for s in &planned {
        let out = dir.path().join(format!("{}.mkv", s.index));
        remote::make_extract(&ffmpeg(), src, &src_tl, *s, Some(IVTC), Some(5), &out, &Cancel::new()).unwrap();
        let mut a = FfmpegArgs::default();
        a.extend(["-hide_banner", "-loglevel", "error"]).input(&out).extend(["-map", "0:v:0"]);
        got.extend(frame_md5s(a));
    }
    assert!(got == expected, "extracts differ from the inverse telecine of the whole file");
}

#[test]
fn inverse_telecine_segments_are_frame_exact_on_real_film() {
    // Megamind (23.976 fps film) hard-telecined to 29.97 fps interlaced
    // MPEG-2, DVD GOPs.
    let film = footage("Megamind.avi");
    let src = fixture(
        "telecine_mpeg2.mkv",
        &[
            "-i",
            film.to_str().unwrap(),
            "-t",
            "6",
            "-map",
            "0:v:0",
            "-vf",
            "scale=720:480,setsar=32/27,telecine=pattern=23",
            "-c:v",
            "mpeg2video",
            "-flags",
            "+ilme+ildct",
            "-g",
            "15",
            "-bf",
            "2",
            "-b:v",
            "6M",
        ],
    );
    assert_ivtc_frame_exact(&src, 1.5);
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

/// A 23.976 fps film with a stretch at 59.94 fps (3 s to 4 s), as hybrid
/// discs have: a segment may start on any frame of it, and its decode
/// starts on that very frame. The seek was half the film's typical frame
/// before it, which in the fast stretch let the frame before in as the
/// segment's first: one picture twice, one lost, a second and a half of
/// film a frame late, and nothing that checks counts or times could see it.
#[test]
fn segments_start_on_their_frame_in_a_faster_stretch() {
    let plain = fixture(
        "vfr60_plain.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=24000/1001:duration=9",
            "-frames:v",
            "204",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "3",
            "-g",
            "24",
        ],
    );
    let mut t = 0.0;
    let mut times = String::from("# timestamp format v2\n");
    for i in 0..204 {
        times.push_str(&format!("{t:.6}\n"));
        t += if (72..132).contains(&i) { 1001.0 / 60.0 } else { 1001.0 / 24.0 };
    }
    let times = text_file("vfr60_times.txt", &times);
    let src = mkvmerge_fixture(
        "vfr60.mkv",
        &[std::ffi::OsStr::new("--timestamps"), format!("0:{}", times.display()).as_ref(), plain.as_os_str()],
    );
    let tl: Timeline = layout::timeline(Path::new("ffprobe"), &src, &Cancel::new()).unwrap();
    assert_eq!(tl.frames(), 204);
    let mut whole = FfmpegArgs::default();
    // Every frame as it is (framemd5 would make the rate constant).
    let every = ["-fps_mode", "passthrough"];
    whole.extend(["-hide_banner", "-loglevel", "error"]).input(&src).extend(["-map", "0:v:0"]).extend(every);
    let expected = frame_md5s(whole);
    assert_eq!(expected.len(), 204);
    for start in (70..136).step_by(3) {
        let mut a = FfmpegArgs::default();
        a.extend(["-hide_banner", "-loglevel", "error"]);
        layout::seek_input(&mut a, &src, &tl, start);
        layout::frames_output(&mut a, 2);
        a.extend(every);
        assert_eq!(frame_md5s(a), expected[start..start + 2], "a segment starting at frame {start}");
    }
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

/// 45 s in three scenes, cut at 15 s and 30 s, at 12 fps, in H.264 with
/// `x264_args` (GOP structure).
fn three_scenes(name: &str, x264_args: &[&str]) -> std::path::PathBuf {
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=12:duration=15",
        "-f",
        "lavfi",
        "-i",
        "smptehdbars=size=320x240:rate=12:duration=15",
        "-f",
        "lavfi",
        "-i",
        "mandelbrot=size=320x240:rate=12,trim=duration=15,setpts=PTS-STARTPTS",
        "-filter_complex",
        "[0:v][1:v][2:v]concat=n=3:v=1,format=yuv420p[v]",
        "-map",
        "[v]",
        "-c:v",
        "libx264",
    ];
    args.extend(x264_args);
    fixture(name, &args)
}

#[test]
fn scene_detection_in_parts_finds_the_cuts_of_one_pass() {
    // Keyframes every 2 s and none at the cuts (ultrafast has no scenecut):
    // too sparse to stand for the frames, so every frame is decoded.
    let src = three_scenes("three_scenes.mkv", &["-preset", "ultrafast", "-g", "24"]);
    let tl = layout::timeline(Path::new("ffprobe"), &src, &Cancel::new()).unwrap();
    assert_eq!(tl.bytes.len(), tl.frames(), "coded sizes read with the timeline");
    assert_eq!(tl.keyframes.len(), 23, "a keyframe every 24 frames");
    let method = scenes::scene_method(&tl);
    assert_eq!(method, scenes::SceneMethod::Decode);
    let t = tempfile::tempdir().unwrap();
    let one = scenes::scene_cuts(&ffmpeg(), &src, &tl, 1, method, t.path(), &Cancel::new());
    assert_eq!(scenes::scan_parts(&tl, 4).len(), 2, "two stretches of at least 20 s");
    let parts = scenes::scene_cuts(&ffmpeg(), &src, &tl, 4, method, t.path(), &Cancel::new());
    assert_eq!(one, parts);
    for cut in [15.0, 30.0] {
        assert!(one.iter().any(|c| (c - cut).abs() < 0.01), "cut at {cut}: {one:?}");
    }
}

#[test]
fn scene_detection_on_disc_like_keyframes_finds_the_cuts_without_false_ones() {
    // A keyframe every second and one at each cut, as disc encoders place
    // them (x264's scenecut): only keyframes are decoded, and the cuts are
    // found on their frames, in one pass or in parts alike.
    let src = three_scenes("three_scenes_keys.mkv", &["-preset", "veryfast", "-g", "12"]);
    let tl = layout::timeline(Path::new("ffprobe"), &src, &Cancel::new()).unwrap();
    let method = scenes::scene_method(&tl);
    assert_eq!(method, scenes::SceneMethod::Keyframes);
    let t = tempfile::tempdir().unwrap();
    let one = scenes::scene_cuts(&ffmpeg(), &src, &tl, 1, method, t.path(), &Cancel::new());
    let parts = scenes::scene_cuts(&ffmpeg(), &src, &tl, 4, method, t.path(), &Cancel::new());
    assert_eq!(one, parts);
    assert_eq!(one.len(), 2, "the two cuts and nothing inside a scene: {one:?}");
    for cut in [15.0, 30.0] {
        assert!(one.iter().any(|c| (c - cut).abs() < 0.01), "cut at {cut}: {one:?}");
    }
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0, "the small pictures are removed");

    // The same with a clock that starts at 10 s (as a remuxed transport
    // stream's may): every cut found, in parts as in one pass.
    let late =
        three_scenes("three_scenes_keys_late.mkv", &["-preset", "veryfast", "-g", "12", "-output_ts_offset", "10"]);
    let tl = layout::timeline(Path::new("ffprobe"), &late, &Cancel::new()).unwrap();
    assert!((tl.pts[0] - 10.0).abs() < 0.01, "clock starts at {}", tl.pts[0]);
    let one = scenes::scene_cuts(&ffmpeg(), &late, &tl, 1, method, t.path(), &Cancel::new());
    let parts = scenes::scene_cuts(&ffmpeg(), &late, &tl, 4, method, t.path(), &Cancel::new());
    assert_eq!(one, parts);
    assert_eq!(one.len(), 2, "{one:?}");
    for cut in [25.0, 40.0] {
        assert!(one.iter().any(|c| (c - cut).abs() < 0.01), "cut at {cut}: {one:?}");
    }
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
    for allocation in ["target", "slope"] {
        chunked_encode_hits_the_target(allocation);
    }
}

fn chunked_encode_hits_the_target(allocation: &str) {
    let src = chunk_clip();
    let t = tempfile::tempdir().unwrap();
    let out_dir = t.path().join("out");
    let mut c = chunked_drapto(t.path());
    c.env("DRAPTO_CHUNKED_ALLOCATION", allocation);
    let o = run(c.args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success());
    let ev = events(&o);
    let plan = ev.iter().find(|e| e["event"] == "analysis_complete").unwrap();
    assert_eq!(plan["plan"]["path"], "chunked");
    assert_eq!(plan["plan"]["chunked"]["allocation"], allocation);
    let segs: Vec<_> = ev.iter().filter(|e| e["event"] == "segment_complete" && e["reused"] == false).collect();
    assert!(segs.len() >= 3, "{} segments", segs.len());
    assert!(ev.iter().any(|e| e["event"] == "segment_probe"));
    let mut weighted = 0.0;
    let mut frames = 0.0;
    for s in &segs {
        let predicted = s["predicted_vmaf"].as_f64().unwrap();
        let measured = s["measured_vmaf"].as_f64().unwrap();
        let n = s["frames"].as_f64().unwrap();
        weighted += measured * n;
        frames += n;
        if allocation == "target" {
            // The search settles within [target, target + tolerance] on its
            // samples; the whole segment, scored on every frame, stays close.
            assert!((93.0..=94.0).contains(&predicted) || s["crf"].as_f64() == Some(55.0), "{s}");
        } else {
            // Planned inside the band; the film's mean is what is aimed at.
            assert!((91.9..=95.1).contains(&predicted) || s["crf"].as_f64() == Some(55.0), "{s}");
        }
        // Held to the floor (target − 1), up to the measurement's noise.
        assert!(measured >= 91.5, "segment measured {measured}: {s}");
    }
    assert!(weighted / frames >= 92.5, "{allocation}: mean measured {}", weighted / frames);
    // The video stage's progress only rises, to 100; with a survey, it moves
    // (with an ETA) before the first segment encode starts.
    let video: Vec<f64> = ev
        .iter()
        .filter(|e| e["event"] == "progress" && e["stage"]["kind"] == "video")
        .map(|e| e["percent"].as_f64().unwrap())
        .collect();
    assert!(video.windows(2).all(|w| w[1] >= w[0] - 1e-9), "{video:?}");
    assert!((video.last().copied().unwrap() - 100.0).abs() < 1e-6);
    if allocation == "slope" {
        let first_encode =
            ev.iter().position(|e| e["event"] == "segment_step" && e["step"]["kind"] == "encoding").unwrap();
        assert!(
            ev[..first_encode].iter().any(|e| e["event"] == "progress"
                && e["stage"]["kind"] == "video"
                && e["eta_seconds"].as_f64().is_some())
        );
    }
    assert_chunked_sequence(&ev);
    let out = out_dir.join("chunky.mkv");
    assert_eq!(frame_count(&out), frame_count(&src), "every frame exactly once");
    let psnr = lowest_psnr(&out, &src);
    assert!(psnr > 24.0, "each frame the source's picture: lowest frame PSNR {psnr:.1} dB");
    let p = ffprobe(&out);
    let v = streams(&p, "video")[0];
    let a = streams(&p, "audio")[0];
    let vd: f64 = v["tags"]["DURATION"].as_str().map(parse_hms).unwrap();
    let ad: f64 = a["tags"]["DURATION"].as_str().map(parse_hms).unwrap();
    assert!((vd - 6.0).abs() < 0.1 && (ad - 6.0).abs() < 0.1, "video {vd} audio {ad}");
    // Timestamps are continuous: no gap or overlap between segments.
    let pts = packet_times(&out, "v:0");
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
    // The per-segment search (the slope allocation surveys, then plans).
    c.env("DRAPTO_PARALLEL_JOBS", "1").env("DRAPTO_CHUNKED_ALLOCATION", "target");
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

/// A job for the whole of `chunk_clip()` as one segment (72 frames; the
/// tier-1 samples are 36 of them), searched from `first_guess` with the
/// score curve's slope taken to be `slope`.
fn whole_clip_job(t: &Path, first_guess: f64, slope: Option<f64>) -> (SegmentJob, Timeline) {
    let src = chunk_clip();
    let tl = layout::timeline(Path::new("ffprobe"), &src, &Cancel::new()).unwrap();
    let job = SegmentJob {
        source: src,
        segment: Segment { index: 0, start: 0, end: tl.frames() },
        output: t.join("0001.mkv"),
        scratch: t.to_path_buf(),
        filters: None,
        decimation_cycle: None,
        encoder: EncoderSettings {
            preset: 12,
            pix_fmt: "yuv420p10le".into(),
            svt_params: "tune=0".into(),
            colour_args: vec![],
            dolby_vision: false,
        },
        params: ChunkedParams {
            target: 93.0,
            chunk_seconds: 6.0,
            workers: 1,
            threads_per_worker: 2,
            subsample: 3,
            probe_subsample: 3,
            predict: true,
            pool: drapto::config::VmafPool::HarmonicMean,
            crf_step: 0.25,
            frame_bytes: 320 * 240 * 3 / 2,
            allocation: Allocation::Target,
            survey_preset: None,
        },
        vmaf: VmafSpec::for_picture(
            drapto::analysis::resolution::ResolutionClass::Sd,
            (320, 240),
            (1, 1),
            Some(8),
            drapto::config::VmafPool::HarmonicMean,
            2,
        ),
        first_guess,
        slope,
        fixed: None,
    };
    (job, tl)
}

#[test]
fn a_prediction_the_encode_does_not_bear_out_is_probed_and_searched_on() {
    assert_eq!(frame_count(&chunk_clip()), 72);
    let t = tempfile::tempdir().unwrap();
    // A far too steep slope: from a first probe at CRF 10 (VMAF ~99) the
    // model puts VMAF 93.3 a few CRF steps up, where the encode scores far
    // more. The check on the encode must catch it.
    let (job, tl) = whole_clip_job(t.path(), 10.0, Some(0.3));
    let reports = std::sync::Mutex::new(Vec::new());
    let r = run_segment(&ffmpeg(), &job, &tl, &Cancel::new(), &|| 2, &|rep| reports.lock().unwrap().push(rep))
        .expect("segment encoded");
    let reports = reports.into_inner().unwrap();
    let steps: Vec<SegmentStep> =
        reports.iter().filter_map(|r| if let Report::Step { step, .. } = r { Some(*step) } else { None }).collect();
    // Sampling, one probe, then the predicted encode and its measurement...
    assert!(
        matches!(steps[..2], [SegmentStep::Sampling { tier: 1 }, SegmentStep::Probing { tier: 1, crf }] if crf == 10.0),
        "{steps:?}"
    );
    let SegmentStep::Encoding { crf: predicted } = steps[2] else { panic!("{steps:?}") };
    assert!(predicted > 10.0 && predicted - 10.0 <= search::MAX_LEAP, "{predicted}");
    assert_eq!(steps[3], SegmentStep::Measuring, "{steps:?}");
    // ...which missed: the predicted CRF is probed after all, and the search
    // settles on a probed CRF further up, encoded and measured again.
    assert_eq!(steps[4], SegmentStep::Probing { tier: 1, crf: predicted }, "{steps:?}");
    assert_eq!(r.prediction, PredictionSource::Probe);
    assert!(r.probes.len() >= 3, "{:?}", r.probes);
    assert!(r.probes[1].crf == predicted && r.probes[1].score > 95.0, "{:?}", r.probes);
    assert!(r.crf > predicted, "settled at {} after predicting {predicted}", r.crf);
    assert!((93.0..=94.0).contains(&r.predicted_vmaf) || r.crf == 55.0, "{r:?}");
    assert_eq!(steps.iter().filter(|s| **s == SegmentStep::Measuring).count(), 2, "{steps:?}");
    assert_eq!(steps.last(), Some(&SegmentStep::Measuring));
    // One segment file with every frame; the missed encode is gone.
    assert_eq!(frame_count(&job.output), 72);
    let left = files_besides(t.path(), "0001.mkv");
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_prediction_spares_the_confirming_probe_and_lands_where_probing_does() {
    let t = tempfile::tempdir().unwrap();
    // From CRF 26 (VMAF ~95 on this clip) the default slope predicts the
    // target a few steps up: the segment is encoded there after one probe,
    // and its measured VMAF bears the prediction out.
    let (job, tl) = whole_clip_job(t.path(), 26.0, None);
    let predicted = run_segment(&ffmpeg(), &job, &tl, &Cancel::new(), &|| 2, &|_| {}).unwrap();
    assert_eq!(predicted.prediction, PredictionSource::Model, "{predicted:?}");
    assert_eq!(predicted.probes.len(), 1);
    assert!((93.0..=94.0).contains(&predicted.predicted_vmaf), "{predicted:?}");
    let m = predicted.measured_vmaf.unwrap();
    assert!((93.0 - search::VERIFY_BELOW..=93.0 + search::VERIFY_ABOVE).contains(&m), "measured {m}");
    assert_eq!(frame_count(&job.output), 72);
    std::fs::remove_file(&job.output).unwrap();
    // The same search confirming every CRF by a probe lands about there.
    let (mut job, tl) = whole_clip_job(t.path(), 26.0, None);
    job.params.predict = false;
    let probed = run_segment(&ffmpeg(), &job, &tl, &Cancel::new(), &|| 2, &|_| {}).unwrap();
    assert_eq!(probed.prediction, PredictionSource::Probe);
    assert!(probed.probes.len() >= 2, "{probed:?}");
    assert!((probed.crf - predicted.crf).abs() <= 1.0, "probed {} vs predicted {}", probed.crf, predicted.crf);
}

#[test]
fn the_surveys_second_probe_keeps_to_a_straight_line_from_near_100() {
    let t = tempfile::tempdir().unwrap();
    // First probe at CRF 10 (VMAF ~96 on this clip's sample) on a
    // neighbour's flat slope: the search's log step from there leaps far;
    // the survey's second probe goes no farther than a straight line of at
    // least half a point per CRF puts the target.
    let (mut job, tl) = whole_clip_job(t.path(), 10.0, Some(0.015));
    job.params.allocation = Allocation::Slope;
    let space = search::SearchSpace {
        min_crf: 10.0,
        max_crf: 55.0,
        step: 0.25,
        target: 93.0,
        tolerance: 1.0,
        max_probes: 6,
        prior_slope: 0.015,
    };
    let survey = survey_segment(&ffmpeg(), &job, &tl, &Cancel::new(), &|| 2, &|_| {}).expect("surveyed");
    let [first, second, ..] = survey.probes.as_slice() else { panic!("{:?}", survey.probes) };
    assert_eq!(first.crf, 10.0);
    assert!(first.score > 95.0, "{first:?}");
    let first_point = search::Point { crf: first.crf, score: first.score };
    let search::Next::Probe(leap) = space.next(&[first_point], 10.0) else { panic!() };
    let straight =
        first.crf + (first.score - (93.0 + 1.0 / 3.0)) / (search::DEFAULT_SLOPE * (100.0 - 93.0 - 1.0 / 3.0));
    assert!(leap > straight + 10.0, "the log step leaps: {leap} (straight line at {straight:.2})");
    assert!(second.crf > first.crf && second.crf <= straight + 0.25, "{second:?}, straight line at {straight:.2}");
    assert_eq!(second.crf, space.straight_cap(first_point, leap));
}

#[test]
fn a_survey_at_another_preset_probes_as_an_encode_at_that_preset_would() {
    let t = tempfile::tempdir().unwrap();
    let (mut job, tl) = whole_clip_job(t.path(), 30.0, Some(0.05));
    job.params.allocation = Allocation::Slope;
    let survey = |job: &SegmentJob| survey_segment(&ffmpeg(), job, &tl, &Cancel::new(), &|| 2, &|_| {}).unwrap();
    let own = survey(&job);
    let mut other = job.clone();
    other.params.survey_preset = Some(8);
    let at_8 = survey(&other);
    let mut encoded_at_8 = job.clone();
    encoded_at_8.encoder.preset = 8;
    let reference = survey(&encoded_at_8);
    let key = |s: &drapto::encode::chunked::Survey| -> Vec<(f64, u64)> {
        s.probes.iter().map(|p| (p.crf, p.bytes)).collect()
    };
    assert_eq!(key(&at_8), key(&reference), "the probes are preset 8's");
    assert_ne!(key(&at_8), key(&own), "preset 12's probes differ");
}

/// The frames ffmpeg keeps through the measurement's selection filter for
/// one in `subsample`, counted from 0.
fn frames_selected(subsample: u32, frames: u32) -> Vec<u64> {
    let select = vmaf::selection(subsample).expect("a selection");
    let out = Command::new(ffmpeg())
        .args(["-hide_banner", "-nostdin", "-nostats", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=size=32x32:rate=1:duration={frames}"))
        .args(["-vf", &format!("{select},showinfo"), "-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    log.lines().filter_map(|l| l.split(" pts:").nth(1)?.split_whitespace().next()?.parse().ok()).collect()
}

#[test]
fn ffmpeg_keeps_each_scored_frame_and_its_neighbours_through_the_selection() {
    for s in [5, 9, 13] {
        let kept = frames_selected(s, 600);
        // Frames 0 and 1, then each s-th frame with the one before and after.
        let expected: Vec<u64> = (0..600).filter(|n| (n + 1) % u64::from(s) < 3).collect();
        assert_eq!(kept, expected, "every {s}");
        assert_eq!(kept.len() as u64, vmaf::selected_frames(600, s).unwrap());
    }
}

/// libvmaf's own per-frame scores of a segment encode of frames 20–61 of
/// its source, given every frame of both in `fmt` (then `scale`d): pooled
/// over the frames a measurement of every 9th scores, without frame 0 (see
/// `vmaf::pooled`).
fn libvmaf_on_the_scored_frames(job: &SegmentJob, dir: &Path, fmt: &str, scale: &str) -> f64 {
    let log = dir.join("frames.json");
    let mut a = FfmpegArgs::default();
    a.extend(["-hide_banner", "-nostdin", "-loglevel", "error"]).input(&job.output).input(&job.source);
    let side = format!("setpts=N/(25*TB),format={fmt}{scale}");
    a.arg("-lavfi").arg(format!(
        "[0:v]{side}[d];[1:v]trim=start_frame=20:end_frame=62,{side}[r];\
         [d][r]libvmaf=model=version=vmaf_v0.6.1:n_subsample=1:log_fmt=json:log_path={}",
        log.display()
    ));
    a.extend(["-f", "null", "-"]);
    assert!(a.command(&ffmpeg()).status().unwrap().success());
    let frames: serde_json::Value = serde_json::from_slice(&std::fs::read(&log).unwrap()).unwrap();
    std::fs::remove_file(&log).unwrap();
    let score = |n: u64| frames["frames"][n as usize]["metrics"]["vmaf"].as_f64().unwrap();
    let scored: Vec<f64> = [9, 18, 27, 36].into_iter().map(score).collect();
    scored.len() as f64 / scored.iter().map(|v| 1.0 / (v + 1.0)).sum::<f64>() - 1.0
}

#[test]
fn the_measurement_scores_what_libvmaf_scores_on_every_subsampled_frame() {
    let t = tempfile::tempdir().unwrap();
    let (mut job, tl) = whole_clip_job(t.path(), 30.0, None);
    // Frames 20–61 (mid-GOP at both ends), every 9th scored: the encode
    // writes the frames that reads beside it.
    job.segment = Segment { index: 0, start: 20, end: 62 };
    job.params.subsample = 9;
    job.params.predict = false;
    let r = run_segment(&ffmpeg(), &job, &tl, &Cancel::new(), &|| 2, &|_| {}).unwrap();
    let measured = r.measured_vmaf.expect("measured");
    assert_eq!(frame_count(&job.output), 42);
    let direct = libvmaf_on_the_scored_frames(&job, t.path(), "yuv420p10le", ",scale=1440:1080:flags=bicubic");
    assert!((measured - direct).abs() < 1e-4, "measured {measured}, libvmaf on the same frames {direct}");
    let left = files_besides(t.path(), "0001.mkv");
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn an_unscaled_8_bit_source_is_measured_in_8_bits_what_libvmaf_scores_there() {
    let t = tempfile::tempdir().unwrap();
    let (mut job, tl) = whole_clip_job(t.path(), 30.0, None);
    job.segment = Segment { index: 0, start: 20, end: 62 };
    job.params.subsample = 9;
    job.params.predict = false;
    // As `VmafSpec::for_picture` gives an 8-bit source scored at its own size.
    job.vmaf = VmafSpec { scale: None, pix_fmt: "yuv420p".into(), ..job.vmaf.clone() };
    let r = run_segment(&ffmpeg(), &job, &tl, &Cancel::new(), &|| 2, &|_| {}).unwrap();
    let measured = r.measured_vmaf.expect("measured");
    let eight = libvmaf_on_the_scored_frames(&job, t.path(), "yuv420p", "");
    let ten = libvmaf_on_the_scored_frames(&job, t.path(), "yuv420p10le", "");
    assert!((measured - eight).abs() < 1e-4, "measured {measured}, libvmaf in 8 bits {eight}");
    assert!((eight - ten).abs() < 0.1, "8 bits {eight} against 10 bits {ten}");
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
    let total = ev.iter().filter(|e| e["event"] == "segment_complete" && e["reused"] == false).count();
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

/// Runs `drapto encode --json` of `src` into `out_dir` with `cmd` and kills
/// it with SIGKILL (no chance to clean up) at the first event line for
/// which `at` says yes (`at` sees every line up to it).
fn kill_json_encode_at(cmd: &mut Command, src: &Path, out_dir: &Path, mut at: impl FnMut(&str) -> bool) {
    let mut child = cmd
        .args(["encode", "--json", "-i"])
        .arg(src)
        .arg("-o")
        .arg(out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        if at(&line.unwrap()) {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn killed_chunked_job_resumes_without_redoing_finished_segments() {
    let t = tempfile::tempdir().unwrap();
    // A private copy, so that no other test's encoders match its name.
    let src = t.path().join("resume me.mkv");
    std::fs::copy(chunk_clip(), &src).unwrap();
    let out_dir = t.path().join("out");
    kill_json_encode_at(&mut chunked_drapto(t.path()), &src, &out_dir, |line| line.contains("\"segment_complete\""));
    assert!(!out_dir.join("resume me.mkv").exists(), "no output under the final name");

    let jobs: Vec<_> = std::fs::read_dir(t.path().join("work/jobs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(jobs.len(), 1);
    // Finished = recorded as completed with its file in place. (A worker
    // renames its segment before the record is written, so a kill between
    // the two leaves a file the next run rightly does not trust.)
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(jobs[0].join("state/encoding.json")).unwrap()).unwrap();
    let finished: Vec<_> = state["segments"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(i, s)| {
            s["status"] == "completed"
                && jobs[0].join(format!("encoded/{:04}.mkv", i.parse::<usize>().unwrap() + 1)).exists()
        })
        .collect();
    assert!(!finished.is_empty());
    // No encoder outlives drapto: its guard kills them (at most a tenth of
    // a second after drapto, give or take the machine's load).
    let orphans = || {
        let ps = Command::new("pgrep").args(["-f", &src.to_string_lossy()]).output().unwrap();
        String::from_utf8_lossy(&ps.stdout).trim().to_string()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !orphans().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(orphans().is_empty(), "orphaned children: {}", orphans());
    // `drapto status` tells of the rip the killed run was encoding (it said
    // only "No drapto is running").
    let st = run(chunked_drapto(t.path()).args(["status", "--json"]));
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let told = st["last"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["outcome"] == "unfinished" && r["input"].as_str().is_some_and(|i| i.ends_with("resume me.mkv")));
    assert!(told, "{st}");

    let o = run(chunked_drapto(t.path()).args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success());
    let ev = events(&o);
    // The resumed stage shows its kept share at once, before any segment
    // of this run is done (it showed 0% until then).
    let video_progress = ev
        .iter()
        .skip_while(|e| !(e["event"] == "stage_started" && e["stage"]["kind"] == "video"))
        .take_while(|e| !(e["event"] == "segment_complete" && e["reused"] == false))
        .find(|e| e["event"] == "progress");
    let first = video_progress.map(|e| e["percent"].as_f64().unwrap());
    assert!(first.is_some_and(|p| p > 33.0), "{video_progress:?}");
    assert!(
        ev.iter().any(|e| e["event"] == "warning" && e["message"].as_str().unwrap().contains("resuming")),
        "the run says what it reused"
    );
    let redone = ev.iter().filter(|e| e["event"] == "segment_complete" && e["reused"] == false).count();
    let total =
        ev.iter().find(|e| e["event"] == "segment_complete").map(|e| e["total"].as_u64().unwrap()).unwrap() as usize;
    assert_eq!(redone, total - finished.len(), "finished segments are not encoded again");
    // The earlier run's segments are the film's too: its report has them all
    // (it had this run's alone).
    let reused = ev.iter().filter(|e| e["event"] == "segment_complete" && e["reused"] == true).count();
    assert_eq!(reused, finished.len());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("resume me.mkv.report.json")).unwrap()).unwrap();
    assert_eq!(report["segments"].as_array().map(Vec::len), Some(total), "{}", report["segments"]);
    // Progress counts the earlier run's segments: the last is the total's.
    let done: Vec<u64> = ev
        .iter()
        .filter(|e| e["event"] == "segment_complete" && e["reused"] == false)
        .map(|e| e["done"].as_u64().unwrap())
        .collect();
    assert_eq!(done.first(), Some(&(finished.len() as u64 + 1)), "{done:?}");
    assert_eq!(done.last(), Some(&(total as u64)), "{done:?}");
    assert_eq!(frame_count(&out_dir.join("resume me.mkv")), frame_count(&src));
    let psnr = lowest_psnr(&out_dir.join("resume me.mkv"), &src);
    assert!(psnr > 24.0, "each frame the source's picture: lowest frame PSNR {psnr:.1} dB");
}

/// The segments `job`'s state records as completed with their file in place.
fn finished_segments(job: &Path) -> Vec<usize> {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(job.join("state/encoding.json")).unwrap()).unwrap();
    state["segments"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(i, s)| (i.parse::<usize>().unwrap(), s))
        .filter(|(i, s)| s["status"] == "completed" && job.join(format!("encoded/{:04}.mkv", i + 1)).exists())
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn a_stop_while_a_rerun_checks_its_segments_keeps_them() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("check me.mkv");
    std::fs::copy(chunk_clip(), &src).unwrap();
    let out_dir = t.path().join("out");
    kill_json_encode_at(&mut chunked_drapto(t.path()), &src, &out_dir, |line| line.contains("\"segment_complete\""));
    let job = std::fs::read_dir(t.path().join("work/jobs")).unwrap().next().unwrap().unwrap().path();
    let finished = finished_segments(&job);
    assert!(!finished.is_empty());
    // An ffprobe that asks drapto to stop as it counts a finished segment's
    // frames (a Ctrl-C while a rerun checks its segments). The stop used to
    // strip every segment not yet checked from the state.
    let real = String::from_utf8(Command::new("sh").args(["-c", "command -v ffprobe"]).output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    let fake = t.path().join("ffprobe");
    let text = format!(
        "#!/bin/sh\ncase \"$*\" in *-count_packets*/encoded/*) kill -INT $PPID; sleep 1;; esac\nexec '{real}' \"$@\"\n"
    );
    script(&fake, &text);
    let o = run(chunked_drapto(t.path())
        .env("DRAPTO_FFPROBE", &fake)
        .args(["encode", "--json", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(&out_dir));
    assert!(!o.status.success());
    assert!(events(&o).iter().any(|e| e["event"] == "file_interrupted"), "{}", stderr(&o));
    assert_eq!(finished_segments(&job), finished, "the state is as the stop found it");
    let o = run(chunked_drapto(t.path()).args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = events(&o);
    let redone = ev.iter().filter(|e| e["event"] == "segment_complete" && e["reused"] == false).count();
    let total = ev.iter().find(|e| e["event"] == "segment_complete").unwrap()["total"].as_u64().unwrap() as usize;
    assert_eq!(redone, total - finished.len(), "finished segments are not encoded again");
}

#[test]
fn a_segment_whose_measurement_fails_is_not_kept_unmeasured() {
    let t = tempfile::tempdir().unwrap();
    // An ffmpeg whose first VMAF measurement of segment 2's encode fails
    // (a stop, or a segment libvmaf cannot decode): the segment used to be
    // kept as finished, "measured n/a", and never held to the floor.
    let marker = t.path().join("failed-once");
    let fake = t.path().join("ffmpeg");
    let text = format!(
        "#!/bin/sh\ncase \"$*\" in *0002.crf*libvmaf*) [ -e '{m}' ] || {{ touch '{m}'; echo 'simulated failure' >&2; exit 1; }};; esac\nexec '{f}' \"$@\"\n",
        m = marker.display(),
        f = ffmpeg().display()
    );
    script(&fake, &text);
    let src = chunk_clip();
    let out_dir = t.path().join("out");
    let o = run(chunked_drapto(t.path())
        .env("DRAPTO_FFMPEG", &fake)
        .args(["encode", "--json", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(&out_dir));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(marker.exists(), "the failure happened");
    let ev = events(&o);
    let done: Vec<_> = ev.iter().filter(|e| e["event"] == "segment_complete" && e["reused"] == false).collect();
    assert!(done.iter().all(|e| e["measured_vmaf"].is_number()), "every segment measured: {done:?}");
    assert_eq!(frame_count(&out_dir.join("chunky.mkv")), frame_count(&src));
    let psnr = lowest_psnr(&out_dir.join("chunky.mkv"), &src);
    assert!(psnr > 24.0, "each frame the source's picture: lowest frame PSNR {psnr:.1} dB");
}

/// The names of the files in `dir` other than `keep`.
fn files_besides(dir: &Path, keep: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != keep)
        .collect()
}

#[test]
fn a_segment_that_fails_once_is_tried_again_and_the_film_finishes() {
    let t = tempfile::tempdir().unwrap();
    // An ffmpeg that fails the first encode of segment 2 (its output is
    // encoded/0002.crf….partial.mkv), as a crashed encoder or a full disk
    // for a moment would, and runs every other command as the real one.
    let marker = t.path().join("failed-once");
    let fake = t.path().join("ffmpeg");
    let text = format!(
        "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in */0002.crf*.partial.mkv) [ -e '{m}' ] || {{ touch '{m}'; echo 'simulated crash' >&2; exit 1; }};; esac; done\nexec '{f}' \"$@\"\n",
        m = marker.display(),
        f = ffmpeg().display()
    );
    script(&fake, &text);
    let src = chunk_clip();
    let out_dir = t.path().join("out");
    let mut c = chunked_drapto(t.path());
    c.env("DRAPTO_FFMPEG", &fake);
    let o = run(c.args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(marker.exists(), "the failure happened");
    let ev = events(&o);
    assert!(
        ev.iter().any(|e| e["event"] == "warning"
            && e["message"].as_str().unwrap().starts_with("segment 2 failed")
            && e["message"].as_str().unwrap().contains("trying it once more")),
        "the retry is reported"
    );
    assert_eq!(frame_count(&out_dir.join("chunky.mkv")), frame_count(&src));
    let psnr = lowest_psnr(&out_dir.join("chunky.mkv"), &src);
    assert!(psnr > 24.0, "each frame the source's picture: lowest frame PSNR {psnr:.1} dB");
}

#[test]
fn a_job_killed_after_its_survey_resumes_without_surveying_again() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("survey me.mkv");
    std::fs::copy(chunk_clip(), &src).unwrap();
    let out_dir = t.path().join("out");
    let mut c = chunked_drapto(t.path());
    c.env("DRAPTO_CHUNKED_ALLOCATION", "slope");
    let mut probes = 0;
    kill_json_encode_at(&mut c, &src, &out_dir, |line| {
        probes += usize::from(line.contains("\"segment_probe\""));
        // The survey is over when the first segment encode starts.
        line.contains("\"segment_step\"") && line.contains("\"encoding\"")
    });
    assert!(probes > 0);
    let mut c = chunked_drapto(t.path());
    c.env("DRAPTO_CHUNKED_ALLOCATION", "slope");
    let o = run(c.args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success());
    let ev = events(&o);
    let resumed = ev
        .iter()
        .find(|e| e["event"] == "warning" && e["message"].as_str().unwrap().starts_with("resuming"))
        .expect("the run says what it reused");
    assert!(resumed["message"].as_str().unwrap().contains("surveyed"), "{resumed}");
    assert!(!ev.iter().any(|e| e["event"] == "segment_probe"), "no segment is surveyed twice");
    assert_eq!(frame_count(&out_dir.join("survey me.mkv")), frame_count(&src));
    let psnr = lowest_psnr(&out_dir.join("survey me.mkv"), &src);
    assert!(psnr > 24.0, "each frame the source's picture: lowest frame PSNR {psnr:.1} dB");
}

#[test]
fn a_segment_measured_below_its_floor_is_searched_further_on_wholes() {
    let t = tempfile::tempdir().unwrap();
    // The allocation planned CRF 50 at VMAF 93; this content scores far
    // less there, under the floor of 92.
    let (mut job, tl) = whole_clip_job(t.path(), 50.0, None);
    job.fixed = Some(Fixed { crf: 50.0, planned: 93.0, floor: 92.0 });
    let reports = std::sync::Mutex::new(Vec::new());
    let r = run_segment(&ffmpeg(), &job, &tl, &Cancel::new(), &|| 2, &|rep| reports.lock().unwrap().push(rep))
        .expect("segment encoded");
    let encodes: Vec<f64> = reports
        .into_inner()
        .unwrap()
        .iter()
        .filter_map(|r| match r {
            Report::Step { step: SegmentStep::Encoding { crf }, .. } => Some(*crf),
            _ => None,
        })
        .collect();
    assert_eq!(encodes[0], 50.0);
    assert!(encodes.len() >= 2 && encodes.len() <= 3, "one or two further encodes: {encodes:?}");
    assert!(encodes[1..].iter().all(|c| *c < 50.0 && *c >= 50.0 - search::MAX_LEAP), "{encodes:?}");
    assert!(r.crf < 50.0, "a lower CRF kept: {r:?}");
    let measured = r.measured_vmaf.unwrap();
    assert_eq!(r.below_target, measured < 92.0, "{r:?}");
    assert_eq!(frame_count(&job.output), tl.frames() as u64);
}

#[test]
fn an_anamorphic_dvd_is_scored_at_the_size_it_is_shown_and_keeps_its_aspect() {
    // 720x480 at a sample aspect of 32:27: a 16:9 DVD, shown 853x480. The
    // 1080p model scores it fitted to a 1920x1080 screen, not at 1920x1280
    // (1920 wide at its stored 3:2 shape), and the output says 16:9 still.
    let src = fixture(
        "anamorphic_dvd.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=720x480:rate=12:duration=4,setsar=32/27",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "14",
        ],
    );
    assert_eq!(streams(&ffprobe(&src), "video")[0]["display_aspect_ratio"], "16:9", "the fixture is anamorphic");
    let t = tempfile::tempdir().unwrap();
    let out_dir = t.path().join("out");
    let logs = t.path().join("logs");
    let mut c = chunked_drapto(t.path());
    c.env("DRAPTO_LOG_DIR", &logs);
    let o = run(c.args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log: String =
        std::fs::read_dir(&logs).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
    let scored: Vec<&str> = log.lines().filter(|l| l.contains("libvmaf=")).collect();
    assert!(scored.len() >= 2, "probes and measurements logged:\n{log}");
    for l in &scored {
        assert_eq!(l.matches("scale=1920:1080:").count(), 2, "both sides at 1920x1080: {l}");
    }
    let out = out_dir.join("anamorphic_dvd.mkv");
    let p = ffprobe(&out);
    let v = streams(&p, "video")[0];
    assert_eq!(v["display_aspect_ratio"], "16:9", "{v}");
    assert_eq!(frame_count(&out), frame_count(&src));
    let psnr = lowest_psnr(&out, &src);
    assert!(psnr > 24.0, "each frame the source's picture: lowest frame PSNR {psnr:.1} dB");
}

/// `chunk_clip()` with the colour tags nearly every real rip carries in its
/// H.264 stream (range tv, BT.709).
fn tagged_clip() -> std::path::PathBuf {
    fixture(
        "chunky-tagged.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=12:duration=3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "12",
            "-pix_fmt",
            "yuv420p",
            "-color_range",
            "tv",
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
        ],
    )
}

/// The colour arguments the plan gives an encode of [`tagged_clip`].
fn bt709_tags() -> Vec<(String, String)> {
    [("color_range", "tv"), ("colorspace", "bt709"), ("color_primaries", "bt709")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec()
}

#[test]
fn a_colour_tagged_source_is_measured_as_libvmaf_scores_it_against_the_source() {
    let t = tempfile::tempdir().unwrap();
    let (mut job, _) = whole_clip_job(t.path(), 30.0, None);
    job.source = tagged_clip();
    let tl = layout::timeline(Path::new("ffprobe"), &job.source, &Cancel::new()).unwrap();
    job.segment = Segment { index: 0, start: 0, end: tl.frames() };
    // The encode carries the source's tags (as the plan's colour arguments
    // do); the measurement reads the source's frames written raw, untagged.
    job.encoder.colour_args = bt709_tags();
    job.params.subsample = 1;
    job.params.predict = false;
    job.fixed = Some(Fixed { crf: 30.0, planned: 93.0, floor: 0.0 });
    let r = run_segment(&ffmpeg(), &job, &tl, &Cancel::new(), &|| 2, &|_| {}).unwrap();
    let measured = r.measured_vmaf.expect("measured");
    // libvmaf on the encode against the source itself: both tagged alike.
    let log = t.path().join("frames.json");
    let mut a = FfmpegArgs::default();
    a.extend(["-hide_banner", "-nostdin", "-loglevel", "error"]).input(&job.output).input(&job.source);
    let side = "setpts=N/(25*TB),format=yuv420p10le,scale=1440:1080:flags=bicubic";
    a.arg("-lavfi").arg(format!(
        "[0:v]{side}[d];[1:v]{side}[r];[d][r]libvmaf=model=version=vmaf_v0.6.1:log_fmt=json:log_path={}",
        log.display()
    ));
    a.extend(["-f", "null", "-"]);
    assert!(a.command(&ffmpeg()).status().unwrap().success());
    let frames: serde_json::Value = serde_json::from_slice(&std::fs::read(&log).unwrap()).unwrap();
    let scores: Vec<(u64, f64)> = frames["frames"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(n, f)| (n as u64, f["metrics"]["vmaf"].as_f64().unwrap()))
        .collect();
    let direct = vmaf::pooled(&scores, drapto::config::VmafPool::HarmonicMean).unwrap();
    assert!(direct > 90.0, "the encode at CRF 30 scores {direct}");
    assert!((measured - direct).abs() < 0.05, "measured {measured}, libvmaf against the source {direct}");
}

#[test]
fn a_colour_tagged_sources_survey_probes_the_sources_own_pixels() {
    // The survey's samples are cut to raw video, which keeps no colour
    // tags; the probe encodes write the source's. The tags must not change
    // the pixels: the probes score as those of the same samples untagged.
    let t = tempfile::tempdir().unwrap();
    let (mut job, _) = whole_clip_job(t.path(), 30.0, Some(0.05));
    job.source = tagged_clip();
    let tl = layout::timeline(Path::new("ffprobe"), &job.source, &Cancel::new()).unwrap();
    job.segment = Segment { index: 0, start: 0, end: tl.frames() };
    job.params.allocation = Allocation::Slope;
    let survey = |job: &SegmentJob| survey_segment(&ffmpeg(), job, &tl, &Cancel::new(), &|| 2, &|_| {}).unwrap();
    let untagged = survey(&job);
    job.encoder.colour_args = bt709_tags();
    let tagged = survey(&job);
    let key = |s: &drapto::encode::chunked::Survey| -> Vec<(f64, String)> {
        s.probes.iter().map(|p| (p.crf, format!("{:.2}", p.score))).collect()
    };
    assert_eq!(key(&tagged), key(&untagged));
}

/// A variable frame rate without repeat-field flags (frames 50 and 33.4 ms
/// apart in turn, as some DVD rips are timed): drapto keeps the source's
/// times, and every segment boundary must too. mkvmerge's append used to
/// start each segment where the one before ended by its nominal frame
/// duration: 8 ms more at each boundary here.
#[test]
fn segments_keep_the_source_frame_times_of_a_variable_frame_rate() {
    assert!(has_libvmaf(), "the test ffmpeg must have libvmaf (scripts/setup.sh installs one)");
    let src = fixture(
        "vfr_alternating.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=24:duration=5,settb=1/1000,setpts='floor(N/2)*83.4+mod(N,2)*50'",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=500:sample_rate=48000:duration=5",
            "-fps_mode",
            "passthrough",
            "-enc_time_base:v",
            "1/1000",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "flac",
        ],
    );
    let t = tempfile::tempdir().unwrap();
    let o = run(chunked_drapto(t.path())
        .env("DRAPTO_CHUNK_SIZE", "1")
        .args(["encode", "--json", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("out")));
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = events(&o);
    let segments = ev.iter().filter(|e| e["event"] == "segment_complete" && e["reused"] == false).count();
    assert!(segments >= 4, "{segments} segments");
    let ms = |p: &Path| -> Vec<f64> { packet_times(p, "v:0").iter().map(|s| s * 1000.0).collect() };
    let (before, after) = (ms(&src), ms(&t.path().join("out/vfr_alternating.mkv")));
    assert_eq!(after.len(), before.len());
    let worst = before.iter().zip(&after).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst <= 1.0, "a frame moved by {worst:.1} ms: {:?}", &after[after.len() - 3..]);
}

/// A rip whose video starts 200 ms after its audio (as remuxes of disc
/// streams can): the chunked path's video is appended from zero and moved
/// to the source's start, and the audio, encoded on the source's clock,
/// stays where it was. One move for both put the audio 200 ms late, and the
/// output failed validation after the whole encode.
#[test]
fn a_video_that_starts_late_keeps_its_audio_in_place_on_the_chunked_path() {
    assert!(has_libvmaf(), "the test ffmpeg must have libvmaf (scripts/setup.sh installs one)");
    let clip = chunk_clip();
    let src = fixtures_dir().join("chunky_video_late.mkv");
    if !src.exists() {
        let tmp = scratch_path("chunky_video_late", "mkv");
        let o = Command::new("mkvmerge").arg("-q").arg("-o").arg(&tmp).args(["--sync", "0:200"]).arg(&clip).output();
        assert!(o.unwrap().status.code().unwrap_or(2) <= 1);
        std::fs::rename(&tmp, &src).unwrap();
    }
    let starts = |j: &serde_json::Value| -> Vec<f64> {
        let tracks = j["tracks"].as_array().unwrap();
        tracks.iter().map(|t| t["properties"]["minimum_timestamp"].as_f64().unwrap() / 1e6).collect()
    };
    assert_eq!(starts(&mkvmerge_j(&src)), [200.0, 0.0]);
    let t = tempfile::tempdir().unwrap();
    let o =
        run(chunked_drapto(t.path()).args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(t.path().join("out")));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = starts(&mkvmerge_j(&t.path().join("out/chunky_video_late.mkv")));
    assert!((out[0] - 200.0).abs() <= 1.0 && out[1].abs() <= 10.0, "video and audio start at {out:?} ms");
}

/// A resumed chunked job cuts the film where the first run did: the scene
/// cuts found are kept with the job. Here the first run's scene detection
/// fails (an ffmpeg that refuses it) and finds none, the second's finds the
/// cuts at 15 and 30 s: before, that made 6 segments instead of 5, and every
/// finished one was thrown away ("earlier state not used").
#[test]
fn a_resumed_chunked_job_keeps_its_first_runs_scene_cuts() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("cuts kept.mkv");
    std::fs::copy(three_scenes("three_scenes.mkv", &["-preset", "ultrafast", "-g", "24"]), &src).unwrap();
    let out_dir = t.path().join("out");
    let wrapper = t.path().join("ffmpeg-without-scene-detection.sh");
    let text = format!(
        "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in *scdet*|*.gray) exit 1;; esac; done\nexec '{}' \"$@\"\n",
        ffmpeg().display()
    );
    script(&wrapper, &text);
    let mut first = chunked_drapto(t.path());
    first.env("DRAPTO_FFMPEG", &wrapper).env("DRAPTO_CHUNK_SIZE", "10");
    kill_json_encode_at(&mut first, &src, &out_dir, |line| line.contains("\"segment_complete\""));

    let mut second = chunked_drapto(t.path());
    second.env("DRAPTO_CHUNK_SIZE", "10");
    let o = run(second.args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = events(&o);
    let said = |what: &str| ev.iter().any(|e| e["event"] == "warning" && e["message"].to_string().contains(what));
    assert!(!said("earlier state not used"), "the first run's state is used");
    assert!(said("already encoded and verified"), "its finished segments are reused");
}

/// A 23.976 film's track says 23.976 (players match their refresh rate to
/// it): mkvmerge took 42 ms from the assembled video's timestamps.
#[test]
fn a_chunked_film_keeps_its_nominal_frame_rate() {
    assert!(has_libvmaf());
    let src = fixture(
        "film_23976.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=24000/1001:duration=4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let t = tempfile::tempdir().unwrap();
    let o =
        run(chunked_drapto(t.path()).args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(t.path().join("out")));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = t.path().join("out/film_23976.mkv");
    let j = mkvmerge_j(&out);
    assert_eq!(j["tracks"][0]["properties"]["default_duration"], 41708333, "{}", j["tracks"][0]);
    assert_eq!(streams(&ffprobe(&out), "video")[0]["r_frame_rate"], "24000/1001");
}

/// A DVD title whose frame size changes: 5 s of 720×480 (SAR 8:9), then 5 s
/// of half-D1 352×480 (SAR 20:11), as some discs mix cells, in one MPEG-2
/// track.
fn mixed_size_title() -> std::path::PathBuf {
    let es = made_once("mixed-size-5.m2v", |tmp| {
        let part = |src: &str, sar: &str| {
            let o = Command::new(ffmpeg())
                .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", src, "-vf", sar])
                .args(["-c:v", "mpeg2video", "-b:v", "3M", "-g", "15", "-f", "mpeg2video", "-"])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            o.stdout
        };
        let full = part("testsrc2=size=720x480:rate=30000/1001:duration=5", "setsar=8/9");
        let half = part("testsrc=size=352x480:rate=30000/1001:duration=5", "setsar=20/11");
        std::fs::write(tmp, [full, half].concat()).unwrap();
    });
    mkvmerge_fixture("mixed-size-5.mkv", &["--default-duration".as_ref(), "0:30000/1001p".as_ref(), es.as_os_str()])
}

#[test]
fn a_title_whose_frame_size_changes_is_encoded_in_segments() {
    // The filters of a segment across the change started again at it (their
    // frame count with them): the segment ran past its end, and the film
    // failed at assembly after every segment was encoded.
    let src = mixed_size_title();
    let t = tempfile::tempdir().unwrap();
    let out_dir = t.path().join("out");
    let mut c = chunked_drapto(t.path());
    c.env("DRAPTO_CHUNK_SIZE", "15").env("DRAPTO_VMAF_SUBSAMPLE", "7");
    let o = run(c.args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = out_dir.join("mixed-size-5.mkv");
    assert_eq!(frame_count(&out), 300);
    let size = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height,sample_aspect_ratio"])
        .args(["-of", "csv=p=0"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&size.stdout).trim(), "720,480,8:9");
}
