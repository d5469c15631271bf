//! Interlacing and telecine on real film (Megamind, 23.976 fps, from
//! scripts/fetch-footage.sh) made into the sources a DVD shelf holds: hard
//! telecine, interlaced video, PAL progressive coded as interlaced, a
//! hybrid; what `analyze` says of each and what both encode paths make of
//! the telecined one.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn analyze_with(src: &Path, extra: &[&str]) -> Value {
    let t = tempfile::tempdir().unwrap();
    let o = run(drapto(t.path()).args(["analyze", "--json"]).args(extra).arg(src));
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap()
}

fn analyze(src: &Path) -> Value {
    analyze_with(src, &[])
}

/// Interlaced MPEG-2 at DVD size, 16:9 anamorphic, from the film through `vf`.
fn dvd(name: &str, vf: &str, extra: &[&str]) -> PathBuf {
    let film = footage("Megamind.avi");
    let srt = text_file(
        "telecine.srt",
        "1\n00:00:01,000 --> 00:00:03,000\nHello.\n\n2\n00:00:07,000 --> 00:00:09,000\nBye.\n",
    );
    let mut args = vec!["-i", film.to_str().unwrap(), "-i", srt.to_str().unwrap()];
    args.extend(extra);
    args.extend(["-map", "0:v:0", "-map", "0:a:0", "-map", "1:0", "-vf", vf]);
    args.extend(["-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-g", "15", "-bf", "2", "-b:v", "8M"]);
    args.extend(["-c:a", "ac3", "-b:a", "192k", "-c:s", "srt"]);
    fixture(name, &args)
}

/// Hard telecine: the film through 3:2 pulldown into 29.97 fps fields.
fn hard_telecine() -> PathBuf {
    dvd("hard_telecine.mkv", "scale=720:480,setsar=32/27,telecine=pattern=23", &[])
}

fn interlace(a: &Value) -> &Value {
    &a["analysis"]["interlace"]
}

/// Frames mpdecimate keeps: near-duplicates are what a 29.97 encode of
/// film is full of (one in five).
fn mpdecimate_kept(path: &Path) -> u64 {
    ffmpeg_frames(path, "mpdecimate")
}

/// Frames of `path`'s video through `vf`, as counted by ffmpeg.
fn ffmpeg_frames(path: &Path, vf: &str) -> u64 {
    let out = Command::new(ffmpeg())
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-vf", vf, "-f", "framecrc", "-"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#')).count() as u64
}

/// The video's frame times in seconds, in order.
fn frame_times(path: &Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    let mut t: Vec<f64> = String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect();
    t.sort_by(f64::total_cmp);
    t
}

