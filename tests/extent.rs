//! The real length of a rip: a truncated rip fails loudly (or, allowed,
//! encodes what is there and says so), a stream claiming 49 days does not
//! derail a 20 s film, and audio a little longer or shorter than the video
//! is kept as it is. On both paths.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn encode(t: &Path, src: &Path, extra: &[&str]) -> (std::process::Output, Vec<Value>) {
    let o = encode_json(t, src, extra);
    assert!(!stderr(&o).contains("panicked"));
    let ev = events(&o);
    (o, ev)
}

fn warnings(ev: &[Value]) -> Vec<String> {
    ev.iter().filter(|e| e["event"] == "warning").map(|e| e["message"].as_str().unwrap().to_string()).collect()
}

fn duration(path: &Path) -> f64 {
    ffprobe(path)["format"]["duration"].as_str().unwrap().parse().unwrap()
}

/// Where stream `spec`'s last packet ends.
fn stream_end(path: &Path, spec: &str) -> f64 {
    packet_ends(path, spec).into_iter().fold(0.0, f64::max)
}

/// 20 s of film with a stereo track (`audio_secs` long) and two subtitles,
/// the last of which lasts `last_sub_ms` (2³² ms: never ends).
fn film(name: &str, audio_secs: u32, last_sub_ms: Option<u64>) -> PathBuf {
    film_with_first_line_at(name, 1, audio_secs, last_sub_ms)
}

/// [`film`] with its first subtitle at `first_sub_s` seconds.
fn film_with_first_line_at(name: &str, first_sub_s: u32, audio_secs: u32, last_sub_ms: Option<u64>) -> PathBuf {
    let srt = text_file(
        &format!("extent-{first_sub_s}.srt"),
        &format!(
            "1\n00:00:{first_sub_s:02},000 --> 00:00:{:02},000\nHello.\n\n2\n00:00:15,000 --> 00:00:17,000\nBye.\n",
            first_sub_s + 2
        ),
    );
    let a = format!("sine=frequency=440:sample_rate=48000:duration={audio_secs}");
    let bsf = last_sub_ms.map(|ms| format!("setts=duration='if(eq(N,1),{ms}000,DURATION)'"));
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25:duration=20",
        "-f",
        "lavfi",
        "-i",
        &a,
        "-i",
        srt.to_str().unwrap(),
        "-map",
        "0",
        "-map",
        "1",
        "-map",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "25",
        "-c:a",
        "aac",
        "-c:s",
        "srt",
    ];
    if let Some(b) = &bsf {
        args.extend(["-bsf:s", b]);
    }
    fixture(name, &args)
}

fn paths() -> Vec<Vec<&'static str>> {
    let mut p = vec![vec!["--no-chunked"]];
    if has_libvmaf() {
        p.push(vec!["--chunked", "--chunk-size", "8"]);
    }
    p
}