/// idet's share of frames it calls interlaced (multi-frame detection).
fn idet_interlaced_share(path: &Path) -> f64 {
    let out = Command::new(ffmpeg())
        .args(["-hide_banner", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-vf", "idet", "-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().rev().find(|l| l.contains("Multi frame detection")).unwrap().to_string();
    let n = |k: &str| -> f64 { line.split(k).nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap() };
    let (i, p) = (n("TFF:") + n("BFF:"), n("Progressive:"));
    i / (i + p)
}

/// Everything an inverse-telecined output of `src` must be.
fn assert_film(src: &Path, out: &Path) {
    let p = ffprobe(out);
    let v = streams(&p, "video")[0];
    assert_eq!(v["r_frame_rate"], "24000/1001", "{v}");
    assert_eq!(v["display_aspect_ratio"], "16:9");
    let (src_frames, frames) = (frame_count(src) as f64, frame_count(out) as f64);
    assert!((frames / (src_frames * 0.8) - 1.0).abs() <= 0.01, "{frames} frames from {src_frames}");
    let kept = mpdecimate_kept(out) as f64 / frames;
    assert!(kept >= 0.97, "mpdecimate keeps {:.1}% of the frames: duplicates left", kept * 100.0);
    // Every frame at its film time, on one film clock (both paths write
    // milliseconds: half of one off at most, around wherever that clock
    // starts: a video starting at 0.5 s has its first frame rounded too).
    let times = frame_times(out);
    let off: Vec<f64> = times.iter().enumerate().map(|(i, t)| t - times[0] - i as f64 * 1001.0 / 24000.0).collect();
    let (low, high) = off.iter().fold((f64::MAX, f64::MIN), |(l, h), o| (l.min(*o), h.max(*o)));
    let worst = (high - low) / 2.0;
    assert!(worst <= 0.000_51, "a frame {:.2} ms from its film time", worst * 1000.0);
    let combed = idet_interlaced_share(out);
    assert!(combed < 0.15, "idet calls {:.0}% of the output interlaced", combed * 100.0);
    let d = |p: &Value| p["format"]["duration"].as_str().unwrap().parse::<f64>().unwrap();
    assert!((d(&p) - d(&ffprobe(src))).abs() <= 1.0);
    assert_eq!(streams(&p, "subtitle").len(), 1, "subtitles kept");
    assert_eq!(streams(&p, "audio")[0]["codec_name"], "opus");
}

fn encode(src: &Path, t: &Path, args: &[&str]) -> PathBuf {
    let out_dir = t.join("out");
    let o = run(drapto(t).arg("encode").arg("-i").arg(src).arg("-o").arg(&out_dir).args(["--preset", "12"]).args(args));
    assert!(o.status.success(), "{}", stderr(&o));
    out_dir.join(src.file_name().unwrap())
}

#[test]
fn hard_telecined_film_is_detected_with_its_evidence() {
    let src = hard_telecine();
    // What a deinterlacer would leave: one near-duplicate in five.
    let deinterlaced = ffmpeg_frames(&src, "bwdif=mode=send_frame:parity=tff:deint=all,mpdecimate");
    assert!(deinterlaced as f64 / (frame_count(&src) as f64) < 0.85, "{deinterlaced}");
    let a = analyze(&src);
    let i = interlace(&a);
    assert_eq!((i["content"].as_str(), i["treatment"].as_str()), (Some("hard_telecine"), Some("ivtc")), "{i}");
    assert!(i["repeats"]["top"].as_u64().unwrap() > 10 && i["repeats"]["bottom"].as_u64().unwrap() > 10, "{i}");
    assert!(i["reason"].as_str().unwrap().contains("3:2 pulldown in"), "{i}");
    assert_eq!(a["plan"]["video"]["decimation_cycle"], 5);
    assert!(a["plan"]["video"]["filters"][0].as_str().unwrap().starts_with("fieldmatch="), "{}", a["plan"]["video"]);
    // The human view says it too.
    let t = tempfile::tempdir().unwrap();
    let o = run(drapto(t.path()).arg("analyze").arg(&src));
    assert!(stdout(&o).contains("hard telecine (3:2 pulldown), inverse telecine to 23.976 fps"), "{}", stdout(&o));
}

#[test]
fn film_whose_container_gives_a_field_duration_per_frame_is_still_film() {
    // Interlaced video is often muxed with a field's duration (16.7 ms) as
    // its frames' default duration: the container claims 59.94 fps while
    // the frames are 33.4 ms apart. The telecine went unrecognised and the
    // film came out deinterlaced at 29.97 with a near-duplicate in every
    // five (and inverse telecine, had it been chosen, stamped 47.95 fps).
    let src = made_once("hard_telecine_field_duration.mkv", |tmp| {
        std::fs::copy(hard_telecine(), tmp).unwrap();
        let o = std::process::Command::new("mkvpropedit")
            .arg(tmp)
            .args(["--edit", "track:v1", "--set", "default-duration=16683333"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    });
    let a = analyze(&src);
    assert_eq!(interlace(&a)["treatment"], "ivtc", "{}", interlace(&a));
    let warned =
        a["analysis"]["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("claims 59.940 fps"));
    assert!(warned, "{}", a["analysis"]["warnings"]);
    let t = tempfile::tempdir().unwrap();
    let out = encode(&src, t.path(), &["--no-chunked"]);
    assert_film(&src, &out);
}

/// A variable frame rate whose most common frame duration (the one
/// mkvmerge gives as the track's) is half its opening's: 130 frames 40 ms
/// apart, then 187 frames 20 ms apart. It was taken for a field's duration
/// per frame and resampled to 25 fps: every other frame of its 50 fps part
/// dropped, and validated.
#[test]
fn a_variable_rate_whose_opening_is_slower_keeps_every_frame() {
    let src = made_once("vfr_slow_opening.mkv", |tmp| {
        let es = fixture(
            "vfr_slow_opening_cfr.mkv",
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=s=320x180:r=50",
                "-frames:v",
                "317",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
            ],
        );
        let times: String =
            (0..130).map(|i| i * 40).chain((0..187).map(|i| 5200 + i * 20)).map(|t| format!("{t}\n")).collect();
        let tc = scratch_path("vfr_slow_opening", "txt");
        std::fs::write(&tc, format!("# timestamp format v2\n{times}")).unwrap();
        let o = Command::new("mkvmerge")
            .arg("-q")
            .arg("-o")
            .arg(tmp)
            .arg("--timestamps")
            .arg(format!("0:{}", tc.display()))
            .arg(&es)
            .output()
            .unwrap();
        assert!(o.status.code().unwrap_or(9) <= 1, "{}", String::from_utf8_lossy(&o.stdout));
        std::fs::remove_file(&tc).unwrap();
    });
    let a = analyze(&src);
    let warnings = a["analysis"]["warnings"].to_string();
    assert!(!warnings.contains("a field's duration"), "{warnings}");
    let t = tempfile::tempdir().unwrap();
    let out = encode(&src, t.path(), &["--no-chunked"]);
    assert_eq!(frame_count(&out), 317);
}

#[test]
fn hard_telecine_comes_out_as_film_on_the_standard_path() {
    let src = hard_telecine();
    let t = tempfile::tempdir().unwrap();
    let out = encode(&src, t.path(), &["--no-chunked"]);
    assert_film(&src, &out);
}

#[test]
fn hard_telecine_comes_out_as_film_on_the_chunked_path_with_the_standard_frames() {
    if !has_libvmaf() {
        eprintln!("skipped: ffmpeg without libvmaf");
        return;
    }
    let src = hard_telecine();
    let t = tempfile::tempdir().unwrap();
    let out = encode(&src, t.path(), &["--chunked", "--chunk-size", "4"]);
    assert_film(&src, &out);
    let ev = {
        let t2 = tempfile::tempdir().unwrap();
        let o = run(drapto(t2.path())
            .args(["encode", "--json", "--no-chunked", "--preset", "12", "-i"])
            .arg(&src)
            .arg("-o")
            .arg(t2.path().join("out")));
        assert!(o.status.success());
        frame_count(&t2.path().join("out").join(src.file_name().unwrap()))
    };
    assert_eq!(frame_count(&out), ev, "the chunked path gives the standard path's frames");
}

#[test]
fn hard_telecine_starting_after_its_sound_with_a_held_last_frame_is_film() {
    // A remuxed DVD rip: the video starts half a second after the sound
    // (and the subtitles), and its last picture is held for 3 s. The
    // frames check counted the video's end on the file's clock as frames
    // (the late start and the held picture too): a right encode failed
    // validation on every run.
    let src = made_once("hard_telecine_late_held.mkv", |tmp| {
        let telecined = hard_telecine();
        let last = frame_count(&telecined) - 1;
        let held = text_file(
            "held_last_frame.txt",
            &format!("# timestamp format v1\nassume 29.97002997\n{last},{last},0.3333\n"),
        );
        // (mkvmerge takes a timestamps file instead of --sync: two muxes.)
        let video = scratch_path("hard_telecine_held", "mkv");
        let mux = |args: &[&std::ffi::OsStr]| {
            let o = Command::new("mkvmerge").arg("-q").args(args).output().unwrap();
            assert!(o.status.code().unwrap_or(2) <= 1, "{}", String::from_utf8_lossy(&o.stdout));
        };
        let stamps = format!("0:{}", held.display());
        mux(&[
            "-o".as_ref(),
            video.as_ref(),
            "--timestamps".as_ref(),
            stamps.as_ref(),
            "-A".as_ref(),
            "-S".as_ref(),
            telecined.as_ref(),
        ]);
        mux(&[
            "-o".as_ref(),
            tmp.as_ref(),
            "--sync".as_ref(),
            "0:500".as_ref(),
            video.as_ref(),
            "-D".as_ref(),
            telecined.as_ref(),
        ]);
        let _ = std::fs::remove_file(video);
    });
    let p = ffprobe(&src);
    let starts: Vec<f64> =
        p["streams"].as_array().unwrap().iter().map(|s| s["start_time"].as_str().unwrap().parse().unwrap()).collect();
    assert!(starts[0] - starts[1] > 0.4, "the video starts late: {starts:?}");
    let t = tempfile::tempdir().unwrap();
    let out = encode(&src, t.path(), &["--no-chunked"]);
    assert_film(&src, &out);
    let first = |p: &Value| -> f64 { streams(p, "video")[0]["start_time"].as_str().unwrap().parse().unwrap() };
    assert!((first(&ffprobe(&out)) - first(&p)).abs() < 0.05, "the video still starts late");
}

#[test]
fn hard_telecine_without_a_default_duration_is_film_on_both_paths() {
    // Matroska's default duration is optional: without it ffprobe reads
    // the average rate from millisecond timestamps (1000/33 = 30.303), and
    // the telecine went unrecognised (deinterlaced at 29.97, with its
    // judder); a chunked output's header said the same rate's four fifths.
    let src = made_once("hard_telecine_no_default_duration.mkv", |tmp| {
        std::fs::copy(hard_telecine(), tmp).unwrap();
        let o = Command::new("mkvpropedit")
            .arg(tmp)
            .args(["--edit", "track:v1", "--delete", "default-duration"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    });
    let a = analyze(&src);
    assert_eq!(interlace(&a)["treatment"], "ivtc", "{}", interlace(&a));
    let t = tempfile::tempdir().unwrap();
    assert_film(&src, &encode(&src, t.path(), &["--no-chunked"]));
    if has_libvmaf() {
        let t = tempfile::tempdir().unwrap();
        assert_film(&src, &encode(&src, t.path(), &["--chunked", "--chunk-size", "4"]));
    }
}

#[test]
fn hard_telecine_cut_by_ffmpeg_with_a_stale_frame_count_is_film() {
    // mkvmerge's statistics tags, copied by an ffmpeg cut (`-c copy -t`):
    // NUMBER_OF_FRAMES still counts the whole rip. Trusted, the frames
    // check failed a right encode on every run.
    let src = made_once("hard_telecine_cut_stale_tags.mkv", |tmp| {
        let tagged = scratch_path("hard_telecine_tagged", "mkv");
        let o = Command::new("mkvmerge").arg("-q").arg("-o").arg(&tagged).arg(hard_telecine()).output().unwrap();
        assert!(o.status.code().unwrap_or(2) <= 1, "{}", String::from_utf8_lossy(&o.stdout));
        let o = Command::new(ffmpeg())
            .args(["-v", "error", "-i"])
            .arg(&tagged)
            .args(["-t", "4", "-map", "0", "-c", "copy", "-f", "matroska"])
            .arg(tmp)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let _ = std::fs::remove_file(tagged);
    });
    let probe = ffprobe(&src);
    let tags = &streams(&probe, "video")[0]["tags"];
    let told: u64 =
        tags["NUMBER_OF_FRAMES"].as_str().or(tags["NUMBER_OF_FRAMES-eng"].as_str()).unwrap().parse().unwrap();
    assert!(told > frame_count(&src) + 50, "the tag counts the whole rip: {told}");
    let t = tempfile::tempdir().unwrap();
    let out = encode(&src, t.path(), &["--no-chunked"]);
    assert_film(&src, &out);
}

#[test]
fn interlaced_video_progressive_pal_and_film_keep_their_treatment() {
    // Real interlaced video: 59.94 distinct moments a second in fields.
    let video = dvd(
        "real_interlaced.mkv",
        "scale=720:480,setsar=32/27,minterpolate=fps=60000/1001:mi_mode=blend,interlace=scan=tff",
        &["-t", "6"],
    );
    let i = analyze(&video)["analysis"]["interlace"].clone();
    assert_eq!((i["content"].as_str(), i["treatment"].as_str()), (Some("interlaced"), Some("deinterlace")), "{i}");
    // PAL: 25 progressive frames a second coded as interlaced.
    let bikes = footage("bikes.mp4");
    let pal = fixture(
        "real_pal_progressive.mkv",
        &[
            "-i",
            bikes.to_str().unwrap(),
            "-vf",
            "scale=720:576,setsar=64/45,setfield=tff",
            "-c:v",
            "mpeg2video",
            "-flags",
            "+ilme+ildct",
            "-b:v",
            "8M",
        ],
    );
    let a = analyze(&pal);
    assert_eq!(interlace(&a)["field_order"], Value::Null);
    assert_eq!(
        (interlace(&a)["content"].as_str(), interlace(&a)["treatment"].as_str()),
        (Some("progressive"), Some("none"))
    );
    assert_eq!(a["plan"]["video"]["filters"].as_array().unwrap().len(), 0);
    // The film itself, progressive.
    let film = fixture(
        "real_film_h264.mkv",
        &[
            "-i",
            footage("Megamind.avi").to_str().unwrap(),
            "-map",
            "0:v:0",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "18",
        ],
    );
    let a = analyze(&film);
    assert_eq!(interlace(&a)["treatment"], "none");
    assert_eq!(a["plan"]["video"]["decimation_cycle"], Value::Null);
}

#[test]
fn a_hybrid_of_film_and_video_is_named_and_treated_for_its_majority() {
    // 7.5 s of telecined film, then 3 s of interlaced video.
    let film = footage("Megamind.avi");
    let src = fixture(
        "real_hybrid.mkv",
        &[
            "-i",
            film.to_str().unwrap(),
            "-filter_complex",
            "[0:v]scale=720:480,setsar=32/27,split[a][b];\
             [a]trim=0:7.5,telecine=pattern=23,setpts=PTS-STARTPTS[f];\
             [b]trim=7.5:10.5,setpts=PTS-STARTPTS,minterpolate=fps=60000/1001:mi_mode=blend,interlace=scan=tff,fps=30000/1001[v];\
             [f][v]concat=n=2:v=1,fps=30000/1001[out]",
            "-map",
            "[out]",
            "-r",
            "30000/1001",
            "-c:v",
            "mpeg2video",
            "-flags",
            "+ilme+ildct",
            "-b:v",
            "8M",
        ],
    );
    let i = analyze(&src)["analysis"]["interlace"].clone();
    assert_eq!(i["content"], "hybrid", "{i}");
    assert_eq!(i["treatment"], "ivtc", "film dominates: {i}");
    assert!(i["reason"].as_str().unwrap().contains("film dominates"), "{i}");
}

/// Soft telecine as DVD authoring makes it (what DGPulldown does): the film
/// coded as 23.976 progressive MPEG-2, then its headers patched to 29.97
/// fps video with 3:2 repeat-field flags (top-field-first and
/// repeat-first-field in the cycle TR, –, R, T), and muxed by mkvmerge as a
/// rip tool does (timestamps 50 and 33 ms in turn).
fn soft_telecine() -> PathBuf {
    pulldown_flagged("soft_telecine", &[], None)
}

/// Soft telecine as [`soft_telecine`], of the footage twice over (`input`
/// options), whose pictures from `video_from` on are plain 29.97 video (no
/// repeat-field flag: each lasts two fields, 33 ms), as the credits of an
/// NTSC TV disc are.
fn pulldown_flagged(name: &str, input: &[&str], video_from: Option<usize>) -> PathBuf {
    let path = fixtures_dir().join(format!("{name}.mkv"));
    if path.exists() {
        return path;
    }
    let film = footage("Megamind.avi");
    let mut args: Vec<&str> = input.to_vec();
    args.extend([
        "-i",
        film.to_str().unwrap(),
        "-map",
        "0:v:0",
        "-vf",
        "scale=720:480,setsar=32/27",
        "-c:v",
        "mpeg2video",
        "-bf",
        "0",
        "-g",
        "12",
        "-b:v",
        "6M",
        "-f",
        "mpeg2video",
    ]);
    let es = fixture(&format!("{name}_film.m2v"), &args);
    soft_pulldown(name, &es, video_from, false)
}

/// The MPEG-2 stream `es` with 3:2 soft pulldown flags, muxed by mkvmerge
/// as `name`.mkv: its pictures from `video_from` on are 29.97 video (no
/// repeat-field flag), marked interlaced when `interlaced_video`.
fn soft_pulldown(name: &str, es: &Path, video_from: Option<usize>, interlaced_video: bool) -> PathBuf {
    let path = fixtures_dir().join(format!("{name}.mkv"));
    let mut d = std::fs::read(es).unwrap();
    let cycle = [(true, true), (false, false), (false, true), (true, false)];
    let (mut i, mut picture) = (0, 0);
    while i + 9 < d.len() {
        if d[i..i + 3] != [0, 0, 1] {
            i += 1;
            continue;
        }
        match (d[i + 3], d[i + 4] >> 4) {
            // Sequence header: frame_rate_code 4 (30000/1001).
            (0xB3, _) => d[i + 7] = (d[i + 7] & 0xF0) | 4,
            // Sequence extension: progressive_sequence off.
            (0xB5, 1) => d[i + 5] &= !0x08,
            // Picture coding extension: the pulldown flags, progressive_frame.
            (0xB5, 8) => {
                let video = video_from.is_some_and(|from| picture >= from);
                let (tff, rff) = if video { (true, false) } else { cycle[picture % 4] };
                d[i + 7] = (d[i + 7] & !0x82) | if tff { 0x80 } else { 0 } | if rff { 0x02 } else { 0 };
                // progressive_frame
                if video && interlaced_video {
                    d[i + 8] &= 0x7F;
                } else {
                    d[i + 8] |= 0x80;
                }
                picture += 1;
            }
            _ => {}
        }
        i += 4;
    }
    assert!(picture > 100, "{picture} pictures patched");
    let patched = scratch_path(name, "m2v");
    std::fs::write(&patched, &d).unwrap();
    let tmp = scratch_path(name, "mkv");
    let o = Command::new("mkvmerge").arg("-q").arg("-o").arg(&tmp).arg(&patched).output().unwrap();
    assert!(o.status.code().unwrap_or(9) <= 1, "{}", String::from_utf8_lossy(&o.stdout));
    std::fs::remove_file(&patched).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

#[test]
fn soft_telecine_keeps_the_film_frames_at_film_timestamps_on_both_paths() {
    let src = soft_telecine();
    let p = ffprobe(&src);
    assert_eq!(streams(&p, "video")[0]["r_frame_rate"], "30000/1001", "the source claims 29.97");
    let a = analyze(&src);
    let i = interlace(&a);
    assert_eq!(
        (i["content"].as_str(), i["treatment"].as_str()),
        (Some("soft_telecine"), Some("film_timestamps")),
        "{i}"
    );
    assert!(i["pulldown"]["repeat_flagged"].as_u64().unwrap() * 3 > i["pulldown"]["frames"].as_u64().unwrap(), "{i}");
    for args in both_paths("4") {
        let t = tempfile::tempdir().unwrap();
        let out = encode(&src, t.path(), &args);
        let p = ffprobe(&out);
        let v = streams(&p, "video")[0];
        assert_eq!(v["r_frame_rate"], "24000/1001", "{args:?}: no invented 29.97");
        assert_eq!(frame_count(&out), frame_count(&src), "{args:?}: every film frame, no more");
        // Evenly spaced, film's 41.7 ms apart (not 50 and 33 in turn).
        let pts = packet_times(&out, "v:0");
        let worst = pts.windows(2).map(|w| ((w[1] - w[0]) - 1001.0 / 24000.0).abs()).fold(0.0, f64::max);
        assert!(worst < 0.003, "{args:?}: frame spacing off by up to {worst:.4} s");
        let d = |p: &Value| p["format"]["duration"].as_str().unwrap().parse::<f64>().unwrap();
        assert!((d(&p) - d(&ffprobe(&src))).abs() <= 1.0);
    }
}

/// Soft-telecined film whose last 62 pictures are 29.97 video (credits),
/// after the part the analysis samples: evened out to 23.976, they would
/// last 0.5 s longer and everything after them be late. The whole stream's
/// frames and span decide: its timestamps are kept, and the output's video
/// ends where the rip's does.
#[test]
fn soft_telecine_with_a_video_stretch_keeps_its_timestamps() {
    let src = pulldown_flagged("soft_telecine_hybrid", &["-stream_loop", "1"], Some(480));
    let a = analyze(&src);
    let i = interlace(&a);
    assert_eq!((i["content"].as_str(), i["treatment"].as_str()), (Some("soft_telecine"), Some("none")), "{i}");
    assert!(i["reason"].as_str().unwrap().contains("not film's rate throughout"), "{i}");
    let t = tempfile::tempdir().unwrap();
    let out = encode(&src, t.path(), &["--no-chunked"]);
    assert_eq!(frame_count(&out), frame_count(&src));
    let end = |p: &Path| packet_ends(p, "v:0").into_iter().fold(0.0, f64::max);
    assert!((end(&out) - end(&src)).abs() < 0.05, "the video ends at {} s, the rip's at {} s", end(&out), end(&src));
}

/// The common shape of an NTSC TV disc: soft-telecined film, then 29.97i
/// video (credits, effects shots) coded as interlaced pictures. The video
/// came out combed: soft telecine kept every frame as it was.
#[test]
fn soft_telecine_s_interlaced_video_is_deinterlaced_and_its_film_kept() {
    let film = footage("Megamind.avi");
    let graph = "[0:v]trim=end_frame=96,setpts=PTS-STARTPTS,scale=360:240,setsar=32/27[f];\
                 [1:v]interlace=scan=tff,setsar=32/27,setfield=tff[v];\
                 [f][v]concat=n=2:v=1,settb=1001/30000,setpts=N[o]";
    let es = fixture(
        "soft_film_then_video.m2v",
        &[
            "-i",
            film.to_str().unwrap(),
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=360x240:r=60000/1001:d=1.5",
            "-filter_complex",
            graph,
            "-map",
            "[o]",
            "-r",
            "30000/1001",
            "-c:v",
            "mpeg2video",
            "-flags",
            "+ilme+ildct",
            "-bf",
            "0",
            "-g",
            "12",
            "-b:v",
            "3M",
            "-f",
            "mpeg2video",
        ],
    );
    let src = soft_pulldown("soft_film_then_video", &es, Some(96), true);
    let i = interlace(&analyze(&src)).clone();
    assert_eq!(
        (i["content"].as_str(), i["treatment"].as_str()),
        (Some("soft_telecine"), Some("deinterlace_marked")),
        "{i}"
    );
    let t = tempfile::tempdir().unwrap();
    let out = encode(&src, t.path(), &["--no-chunked"]);
    assert_eq!(frame_count(&out), frame_count(&src));
    let combed = idet_interlaced_share(&out);
    assert!(combed < 0.05, "idet calls {:.0}% of the output interlaced", combed * 100.0);
    // The film's frames (the first 96 of 141, with their repeat flags) as
    // the decoder gave them: the filter leaves them be.
    let film = |vf: &str| -> Vec<String> {
        let out = Command::new(ffmpeg())
            .args(["-hide_banner", "-nostats", "-i"])
            .arg(&src)
            .args(["-map", "0:v:0", "-vf", vf, "-frames:v", "96", "-f", "framecrc", "-"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines().filter(|l| !l.starts_with('#')).map(|l| l.rsplit(',').next().unwrap().to_string()).collect()
    };
    let kept = film("bwdif=mode=send_frame:parity=auto:deint=interlaced");
    assert_eq!((kept.len(), kept), (96, film("null")));
    // The same video coded as progressive pictures: nothing deinterlaces
    // them by their flags; they are left, and that is said.
    let unmarked = soft_pulldown("soft_film_then_unmarked_video", &es, Some(96), false);
    let a = analyze(&unmarked);
    assert_eq!(interlace(&a)["treatment"], "none", "{a}");
    let warned = a["analysis"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().starts_with("interlace: combed pictures are left as they are"));
    assert!(warned, "{a}");
}

/// A PAL disc whose field order changes (extras of DV and film sources):
/// 2 s top field first, then 2 s bottom field first, each flagged right.
/// One order forced on all of it deinterlaced the second half with the
/// wrong parity (26 dB against the pictures, 33 with each picture's own).
#[test]
fn a_field_order_that_changes_is_followed_picture_by_picture() {
    let graph = "[0:v]split[a][b];[a]trim=end_frame=100,interlace=scan=tff,setfield=tff[x];\
                 [b]trim=start_frame=100,setpts=PTS-STARTPTS,interlace=scan=bff,setfield=bff[y];\
                 [x][y]concat=n=2:v=1,setsar=64/45[v]";
    let src = fixture(
        "pal_tff_then_bff.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=360x288:r=50:d=4",
            "-filter_complex",
            graph,
            "-map",
            "[v]",
            "-c:v",
            "mpeg2video",
            "-flags",
            "+ilme+ildct",
            "-b:v",
            "3M",
            "-g",
            "12",
            "-bf",
            "2",
        ],
    );
    let a = analyze(&src);
    assert_eq!(a["plan"]["video"]["filters"][0], "bwdif=mode=send_frame:parity=auto:deint=all", "{a}");
    let t = tempfile::tempdir().unwrap();
    let out = encode(&src, t.path(), &["--no-chunked", "--crf", "10"]);
    // The second half against the pictures it was made of (the even
    // frames of the 50p source).
    let o = Command::new(ffmpeg())
        .args(["-hide_banner", "-i"])
        .arg(&out)
        .args(["-f", "lavfi", "-i", "testsrc2=s=360x288:r=50:d=4", "-lavfi"])
        .arg(
            "[0:v]format=yuv420p,setsar=1,trim=start_frame=55:end_frame=95,setpts=PTS-STARTPTS[a];\
             [1:v]select='not(mod(n\\,2))',setpts=N/25/TB,format=yuv420p,trim=start_frame=55:end_frame=95,setpts=PTS-STARTPTS[b];\
             [a][b]psnr",
        )
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    let psnr: f64 = text
        .split("average:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no PSNR: {text}"));
    assert!(psnr > 30.0, "the bottom-field-first half at {psnr:.1} dB");
}

#[test]
fn the_treatment_can_be_forced_and_is_validated() {
    let src = hard_telecine();
    let a = analyze_with(&src, &["--interlace", "none"]);
    assert_eq!(interlace(&a)["treatment"], "none");
    assert_eq!(interlace(&a)["content"], "hard_telecine", "what the frames are is still said");
    assert_eq!(a["plan"]["video"]["filters"].as_array().unwrap().len(), 0);
    let t = tempfile::tempdir().unwrap();
    let o = run(drapto(t.path()).env("DRAPTO_INTERLACE", "deinterlace").args(["analyze", "--json"]).arg(&src));
    let a: Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(a["plan"]["video"]["filters"][0], "bwdif=mode=send_frame:parity=tff:deint=all");
    let o = run(drapto(t.path()).args(["analyze", "--interlace", "sometimes"]).arg(&src));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("possible values: auto, ivtc, deinterlace, none"), "{}", stderr(&o));
    let o = run(drapto(t.path()).env("DRAPTO_INTERLACE", "sometimes").args(["analyze"]).arg(&src));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("DRAPTO_INTERLACE"), "{}", stderr(&o));
}

/// Film that idet sees the cadence of in few cycles, but in every stretch:
/// coded as interlaced H.264 at CRF 23 (as TV Blu-rays and re-encoded DVDs
/// are), and animation held on threes (repeats off the cadence too). Both
/// were judged video and deinterlaced at 29.97, a duplicate in five left.
#[test]
fn weakly_seen_telecine_and_animation_on_threes_are_film() {
    let film = footage("Megamind.avi");
    let h264 = fixture(
        "telecine_h264_crf23.mkv",
        &[
            "-i",
            film.to_str().unwrap(),
            "-t",
            "10",
            "-vf",
            "scale=720:480,setsar=32/27,fps=24000/1001,telecine=first_field=top:pattern=23,setfield=tff",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-flags",
            "+ildct+ilme",
        ],
    );
    let threes = fixture(
        "telecine_threes.mkv",
        &[
            "-i",
            film.to_str().unwrap(),
            "-t",
            "10",
            "-vf",
            "scale=720:480,setsar=8/9,fps=8000/1001,fps=24000/1001,telecine=first_field=top:pattern=23,setfield=tff",
            "-c:v",
            "mpeg2video",
            "-flags",
            "+ilme+ildct",
            "-b:v",
            "8M",
        ],
    );
    for src in [h264, threes] {
        let i = analyze(&src)["analysis"]["interlace"].clone();
        assert_eq!((i["content"].as_str(), i["treatment"].as_str()), (Some("hard_telecine"), Some("ivtc")), "{i}");
    }
}