#[test]
fn an_endless_subtitle_is_not_truncation_and_ends_with_the_film() {
    let src = film("endless_sub.mkv", 20, Some(1 << 32));
    assert!(duration(&src) > 4_000_000.0, "the container claims 49 days: {}", duration(&src));
    // Analysis samples the 20 s that are there.
    let t = tempfile::tempdir().unwrap();
    let o = run(drapto(t.path()).args(["analyze", "--json"]).arg(&src));
    assert!(o.status.success(), "{}", stderr(&o));
    let a: Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    let an = &a["analysis"];
    assert!((an["duration"].as_f64().unwrap() - 20.0).abs() < 0.5, "{}", an["duration"]);
    assert_eq!(an["extent"]["truncated"], false);
    assert_eq!(an["extent"]["overlong"][0]["kind"], "subtitle");
    assert!(an["crop"]["sample_times"].as_array().unwrap().iter().all(|t| t.as_f64().unwrap() < 20.0));
    assert_eq!(an["crop"]["dark_samples"], 0, "no sample past the film's end");
    for args in paths() {
        let t = tempfile::tempdir().unwrap();
        let (o, ev) = encode(t.path(), &src, &args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let w = warnings(&ev);
        assert_eq!(w.iter().filter(|w| w.contains("subtitle track 1 claims to last 4294")).count(), 1, "{w:?}");
        assert!(!w.iter().any(|w| w.contains("truncated")), "{w:?}");
        let out = t.path().join("out/endless_sub.mkv");
        assert!((duration(&out) - 20.0).abs() <= 1.0, "{args:?}: {}", duration(&out));
        assert_eq!(frame_count(&out), 500);
        assert_eq!(streams(&ffprobe(&out), "subtitle").len(), 1);
    }
}

/// The same endless subtitle in a rip without tags (no `DURATION` for any
/// track, as a writer other than mkvmerge and ffmpeg leaves it): its end is
/// read from its packets, and it is
/// clamped. Before, nothing explained the container's claim but the font
/// attachment, which was blamed, and the output failed validation.
#[test]
fn an_endless_subtitle_without_statistics_tags_is_found_by_its_packets() {
    let t = tempfile::tempdir().unwrap();
    let srt = text_file("five_minutes.srt", "1\n00:00:01,000 --> 00:05:00,000\nTo the end of the reel\n");
    let src = t.path().join("endless_no_tags.mkv");
    let ok = std::process::Command::new("mkvmerge")
        .args(["-q", "-o"])
        .arg(&src)
        .arg(simple_clip("small.mkv", "320x240", 2))
        .arg(&srt)
        // An attachment, which ffprobe gives the container's duration.
        .arg("--attach-file")
        .arg(&srt)
        .status()
        .unwrap();
    assert!(ok.success());
    let ok = std::process::Command::new("mkvpropedit").arg(&src).args(["--tags", "all:"]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    let (o, ev) = encode(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stdout(&o));
    let w = warnings(&ev);
    assert!(w.iter().any(|w| w.contains("subtitle track 1 claims to last")), "{w:?}");
    assert!(!w.iter().any(|w| w.contains("attachment")), "{w:?}");
    assert!((duration(&t.path().join("out/endless_no_tags.mkv")) - 2.0).abs() <= 1.0);
}

/// mkvmerge tells no first timestamp for a track without a block in the
/// first seconds it reads: a subtitle track whose first line comes at 12 s
/// (and whose endless last line drapto remakes, clamped) keeps its lines
/// where they were. Measured on its own, it was moved 12 s early, and the
/// file failed validation after the encode.
#[test]
fn a_remade_subtitle_track_whose_first_line_comes_late_keeps_its_times() {
    let src = film_with_first_line_at("late_endless_sub.mkv", 12, 20, Some(1 << 32));
    let first_line = |p: &Path| packet_times(p, "s:0")[0];
    assert_eq!(first_line(&src), 12.0);
    let t = tempfile::tempdir().unwrap();
    let (o, _) = encode(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert_eq!(first_line(&t.path().join("out/late_endless_sub.mkv")), 12.0);
}

#[test]
fn a_rip_cut_in_half_fails_unless_allowed_and_then_says_so() {
    let whole = std::fs::read(film("whole.mkv", 20, None)).unwrap();
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("half.mkv");
    std::fs::write(&src, &whole[..whole.len() / 2]).unwrap();
    let (o, ev) = encode(t.path(), &src, &["--no-chunked"]);
    assert_eq!(o.status.code(), Some(1));
    let failed = ev.iter().find(|e| e["event"] == "file_failed").expect("file_failed");
    let msg = failed["error"].as_str().unwrap();
    assert!(msg.contains("half.mkv: the rip ends at") && msg.contains("of 20.0 s"), "{msg}");
    assert!(!t.path().join("out/half.mkv").exists());
    for args in paths() {
        let t2 = tempfile::tempdir().unwrap();
        let mut a = args.clone();
        a.push("--allow-truncated");
        let (o, ev) = encode(t2.path(), &src, &a);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(warnings(&ev).iter().any(|w| w.starts_with("the rip is truncated: it ends at")), "{:?}", warnings(&ev));
        let done = ev.iter().find(|e| e["event"] == "file_complete").unwrap();
        let tr = &done["summary"]["truncated"];
        assert!((tr["promised"].as_f64().unwrap() - 20.0).abs() < 0.1, "{tr}");
        let ends = tr["ends_at"].as_f64().unwrap();
        assert!(ends > 5.0 && ends < 15.0, "{tr}");
        let out = t2.path().join("out/half.mkv");
        assert!((duration(&out) - ends).abs() <= 1.0, "{args:?}: {} vs {ends}", duration(&out));
        let n = frame_count(&out) as f64;
        assert!((n - ends * 25.0).abs() <= 25.0, "{n} frames for {ends} s");
    }
    // Ripped again, whole, as drapto advised: the encode of the half is
    // replaced (another size and length, but the length the half said).
    let t3 = tempfile::tempdir().unwrap();
    let rip = t3.path().join("half.mkv");
    std::fs::copy(&src, &rip).unwrap();
    let (o, _) = encode(t3.path(), &rip, &["--no-chunked", "--allow-truncated"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(&rip, &whole).unwrap();
    let (o, _) = encode(t3.path(), &rip, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!((duration(&t3.path().join("out/half.mkv")) - 20.0).abs() <= 0.5);
}

#[test]
fn a_rip_cut_a_little_short_mid_element_fails_before_any_encode() {
    // Cut at 93% of its bytes: it ends mid-cluster, 1.3 s short of its
    // 20 s, within the 2 s slack a whole file's rounding is allowed.
    let whole = std::fs::read(film("whole.mkv", 20, None)).unwrap();
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("short.mkv");
    std::fs::write(&src, &whole[..whole.len() * 93 / 100]).unwrap();
    let (o, ev) = encode(t.path(), &src, &["--no-chunked"]);
    assert_eq!(o.status.code(), Some(1));
    let msg = ev.iter().find(|e| e["event"] == "file_failed").unwrap()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("short.mkv: the rip ends at 18.") && msg.contains("of 20.0 s (truncated)"), "{msg}");
    assert!(!ev.iter().any(|e| e["event"] == "stage_started" && e["stage"]["kind"] != "analysis"), "nothing encoded");
    assert_eq!(
        std::fs::read_dir(t.path().join("out")).map(|d| d.count()).unwrap_or(0),
        0,
        "nothing in the output folder"
    );
}

#[test]
fn audio_longer_or_shorter_than_the_video_is_kept_as_it_is() {
    for (name, audio) in [("audio_longer.mkv", 23), ("audio_shorter.mkv", 17)] {
        let src = film(name, audio, None);
        let t = tempfile::tempdir().unwrap();
        let (o, ev) = encode(t.path(), &src, &["--no-chunked"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(!warnings(&ev).iter().any(|w| w.contains("truncated") || w.contains("claims")), "{:?}", warnings(&ev));
        let out = t.path().join("out").join(name);
        assert_eq!(frame_count(&out), 500);
        let (a_src, a_out) = (stream_end(&src, "a:0"), stream_end(&out, "a:0"));
        assert!((a_src - audio as f64).abs() < 0.2 && (a_out - a_src).abs() < 0.1, "{name}: audio {a_src} → {a_out}");
        assert!((stream_end(&out, "v:0") - 20.0).abs() < 0.1);
    }
}

#[test]
fn a_clean_rip_has_nothing_to_say() {
    let src = film("clean_extent.mkv", 20, None);
    let t = tempfile::tempdir().unwrap();
    let (o, ev) = encode(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(warnings(&ev).is_empty(), "{:?}", warnings(&ev));
    let out = t.path().join("out/clean_extent.mkv");
    assert!((duration(&out) - duration(&src)).abs() <= 1.0);
    let done = ev.iter().find(|e| e["event"] == "file_complete").unwrap();
    assert_eq!(done["summary"]["truncated"], Value::Null);
}

/// 2 s of 25 fps film whose last frame stays on screen for 5 s (a still
/// under the last of the music; mkvmerge's v1 timestamps give it 0.2 fps),
/// with 7 s of audio.
fn held_last_frame() -> PathBuf {
    let dir = fixtures_dir();
    let held = dir.join("held_last_frame.mkv");
    if held.exists() {
        return held;
    }
    let video = fixture("held_video.mkv", &["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2"]);
    let audio = fixture("held_audio.mka", &["-f", "lavfi", "-i", "sine=frequency=440:duration=7", "-c:a", "aac"]);
    let stamps = text_file("held_timestamps.txt", "# timestamp format v1\nassume 25\n49,49,0.2\n");
    let tmp = scratch_path("held_last_frame", "mkv");
    let mut ts = std::ffi::OsString::from("0:");
    ts.push(&stamps);
    let ok = std::process::Command::new("mkvmerge")
        .args(["-q", "-o"])
        .arg(&tmp)
        .arg("--timestamps")
        .arg(ts)
        .arg(&video)
        .arg(&audio)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::rename(&tmp, &held).unwrap();
    held
}

#[test]
fn a_held_last_frame_is_held_as_long_in_the_output() {
    let src = held_last_frame();
    assert!((stream_end(&src, "v:0") - 6.96).abs() < 0.01, "the source's last frame ends at 6.96 s");
    for args in paths() {
        let t = tempfile::tempdir().unwrap();
        let (o, _) = encode(t.path(), &src, &args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let out = t.path().join("out/held_last_frame.mkv");
        assert_eq!(frame_count(&out), 50, "{args:?}");
        let end = stream_end(&out, "v:0");
        assert!((end - 6.96).abs() < 0.01, "{args:?}: the video ends at {end} s, the rip's at 6.96 s");
        // Finished: a rerun skips it (before, it failed validation each time).
        let (o, ev) = encode(t.path(), &src, &args);
        assert!(o.status.success() && ev.iter().any(|e| e["event"] == "file_skipped"), "{args:?}");
    }
}

/// A rip whose tracks all start 1.5 s into its clock (a remux that kept a
/// broadcast's or a disc's clock): the output keeps that start, and its
/// video's end is counted from it, as the rip's is. Before, validation
/// compared the output's end on its clock (5.5 s) with the rip's counted
/// from its start (4.0 s) and threw every such encode away.
#[test]
fn a_rip_whose_clock_starts_late_validates_and_is_then_finished() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("late_clock.mkv");
    let ok = std::process::Command::new("mkvmerge")
        .args(["-q", "-o"])
        .arg(&src)
        .args(["--sync", "0:1500", "--sync", "1:1500"])
        .arg(simple_clip("small4.mkv", "320x240", 4))
        .status()
        .unwrap();
    assert!(ok.success());
    let first = packet_ends(&src, "v:0").into_iter().fold(f64::MAX, f64::min);
    assert!(first > 1.5, "the rip's first frame ends at {first} s");
    for args in paths() {
        let t = tempfile::tempdir().unwrap();
        let (o, _) = encode(t.path(), &src, &args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let out = t.path().join("out/late_clock.mkv");
        let (src_end, out_end) = (stream_end(&src, "v:0"), stream_end(&out, "v:0"));
        assert!((src_end - out_end).abs() < 0.05, "{args:?}: the video ends at {out_end} s, the rip's at {src_end} s");
        let (o, ev) = encode(t.path(), &src, &args);
        assert!(o.status.success() && ev.iter().any(|e| e["event"] == "file_skipped"), "{args:?}: finished");
    }
}

/// The time of the first video frame a decoder shows, and of the first
/// audio packet, of `path`.
fn first_picture_and_sound(path: &Path) -> (f64, f64) {
    let first = |args: &[&str]| -> f64 {
        let o = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-of", "csv=p=0"])
            .args(args)
            .arg(path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split(',').next()?.trim().parse::<f64>().ok())
            .fold(f64::MAX, f64::min)
    };
    let video = first(&["-select_streams", "v:0", "-read_intervals", "%+2", "-show_entries", "frame=pts_time"]);
    let audio = first(&["-select_streams", "a:0", "-read_intervals", "%+2", "-show_entries", "packet=pts_time"]);
    (video, audio)
}

/// The second part of a title split by mkvmerge starts on an open GOP:
/// its leading B-frames (stored after the keyframe, shown before it) have
/// lost their references and no decoder shows them, so the picture starts
/// 125 ms after the track's first block. The encode starts at the keyframe
/// and must be placed there: before, it was placed at the first block, the
/// picture 125 ms ahead of the sound, and validation did not see it.
#[test]
fn a_title_split_at_an_open_gop_keeps_its_picture_in_step_with_the_sound() {
    let full = fixture(
        "open_gop_x264.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=24:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:duration=6",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-x264-params",
            "open-gop=1:keyint=48:min-keyint=48:bframes=3:b-pyramid=0:scenecut=0",
            "-c:a",
            "aac",
        ],
    );
    let t = tempfile::tempdir().unwrap();
    let split = t.path().join("episode.mkv");
    let ok = std::process::Command::new("mkvmerge")
        .args(["-q", "-o"])
        .arg(&split)
        .args(["--split", "timestamps:2s"])
        .arg(&full)
        .status()
        .unwrap();
    assert!(ok.code().is_some_and(|c| c <= 1));
    let src = t.path().join("episode-002.mkv");
    let (v, a) = first_picture_and_sound(&src);
    assert!(v > 0.1 && v < 1.0 && a < 1.0, "the split's first shown picture is at {v} s, its sound at {a} s");
    for args in paths() {
        let t = tempfile::tempdir().unwrap();
        let (o, _) = encode(t.path(), &src, &args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let (ov, oa) = first_picture_and_sound(&t.path().join("out/episode-002.mkv"));
        assert!(ov < 1.0 && oa < 1.0, "{args:?}: picture at {ov} s, sound at {oa} s");
        let (was, is) = (v - a, ov - oa);
        assert!((was - is).abs() < 0.03, "{args:?}: picture minus sound was {was:.3} s, is {is:.3} s");
    }
}

/// The held last frame is put in after the video is recorded as finished:
/// a run stopped there (here: the remux that holds it fails) resumes with
/// the video reused. Before, the finished video was encoded again.
#[test]
fn a_run_stopped_while_holding_the_last_frame_reuses_its_video() {
    let src = held_last_frame();
    let t = tempfile::tempdir().unwrap();
    let wrapper = t.path().join("mkvmerge-fails-the-hold.sh");
    let text =
        "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in *video-held*) exit 2;; esac; done\nexec mkvmerge \"$@\"\n";
    script(&wrapper, text);
    let o = run(drapto(t.path())
        .env("DRAPTO_MKVMERGE", &wrapper)
        .args(["encode", "--no-chunked", "--preset", "12", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("out")));
    assert_eq!(o.status.code(), Some(1), "the hold fails");
    let (o, ev) = encode(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let started: Vec<&str> =
        ev.iter().filter(|e| e["event"] == "stage_started").filter_map(|e| e["stage"]["kind"].as_str()).collect();
    assert!(!started.contains(&"video"), "the finished video is reused: {started:?}");
    let end = stream_end(&t.path().join("out/held_last_frame.mkv"), "v:0");
    assert!((end - 6.96).abs() < 0.01, "the video ends at {end} s");
}

/// A held last frame in a rip whose video starts 1.5 s after its sound:
/// the chunked path's video starts at zero, and is held all the same.
#[test]
fn a_held_last_frame_of_a_video_starting_late_is_held_on_both_paths() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("held_late.mkv");
    let ok = std::process::Command::new("mkvmerge")
        .args(["-q", "-o"])
        .arg(&src)
        .args(["--sync", "0:1500"])
        .arg(held_last_frame())
        .status()
        .unwrap();
    assert!(ok.success());
    let want = stream_end(&src, "v:0");
    assert!((want - 8.46).abs() < 0.01, "the rip's video ends at {want} s");
    for args in paths() {
        let t = tempfile::tempdir().unwrap();
        let (o, _) = encode(t.path(), &src, &args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let end = stream_end(&t.path().join("out/held_late.mkv"), "v:0");
        assert!((end - want).abs() < 0.02, "{args:?}: the video ends at {end} s, the rip's at {want} s");
    }
}

/// A healthy rip ffmpeg wrote with its clock starting at 10 s (a `-copyts`
/// remux of a broadcast or a disc's transport stream): ffmpeg's Duration
/// and DURATION tags are end times on that clock, not lengths. Read as
/// lengths, the rip was refused as truncated (4 s of 14 s), and one
/// starting at 1.5 s was encoded in full and failed validation.
#[test]
fn a_rip_ffmpeg_wrote_starting_late_is_no_truncated_rip() {
    let src = fixture(
        "lavf_offset10.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=25:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-output_ts_offset",
            "10",
        ],
    );
    assert!(ffprobe(&src)["format"]["start_time"].as_str().unwrap().parse::<f64>().unwrap() > 9.9);
    for args in paths() {
        let t = tempfile::tempdir().unwrap();
        let (o, ev) = encode(t.path(), &src, &args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(!warnings(&ev).iter().any(|w| w.contains("truncated")), "{args:?}: {:?}", warnings(&ev));
        assert_eq!(frame_count(&t.path().join("out/lavf_offset10.mkv")), 75, "{args:?}");
    }
}

/// A copy cut off in its first kilobytes (headers, no frame): truncated,
/// said before any encode. Before, its audio tracks were left out as empty
/// and the encode failed on an unrelated ffmpeg line.
#[test]
fn a_rip_cut_off_in_its_headers_is_truncated() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("cut.mkv");
    let whole = std::fs::read(simple_clip("small4.mkv", "320x240", 4)).unwrap();
    std::fs::write(&src, &whole[..5000]).unwrap();
    let (o, ev) = encode(t.path(), &src, &["--no-chunked"]);
    assert_eq!(o.status.code(), Some(1));
    let failed = ev.iter().find(|e| e["event"] == "file_failed").expect("a failure");
    let e = failed["error"].as_str().unwrap();
    assert!(e.contains("cut.mkv") && e.contains("truncated"), "{e}");
    assert!(!ev.iter().any(|e| e["event"] == "stage_started" && e["stage"]["kind"] == "video"), "before any encode");
}

/// A rip cut mid-cluster whose lossless audio track is muxed ahead of its
/// video: the FLAC track reaches near the claimed length while the video
/// stops half a second and more short. Truncated, as the same cut without
/// the FLAC track is; it was encoded as whole, without a word.
#[test]
fn a_cut_rip_is_truncated_when_only_its_lossless_audio_reaches_the_end() {
    let av = fixture(
        "extent-av10.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=10",
            "-f",
            "lavfi",
            "-i",
            "sine=f=1000:d=10:r=48000",
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-c:a",
            "ac3",
        ],
    );
    let flac = fixture(
        "extent-noise10.mka",
        &["-f", "lavfi", "-i", "anoisesrc=d=10:r=48000:a=0.5", "-ac", "2", "-c:a", "flac"],
    );
    let whole = std::fs::read(mkvmerge_fixture("extent-flac-ahead.mkv", &[av.as_os_str(), flac.as_os_str()])).unwrap();
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("cut.mkv");
    std::fs::write(&src, &whole[..whole.len() * 95 / 100]).unwrap();
    assert!(stream_end(&src, "v:0") < 9.5 && stream_end(&src, "a:1") > stream_end(&src, "v:0"), "the shape");
    let (o, ev) = encode(t.path(), &src, &["--no-chunked"]);
    assert_eq!(o.status.code(), Some(1));
    let failed = ev.iter().find(|e| e["event"] == "file_failed").expect("a failure");
    let e = failed["error"].as_str().unwrap();
    assert!(e.contains("cut.mkv") && e.contains("truncated"), "{e}");
}

/// Subtitle lines past the film's end (an SRT made for a longer cut; a
/// track synced far too late): their durations clamped, the lines that
/// start after the film left out, and the output as long as the film. The
/// output kept them, lasted as long as they did, and failed validation
/// after the whole encode, on every run; a track whose lines all start
/// late was not even taken for overlong (mkvmerge's `DURATION` is the
/// span of its lines).
#[test]
fn subtitle_lines_past_the_film_are_left_out_and_the_output_ends_with_it() {
    let clip = simple_clip("extent-late-lines.mkv", "320x240", 3);
    // Its last line never ends: its claim alone explains the file's.
    let longer_cut = text_file(
        "extent-longer-cut-endless.srt",
        "1\n00:00:00,500 --> 00:00:01,500\nHello.\n\n2\n00:01:10,000 --> 10:00:00,000\nFrom the longer cut.\n",
    );
    let synced_late = text_file("extent-synced-late.srt", "1\n00:00:00,500 --> 00:00:01,500\nToo late.\n");
    let args: Vec<std::ffi::OsString> =
        vec![clip.into(), longer_cut.into(), "--sync".into(), "0:100000".into(), synced_late.into()];
    let src = mkvmerge_fixture("extent-late-lines-endless.mkv", &args);
    assert!(duration(&src) > 100.0, "the rip lasts as long as its last line: {}", duration(&src));
    for args in paths() {
        let t = tempfile::tempdir().unwrap();
        let (o, ev) = encode(t.path(), &src, &args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let w = warnings(&ev);
        for n in [1, 2] {
            let said = format!("subtitle track {n} claims to last");
            assert!(
                w.iter().any(|w| w.starts_with(&said) && w.contains("any line starting after it is left out")),
                "{w:?}"
            );
        }
        let out = t.path().join("out/extent-late-lines-endless.mkv");
        assert!((duration(&out) - 3.0).abs() <= 1.0, "{args:?}: {}", duration(&out));
        assert_eq!(packet_ends(&out, "s:0"), [1.5], "{args:?}: the line within the film kept, the later one left out");
        assert!(packet_ends(&out, "s:1").is_empty(), "{args:?}");
    }
}

/// An endless WebVTT line: ffmpeg cannot copy WebVTT from Matroska, so the
/// track is copied as it is, said so, and the output claims its length.
/// Clamped through ffmpeg, it failed the mux after the whole encode, on
/// every run, and its failures paused the batch as if the setup were broken.
#[test]
fn an_endless_webvtt_line_is_copied_as_it_is() {
    let clip = simple_clip("extent-endless-vtt.mkv", "320x240", 3);
    let vtt = text_file("extent-endless.vtt", "WEBVTT\n\n00:00:00.500 --> 10:00:00.000\nForever.\n");
    let src = mkvmerge_fixture("extent-endless-vtt.mkv", &[clip, vtt]);
    let t = tempfile::tempdir().unwrap();
    let (o, ev) = encode(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let w = warnings(&ev);
    assert!(w.iter().any(|w| w.contains("drapto cannot clamp S_TEXT/WEBVTT subtitles, so they are copied")), "{w:?}");
    let out = t.path().join("out/extent-endless-vtt.mkv");
    assert_eq!(packet_ends(&out, "s:0"), packet_ends(&src, "s:0"));
    assert!((duration(&out) - 36000.0).abs() <= 1.0, "{}", duration(&out));
}

/// A rip cut short inside its closing tags (the last bytes of the file,
/// after every frame): mkvextract crashed on it ("terminate called after
/// throwing an instance of 'std::runtime_error'"), on every rerun and even
/// with --allow-truncated, and the crash counted as a tool failing. Now it
/// is named a rip cut short before any encode, and --allow-truncated
/// encodes it with what can be read of its tags.
#[test]
fn a_rip_cut_short_in_its_closing_tags_says_so_and_is_encoded_when_allowed() {
    let long = "A".repeat(300);
    let tags = text_file(
        "extent-tags.xml",
        &format!(
            "<?xml version=\"1.0\"?>\n<Tags><Tag><Targets/><Simple><Name>COMMENT</Name><String>{long}</String></Simple><Simple><Name>LAST</Name><String>the last words of the file</String></Simple></Tag></Tags>\n"
        ),
    );
    let clip = simple_clip("extent-tags-src.mkv", "320x240", 3);
    let whole = std::fs::read(mkvmerge_fixture(
        "extent-tags.mkv",
        &[std::ffi::OsStr::new("--global-tags"), tags.as_os_str(), clip.as_os_str()],
    ))
    .unwrap();
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("cut.mkv");
    // Inside the tags; where they start (the file ends between elements,
    // its Segment goes on); a little before them, in the last cluster or
    // the index (within the slack a whole film's end is allowed).
    let tags_at = whole.windows(4).rposition(|w| w == [0x12, 0x54, 0xC3, 0x67]).expect("tags at the end");
    for (cut, said) in
        [(whole.len() - 60, "inside its tags"), (tags_at, "before its tags"), (tags_at - 30, "before its tags")]
    {
        std::fs::write(&src, &whole[..cut]).unwrap();
        let (o, ev) = encode(t.path(), &src, &["--no-chunked"]);
        assert_eq!(o.status.code(), Some(1), "{said}");
        let failed = ev.iter().find(|e| e["event"] == "file_failed").expect("a failure");
        let e = failed["error"].as_str().unwrap();
        assert!(e.contains("cut.mkv: the rip is cut short") && e.contains(said), "{e}");
        assert!(e.contains("--allow-truncated") && !e.contains("mkvextract"), "{e}");
        assert!(
            !ev.iter().any(|e| e["event"] == "stage_started" && e["stage"]["kind"] != "analysis"),
            "nothing encoded"
        );
        assert_eq!(std::fs::read_dir(t.path().join("out")).map(|d| d.count()).unwrap_or(0), 0);
    }
    std::fs::write(&src, &whole[..whole.len() - 60]).unwrap();

    let t2 = tempfile::tempdir().unwrap();
    let (o, ev) = encode(t2.path(), &src, &["--no-chunked", "--allow-truncated"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        warnings(&ev).iter().any(|w| w.starts_with("the rip is cut short") && w.contains("its tags cannot be read")),
        "{:?}",
        warnings(&ev)
    );
    let out = t2.path().join("out/cut.mkv");
    assert_eq!(frame_count(&out), 75);
    // The whole rip is no rip cut short.
    let t3 = tempfile::tempdir().unwrap();
    let rip = t3.path().join("whole.mkv");
    std::fs::write(&rip, &whole).unwrap();
    let (o, ev) = encode(t3.path(), &rip, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!warnings(&ev).iter().any(|w| w.contains("cut short")), "{:?}", warnings(&ev));
    let text = String::from_utf8(
        std::process::Command::new("mkvextract")
            .arg(t3.path().join("out/whole.mkv"))
            .args(["tags", "-"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(text.contains("the last words of the file"), "{text}");
    // ffmpeg writes its index last, after its tags: cut there, the rip has
    // lost nothing (the mux writes a new index), and is encoded.
    let ffmpeg_written = std::fs::read(&clip).unwrap();
    let t4 = tempfile::tempdir().unwrap();
    let rip = t4.path().join("cues_cut.mkv");
    std::fs::write(&rip, &ffmpeg_written[..ffmpeg_written.len() - 10]).unwrap();
    let (o, ev) = encode(t4.path(), &rip, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!warnings(&ev).iter().any(|w| w.contains("cut short") || w.contains("truncated")), "{:?}", warnings(&ev));
}

/// A whole rip that claims no length (ffmpeg writing Matroska live or to a
/// pipe: no Duration, no DURATION tags) is encoded, its length read from
/// its packets, and says so. Before, it was refused as "has no duration
/// (truncated or corrupt)", with --allow-truncated too.
#[test]
fn a_rip_that_claims_no_length_is_encoded_by_its_packets() {
    let src = fixture(
        "extent-live.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=4",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-c:a",
            "flac",
            "-live",
            "1",
        ],
    );
    let probe = ffprobe(&src);
    assert!(probe["format"]["duration"].is_null(), "the test needs a file without a length: {}", probe["format"]);
    for args in paths() {
        let t = tempfile::tempdir().unwrap();
        let (o, ev) = encode(t.path(), &src, &args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(
            warnings(&ev).iter().any(|w| w.starts_with("the file claims no length") && w.contains("4.0 s")),
            "{:?}",
            warnings(&ev)
        );
        let out = t.path().join("out/extent-live.mkv");
        assert_eq!(frame_count(&out), 100, "{args:?}");
        assert!((duration(&out) - 4.0).abs() < 0.1, "{args:?}: {}", duration(&out));
    }
    // Cut short mid-cluster, it says so (ffprobe finds it ends in the
    // middle of an element): refused, or encoded as it is when allowed.
    let whole = std::fs::read(&src).unwrap();
    let t = tempfile::tempdir().unwrap();
    let cut = t.path().join("live_cut.mkv");
    std::fs::write(&cut, &whole[..whole.len() * 85 / 100]).unwrap();
    let (o, ev) = encode(t.path(), &cut, &["--no-chunked"]);
    assert_eq!(o.status.code(), Some(1));
    let e = ev.iter().find(|e| e["event"] == "file_failed").expect("a failure")["error"].as_str().unwrap().to_string();
    assert!(e.contains("live_cut.mkv: the file claims no length") && e.contains("cut short"), "{e}");
    let (o, ev) = encode(t.path(), &cut, &["--no-chunked", "--allow-truncated"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(warnings(&ev).iter().any(|w| w.contains("cut short, encoding what is there")), "{:?}", warnings(&ev));
}
