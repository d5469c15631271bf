//! Hostile inputs and environments: each gets one clear line naming the file
//! and the cause, a non-zero exit (or a failed entry in the batch), no panic,
//! and the input untouched.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn encode_json(t: &Path, src: &Path) -> (std::process::Output, Vec<serde_json::Value>) {
    let o = run(drapto(t).args(["encode", "--json", "-i"]).arg(src).arg("-o").arg(t.join("out")));
    assert!(!stderr(&o).contains("panicked"), "no panic");
    let ev = events(&o);
    (o, ev)
}

fn failure(ev: &[serde_json::Value]) -> String {
    ev.iter()
        .find(|e| e["event"] == "file_failed")
        .map(|e| e["error"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

fn warnings(ev: &[serde_json::Value]) -> Vec<String> {
    ev.iter().filter(|e| e["event"] == "warning").map(|e| e["message"].as_str().unwrap().to_string()).collect()
}

#[test]
fn no_video_stream() {
    let t = tempfile::tempdir().unwrap();
    let src = fixture("audio_only.mkv", &["-f", "lavfi", "-i", "sine=duration=1", "-c:a", "flac"]);
    let before = fingerprint(&src);
    let (o, ev) = encode_json(t.path(), &src);
    assert_eq!(o.status.code(), Some(1));
    assert!(failure(&ev).contains("audio_only.mkv: has no video stream"), "{}", failure(&ev));
    assert_eq!(fingerprint(&src), before);
}

#[test]
fn several_video_streams_fail_before_encoding_or_with_on_loss_warn_encode_the_first_and_say_so() {
    let t = tempfile::tempdir().unwrap();
    let src = fixture(
        "two_videos.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=1",
            "-f",
            "lavfi",
            "-i",
            "smptebars=size=160x120:rate=25:duration=1",
            "-map",
            "0:v",
            "-map",
            "1:v",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    // By default the second video track is a loss: nothing is encoded.
    let (o, ev) = encode_json(t.path(), &src);
    assert_eq!(o.status.code(), Some(1));
    assert!(failure(&ev).contains("would lose video track 2"), "{}", failure(&ev));
    assert!(!t.path().join("out/two_videos.mkv").exists());
    let o = run(drapto(t.path())
        .env("DRAPTO_ON_LOSS", "warn")
        .args(["encode", "--json", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("out")));
    assert!(o.status.success());
    let ev = events(&o);
    assert!(
        warnings(&ev).iter().any(|w| w.contains("2 video streams; only the first is encoded")),
        "{:?}",
        warnings(&ev)
    );
    let p = ffprobe(&t.path().join("out/two_videos.mkv"));
    assert_eq!(streams(&p, "video").len(), 1);
    assert_eq!(streams(&p, "video")[0]["width"], 320);
}

#[test]
fn a_truncated_mkv_fails_before_encoding_unless_allowed() {
    let t = tempfile::tempdir().unwrap();
    let whole = std::fs::read(simple_clip("trunc_src.mkv", "320x240", 6)).unwrap();
    let src = t.path().join("truncated.mkv");
    std::fs::write(&src, &whole[..whole.len() / 2]).unwrap();
    let before = fingerprint(&src);
    let (o, ev) = encode_json(t.path(), &src);
    assert_eq!(o.status.code(), Some(1));
    assert!(failure(&ev).contains("truncated.mkv: the rip ends at"), "{}", failure(&ev));
    assert!(failure(&ev).contains("of 6.0 s") && failure(&ev).contains("--allow-truncated"), "{}", failure(&ev));
    assert!(!ev.iter().any(|e| e["event"] == "stage_started" && e["stage"]["kind"] == "video"), "no encoding");
    assert!(std::fs::read_dir(t.path().join("out")).map_or(true, |d| d.count() == 0), "no output");
    assert!(fingerprint(&src) == before, "input untouched");
}

#[test]
fn corrupt_frames_are_counted_and_the_encode_finishes() {
    let t = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(simple_clip("corrupt_src.mkv", "320x240", 4)).unwrap();
    let mid = bytes.len() / 2;
    for (i, b) in bytes[mid..mid + 4000].iter_mut().enumerate() {
        *b = (i * 37 % 251) as u8;
    }
    let src = t.path().join("corrupt.mkv");
    std::fs::write(&src, &bytes).unwrap();
    let (o, ev) = encode_json(t.path(), &src);
    if o.status.success() {
        assert!(warnings(&ev).iter().any(|w| w.contains("decoding error")), "{:?}", warnings(&ev));
    } else {
        let f = failure(&ev);
        assert!(f.contains("corrupt.mkv") && !f.is_empty(), "{f}");
    }
}

/// A rip whose audio's first 0.9 s do not decode (42 damaged AAC frames, as
/// a scratched disc leaves them): the Opus track starts at its first good
/// frame, in sync, and the damage is said. Moved to where the source's
/// first block was, every sound came out 0.9 s early, on both paths, and
/// passed validation.
#[test]
fn audio_whose_first_frames_do_not_decode_stays_in_sync() {
    let clean = fixture(
        "hostile-aac8.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=24:duration=8",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:beep_factor=4:duration=8",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "24",
            "-c:a",
            "aac",
        ],
    );
    let damaged = fixture(
        "hostile-aac8-head.mkv",
        &["-i", clean.to_str().unwrap(), "-c", "copy", "-bsf:a", "noise=amount='if(lt(n\\,42)\\,1\\,0)'"],
    );
    let first = |path: &Path, select: &str| {
        let o = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", select, "-show_entries", "packet=pts_time", "-of", "csv=p=0"])
            .arg(path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        text.lines().filter_map(|l| l.trim().parse::<f64>().ok()).fold(f64::INFINITY, f64::min)
    };
    for path in [["--no-chunked"], ["--chunked"]] {
        let t = tempfile::tempdir().unwrap();
        let o = run(drapto(t.path())
            .args(["encode", "--json", "-i"])
            .arg(&damaged)
            .arg("-o")
            .arg(t.path().join("out"))
            .args(path));
        assert!(o.status.success(), "{path:?}: {}", stderr(&o));
        let ev = events(&o);
        assert!(
            warnings(&ev).iter().any(|w| w.contains("its first 0.87") && w.contains("do not decode")),
            "{:?}",
            warnings(&ev)
        );
        let out = t.path().join("out/hostile-aac8-head.mkv");
        let (video, audio) = (first(&out, "v:0"), first(&out, "a:0"));
        assert!(video.abs() < 0.05, "{path:?}: video starts at {video}");
        assert!((audio - 0.89).abs() < 0.03, "{path:?}: the audio starts at {audio}, where it first decodes");
    }
}

/// Rips whose video partly does not decode (41 damaged packets): the
/// chunked path, which needs every frame, says so and encodes them on the
/// standard path, which keeps what decodes on the source's timeline. With
/// the damage in the last segment, the run failed after the whole encode as
/// "an internal failure, not the rip's", which counts towards the circuit
/// breaker (a few such rips in a row stopped the batch); in another
/// segment, its encode read on into the next one, whose first frames came
/// out twice and the rest of the segment out of sync, and passed.
#[test]
fn a_rip_whose_video_does_not_decode_in_full_is_encoded_on_the_standard_path() {
    for (secs, packets, segments) in [(8, "60\\,100", "15"), (30, "420\\,460", "10")] {
        let name = format!("hostile-clean{secs}");
        let clean = fixture(
            &format!("{name}.mkv"),
            &[
                "-f",
                "lavfi",
                "-i",
                &format!("testsrc2=size=320x240:rate=24:duration={secs}"),
                "-f",
                "lavfi",
                "-i",
                &format!("sine=sample_rate=48000:duration={secs}"),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "48",
                "-c:a",
                "ac3",
            ],
        );
        let noise = format!("noise=amount='if(between(n\\,{packets})\\,2\\,0)'");
        let damaged =
            fixture(&format!("{name}-damaged.mkv"), &["-i", clean.to_str().unwrap(), "-c", "copy", "-bsf:v", &noise]);
        let t = tempfile::tempdir().unwrap();
        let args = ["encode", "--json", "--chunked", "--chunk-size", segments, "-i"];
        let o = run(drapto(t.path()).args(args).arg(&damaged).arg("-o").arg(t.path().join("out")));
        assert!(o.status.success(), "{secs} s: {}", stderr(&o));
        let w = warnings(&events(&o));
        assert!(w.iter().any(|w| w.contains("does not decode in full") && w.contains("standard path")), "{w:?}");
        assert!(w.iter().any(|w| w.contains("decoding error(s) in the source") && w.contains("(h264)")), "{w:?}");
        let out = t.path().join(format!("out/{name}-damaged.mkv"));
        let (decoded, all) = (frame_count(&out), secs * 24);
        assert!(decoded > all / 2 && decoded < all, "{secs} s: what decodes, once: {decoded} of {all}");
    }
}

/// A rip three of whose frames are stamped 20 s late (a damaged disc):
/// the standard path's output, whose later frames ffmpeg's muxer held at
/// the latest time (the picture frozen for 20 s), fails validation, and the
/// chunked path says so before any encode. The standard path's output
/// passed validation; the chunked path failed on a vmaf error, on every run.
#[test]
fn video_timestamps_that_jump_fail_clearly() {
    let clip = simple_clip("hostile-stamps.mkv", "320x240", 6);
    let src = fixtures_dir().join("hostile-stamps-jump.mkv");
    if !src.exists() {
        let dir = tempfile::tempdir().unwrap();
        let times = dir.path().join("times.txt");
        let x = std::process::Command::new("mkvextract")
            .arg(&clip)
            .arg("timestamps_v2")
            .arg(format!("0:{}", times.display()))
            .output()
            .unwrap();
        assert!(x.status.success());
        let text = std::fs::read_to_string(&times).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines[0] = "# timestamp format v4".into();
        for line in &mut lines[60..63] {
            *line = format!("{}", line.parse::<f64>().unwrap() + 20000.0);
        }
        std::fs::write(&times, lines.join("\n") + "\n").unwrap();
        let made = dir.path().join("made.mkv");
        let m = std::process::Command::new("mkvmerge")
            .arg("-q")
            .arg("-o")
            .arg(&made)
            .arg("--timestamps")
            .arg(format!("0:{}", times.display()))
            .arg(&clip)
            .output()
            .unwrap();
        assert!(m.status.code().unwrap_or(2) < 2, "{}", String::from_utf8_lossy(&m.stdout));
        std::fs::rename(&made, &src).unwrap();
    }
    for (path, said) in [("--no-chunked", "video timeline"), ("--chunked", "timestamps are damaged")] {
        let t = tempfile::tempdir().unwrap();
        let o =
            run(drapto(t.path()).args(["encode", "--json", path, "-i"]).arg(&src).arg("-o").arg(t.path().join("out")));
        assert_eq!(o.status.code(), Some(1), "{path}: {}", stderr(&o));
        let f = failure(&events(&o));
        assert!(f.contains("hostile-stamps-jump.mkv") && f.contains(said) && f.contains("rip it again"), "{path}: {f}");
        assert!(!t.path().join("out/hostile-stamps-jump.mkv").exists(), "{path}: nothing under the final name");
    }
}

/// Damaged video on the chunked path is said as on the standard path: by
/// each segment whose source ffmpeg reported decoding errors in. It was
/// encoded without a word.
#[test]
fn the_chunked_path_says_where_the_source_video_is_damaged() {
    let clean = simple_clip("hostile-clean8-simple.mkv", "320x240", 8);
    let damaged = fixture(
        "hostile-concealed.mkv",
        &["-i", clean.to_str().unwrap(), "-c", "copy", "-bsf:v", "noise=amount='200*gte(pts*tb\\,3)*lt(pts*tb\\,5)'"],
    );
    let t = tempfile::tempdir().unwrap();
    let args = ["encode", "--json", "--chunked", "--chunk-size", "2", "-i"];
    let o = run(drapto(t.path()).args(args).arg(&damaged).arg("-o").arg(t.path().join("out")));
    assert!(o.status.success(), "{}", stderr(&o));
    let w = warnings(&events(&o));
    let said = |w: &String| {
        (w.starts_with("segment ") && w.contains("decoding error(s) in the source's video"))
            || w.contains("does not decode in full")
    };
    assert!(w.iter().any(said), "{w:?}");
}

#[test]
fn variable_frame_rate_and_odd_sizes() {
    let t = tempfile::tempdir().unwrap();
    let vfr = fixture(
        "vfr.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=718x480:rate=30:duration=3,settb=1/1000,setpts='if(lt(N,30),N/(24*TB),1.25/TB+(N-30)/(60*TB))'",
            "-fps_mode",
            "passthrough",
            "-enc_time_base:v",
            "1/1000",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let (o, _) = encode_json(t.path(), &vfr);
    assert!(o.status.success());
    let out = t.path().join("out/vfr.mkv");
    assert_eq!(frame_count(&out), frame_count(&vfr));
    assert_eq!(streams(&ffprobe(&out), "video")[0]["width"], 718);
}

#[test]
fn dozens_of_tracks() {
    let t = tempfile::tempdir().unwrap();
    let mut args: Vec<String> =
        ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1"].map(String::from).to_vec();
    for i in 0..20 {
        args.extend(["-f".into(), "lavfi".into(), "-i".into(), format!("sine=frequency={}:duration=1", 200 + i * 20)]);
    }
    args.extend(["-map".into(), "0:v".into()]);
    for i in 0..20 {
        args.extend(["-map".into(), format!("{}:a", i + 1)]);
        args.extend([format!("-metadata:s:a:{i}"), format!("language={}", ["eng", "fre", "ger", "spa"][i % 4])]);
    }
    args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "flac"].map(String::from));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let src = fixture("many_tracks.mkv", &refs);
    let (o, _) = encode_json(t.path(), &src);
    assert!(o.status.success());
    let p = ffprobe(&t.path().join("out/many_tracks.mkv"));
    let a = streams(&p, "audio");
    assert_eq!(a.len(), 20);
    assert_eq!(a[5]["tags"]["language"], "fre");
}

#[test]
fn strange_names_and_symlinks() {
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in dir");
    std::fs::create_dir(&input).unwrap();
    let clip = simple_clip("small.mkv", "160x120", 1);
    let long = format!("{}.mkv", "L".repeat(200));
    // Names at the file system's bound (255 bytes): the hidden name each is
    // muxed under, and its report's, would be longer.
    let (longest, japanese) = (format!("{}.mkv", "M".repeat(251)), format!("{}.mkv", "あ".repeat(83)));
    let names = [
        "with space.mkv",
        "quote's \"double\".mkv",
        "ünïcødé 日本.mkv",
        "-leading dash.mkv",
        long.as_str(),
        longest.as_str(),
        japanese.as_str(),
    ];
    for n in names {
        std::fs::copy(&clip, input.join(n)).unwrap();
    }
    std::os::unix::fs::symlink(&clip, input.join("link.mkv")).unwrap();
    let out_dir = input.join("out"); // the output folder inside the input folder
    let o = run(drapto(t.path()).args(["encode", "-q", "-i"]).arg(&input).arg("-o").arg(&out_dir));
    assert!(o.status.success(), "{}", stdout(&o));
    for n in names.iter().chain(&["link.mkv"]) {
        assert!(out_dir.join(n).exists(), "{n}");
    }
    assert!(input.join("link.mkv").is_symlink(), "the link is untouched");
    let reports: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".report.json"))
        .collect();
    for start in ["MMMM", "ああ"] {
        assert!(reports.iter().any(|r| r.starts_with(start)), "{start}: {reports:?}");
    }
    // A leading dash as a direct argument is a file, not an option.
    let o = run(drapto(t.path())
        .current_dir(&input)
        .args(["encode", "-q", "-i", "-leading dash.mkv", "-o"])
        .arg(t.path().join("o2")));
    assert!(o.status.success());
    // Folders named as mkvmerge names a file of options ("@file"), relative.
    let o = run(drapto(t.path()).current_dir(t.path()).args(["encode", "-q", "-i"]).arg(&clip).args([
        "-o",
        "@out",
        "--temp-dir",
        "@work",
    ]));
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(t.path().join("@out").join(clip.file_name().unwrap()).exists());
}

#[test]
fn a_rip_whose_output_name_would_be_too_long_fails_before_any_encode() {
    // 255 bytes on disk, as `.ts`; as `.mkv` 256: the rename into place
    // failed after the whole encode, on every rerun.
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("lib");
    std::fs::create_dir(&input).unwrap();
    let name = format!("{}.ts", "N".repeat(252));
    std::fs::copy(simple_clip("small.mkv", "160x120", 1), input.join(&name)).unwrap();
    let out_dir = t.path().join("out");
    let args = |c: &mut std::process::Command| {
        c.args(["encode", "--file-pattern", "*.ts", "-i"]).arg(&input).arg("-o").arg(&out_dir);
    };
    let mut c = drapto(t.path());
    args(c.arg("--json"));
    let o = run(c.arg("--dry-run"));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let line: serde_json::Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(line["action"], "fail", "{line}");
    assert!(line["reason"].as_str().unwrap().contains("would be 256 bytes, more than the 255"), "{line}");
    let mut c = drapto(t.path());
    args(c.arg("--json"));
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(1));
    let ev = events(&o);
    let failed = ev.iter().find(|e| e["event"] == "file_failed").expect("failed");
    assert!(failed["error"].as_str().unwrap().contains("would be 256 bytes"), "{failed}");
    assert!(!ev.iter().any(|e| e["event"] == "stage_started"), "failed before any analysis or encode");
}

#[test]
fn bad_paths_get_clear_errors() {
    let t = tempfile::tempdir().unwrap();
    let empty = t.path().join("empty folder");
    std::fs::create_dir(&empty).unwrap();
    let o = run(drapto(t.path()).args(["encode", "-i"]).arg(&empty).arg("-o").arg(t.path().join("o")));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("empty folder: holds no rips matching \"*.mkv\""), "{}", stderr(&o));

    let o = run(drapto(t.path())
        .args(["encode", "-i"])
        .arg(t.path().join("missing.mkv"))
        .arg("-o")
        .arg(t.path().join("o")));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("missing.mkv: cannot read: No such file"), "{}", stderr(&o));

    // An output folder that cannot be created (below a file, said at
    // once: see below), here for want of permission.
    let file = t.path().join("a file");
    std::fs::write(&file, b"x").unwrap();
    let src = simple_clip("small.mkv", "320x240", 2);
    let o = run(drapto(t.path()).args(["encode", "-i"]).arg(&src).arg("-o").arg("/proc/drapto-out"));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot create output folder"), "{}", stderr(&o));
    // An output "folder" that is a file, or a link to a share not mounted:
    // a command line that cannot work (exit 2), in the dry run too.
    let dangling = t.path().join("nas");
    std::os::unix::fs::symlink("/mnt/not-mounted/encodes", &dangling).unwrap();
    let (below_file, below_link) = (file.join("sub"), dangling.join("Encodes"));
    let cases = [
        (&file, "is a file, not a folder"),
        (&below_file, "a file is a file, not a folder"),
        (&dangling, "/mnt/not-mounted/encodes, which is not there"),
        (&below_link, "nas is a link to /mnt/not-mounted/encodes, which is not there"),
    ];
    for (out, said) in cases {
        for dry in [true, false] {
            let mut c = drapto(t.path());
            c.args(["encode", "-i"]).arg(&src).arg("-o").arg(out);
            let o = run(if dry { c.arg("--dry-run") } else { &mut c });
            assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
            assert!(stderr(&o).contains(said), "{}", stderr(&o));
        }
    }

    // A temporary folder that is a file: status and clean say so (they
    // said no drapto ran, and that nothing was removed, with exit 0).
    for cmd in ["status", "clean"] {
        let o = run(drapto(t.path()).env("DRAPTO_TEMP_DIR", &file).arg(cmd));
        assert_eq!(o.status.code(), Some(1), "{cmd}: {}", stdout(&o));
        assert!(stderr(&o).contains("cannot read temporary folder: Not a directory"), "{}", stderr(&o));
    }

    // A temporary folder that cannot be made: the dry run says so as the
    // run would (exit 3), not "1 to encode".
    let mut c = drapto(t.path());
    c.env("DRAPTO_TEMP_DIR", file.join("sub")).args(["encode", "--dry-run", "-i"]).arg(&src);
    let o = run(c.arg("-o").arg(t.path().join("o3")));
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stderr(&o).contains("is not a folder; set DRAPTO_TEMP_DIR"), "{}", stderr(&o));

    // A missing output folder is created.
    let o = run(drapto(t.path()).args(["encode", "-q", "-i"]).arg(&src).arg("-o").arg(t.path().join("new/deep/out")));
    assert!(o.status.success());
}

#[test]
fn missing_or_incapable_tools() {
    let t = tempfile::tempdir().unwrap();
    let src = simple_clip("small.mkv", "320x240", 2);
    let o = run(drapto(t.path())
        .env("DRAPTO_FFMPEG", "/nonexistent/ffmpeg")
        .args(["encode", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("o")));
    assert_eq!(o.status.code(), Some(4));
    let e = stderr(&o);
    assert!(
        e.contains("ffmpeg")
            && e.contains("/nonexistent/ffmpeg")
            && e.contains("correct or unset environment variable DRAPTO_FFMPEG"),
        "the setting is what is wrong, and the fix says so: {e}"
    );
    assert!(!t.path().join("o").exists(), "no work before the check");

    let o = run(drapto(t.path())
        .env("DRAPTO_FFPROBE", "/nonexistent/ffprobe")
        .args(["encode", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("o")));
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("ffprobe"));

    // Every output is muxed by mkvmerge: without it nothing starts.
    let o = run(drapto(t.path())
        .env("DRAPTO_MKVMERGE", "/nonexistent/mkvmerge")
        .args(["encode", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("o")));
    assert_eq!(o.status.code(), Some(4));
    let e = stderr(&o);
    assert!(
        e.contains("/nonexistent/mkvmerge") && e.contains("correct or unset environment variable DRAPTO_MKVMERGE"),
        "{e}"
    );
    assert!(!t.path().join("o").exists(), "no work before the check");

    // Without mediainfo everything still works.
    let o = run(drapto(t.path())
        .env("DRAPTO_MEDIAINFO", "/nonexistent/mi")
        .args(["encode", "-q", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("o")));
    assert!(o.status.success());

    // Debian's ffmpeg 5.1 has no libvmaf: asking for chunked is an error with the fix.
    if Path::new("/usr/bin/ffmpeg").exists() {
        let o = run(drapto(t.path())
            .env("DRAPTO_FFMPEG", "/usr/bin/ffmpeg")
            .args(["encode", "--chunked", "-i"])
            .arg(&src)
            .arg("-o")
            .arg(t.path().join("o3")));
        assert_eq!(o.status.code(), Some(4));
        assert!(stderr(&o).contains("libvmaf") && stderr(&o).contains("imageio-ffmpeg"), "{}", stderr(&o));
        // In auto mode it falls back to the standard path with one warning.
        let o = run(drapto(t.path())
            .env("DRAPTO_FFMPEG", "/usr/bin/ffmpeg")
            .env("DRAPTO_ENABLE_CHUNKED_ENCODING", "auto")
            .args(["encode", "--json", "-i"])
            .arg(&src)
            .arg("-o")
            .arg(t.path().join("o4")));
        assert!(o.status.success());
        let w = events(&o).iter().filter(|e| e["event"] == "warning").count();
        assert_eq!(w, 1);
    }
}

#[test]
fn configuration_mistakes_name_key_file_and_line() {
    let t = tempfile::tempdir().unwrap();
    let cases = [
        ("[encoding]\npreset = 4\ncrf = [\n", "syntax error", ":4"),
        ("[encoding]\nprest = 4\n", "unknown key `encoding.prest`", ":2"),
        // (the test harness sets DRAPTO_PRESET, which would win over the file)
        ("[processing]\nchunk_size = 500\n", "processing.chunk_size: 500 is out of range (allowed 1–300)", ":2"),
        ("[processing]\n\nchunk_size = \"long\"\n", "processing.chunk_size: wrong type", ":3"),
    ];
    for (i, (text, needle, line)) in cases.iter().enumerate() {
        let f: PathBuf = t.path().join(format!("c{i}.toml"));
        std::fs::write(&f, text).unwrap();
        let o = run(drapto(t.path()).arg("--config").arg(&f).arg("config"));
        assert_eq!(o.status.code(), Some(3), "{text}");
        let e = stderr(&o);
        assert!(e.contains(needle) && e.contains(&format!("c{i}.toml{line}")), "{text} → {e}");
    }
    let o = run(drapto(t.path()).env("DRAPTO_VMAF_TARGET", "101").arg("config"));
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("environment variable DRAPTO_VMAF_TARGET"));
}

// Linux only: the ffmpeg 4.2 build is a Linux x86_64 binary (an old
// imageio-ffmpeg wheel); setup.sh fetches it on Linux alone.
#[cfg(target_os = "linux")]
/// `drapto encode -i src -o T/o` with the variable `var` set: a run that
/// the start-up check is expected to stop.
fn encode_with(t: &Path, (var, value): (&str, &Path), src: &Path) -> std::process::Output {
    run(drapto(t).env(var, value).args(["encode", "-i"]).arg(src).arg("-o").arg(t.join("o")))
}

#[test]
fn an_ffmpeg_without_svt_av1_is_refused_with_the_fix() {
    // A real ffmpeg 4.2 build (libx264, libopus, libvmaf, no libsvtav1),
    // fetched by scripts/setup.sh.
    let old = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/old/ffmpeg");
    assert!(old.is_file(), "{} missing: run scripts/setup.sh", old.display());
    let t = tempfile::tempdir().unwrap();
    let src = simple_clip("small.mkv", "320x240", 2);
    let o = encode_with(t.path(), ("DRAPTO_FFMPEG", &old), &src);
    assert_eq!(o.status.code(), Some(4));
    let e = stderr(&o);
    assert!(e.contains(&old.display().to_string()) && e.contains("has no libsvtav1"), "{e}");
    assert!(e.contains("imageio-ffmpeg"), "the fix is named: {e}");
    assert!(!t.path().join("o").exists(), "no work before the check");
    // doctor says the same, and exits as encode does: a tool is missing.
    let o = run(drapto(t.path()).env("DRAPTO_FFMPEG", &old).arg("doctor"));
    assert_eq!(o.status.code(), Some(4));
    assert!(stdout(&o).contains("libsvtav1") && stdout(&o).contains("missing"), "{}", stdout(&o));
}

#[test]
fn doctor_gives_each_tools_version_from_the_tool_itself() {
    let t = tempfile::tempdir().unwrap();
    let o = run(drapto(t.path()).args(["--json", "doctor"]));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    let version = |tool: &str| j[tool]["version"].as_str().unwrap_or_default().to_string();
    assert_eq!(j["ffmpeg"]["found"], true, "{j}");
    assert!(j["ffmpeg"]["caps"]["libopus"].is_boolean(), "{j}");
    // mkvextract knows `--version`, not ffmpeg's `-version` (which it
    // answered with "Error: Unknown mode"); mediainfo's first line has none.
    assert!(version("mkvextract").starts_with("mkvextract v"), "{j}");
    assert!(version("mkvmerge").starts_with("mkvmerge v"), "{j}");
    assert!(version("mkvpropedit").starts_with("mkvpropedit v"), "{j}");
    assert!(version("mediainfo").contains("MediaInfoLib - v"), "{j}");
    assert!(version("ffprobe").starts_with("ffprobe version"), "{j}");
}

/// drapto as a user other than root, with its environment for tests:
/// as root (setpriv, Linux's, drops to "nobody"), else as whoever runs the
/// tests, who must not be root. The programs are copied next to the test's
/// files (the checkout may sit in a folder "nobody" cannot enter), and `t`
/// is opened to everyone.
fn drapto_not_root(t: &Path) -> std::process::Command {
    use std::os::unix::fs::PermissionsExt;
    let root = cfg!(target_os = "linux")
        && std::process::Command::new("id").arg("-u").output().unwrap().stdout.starts_with(b"0\n");
    std::fs::set_permissions(t, std::fs::Permissions::from_mode(0o777)).unwrap();
    let bin = t.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = bin.join("drapto");
    let ff = bin.join("ffmpeg");
    std::fs::copy(env!("CARGO_BIN_EXE_drapto"), &exe).unwrap();
    std::fs::copy(ffmpeg(), &ff).unwrap();
    let mut c = if root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&exe);
        c
    } else {
        std::process::Command::new(&exe)
    };
    let template = drapto(t);
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.env("DRAPTO_FFMPEG", &ff).env("HOME", t);
    c
}

#[test]
fn an_unreadable_input_is_named_and_left_alone() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    let src = dir.join("locked.mkv");
    std::fs::copy(simple_clip("small.mkv", "320x240", 2), &src).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o000)).unwrap();
    let before = std::fs::metadata(&src).unwrap().len();
    let mut c = drapto_not_root(t.path());
    c.args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(dir.join("out"));
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(1));
    let ev = events(&o);
    let f = failure(&ev);
    assert!(f.contains("locked.mkv") && f.contains("ermission denied"), "{f}");
    assert_eq!(std::fs::metadata(&src).unwrap().len(), before);
    assert!(!dir.join("out/locked.mkv").exists());
}

#[test]
fn a_plain_c_locale_changes_nothing() {
    // A container's, `env -i`'s or cron's locale: MKVToolNix printed no help
    // (taken for a version too old, exit 4 before any rip) and could not
    // open a file whose name is not ASCII.
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("Amélie – 日本.mkv");
    std::fs::copy(simple_clip("small.mkv", "160x120", 1), &src).unwrap();
    let o = run(drapto(t.path())
        .env("LC_ALL", "C")
        .env("LANG", "C")
        .env_remove("LANGUAGE")
        .args(["encode", "--preset", "12", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("out")));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(t.path().join("out/Amélie – 日本.mkv").exists());
}

#[test]
fn a_lock_file_another_user_left_and_nobody_holds_is_taken_anew() {
    // A run as root left the output's lock file (0644, root's) when it was
    // killed: every later run as another user failed the rip with
    // "cannot open lock file: Permission denied", though nobody held it.
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let src = t.path().join("clip.mkv");
    std::fs::copy(simple_clip("small.mkv", "160x120", 1), &src).unwrap();
    let lock = out.join(".clip.mkv.drapto-lock");
    std::fs::write(&lock, b"pid 1 on host since long ago (writing clip.mkv)").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o444)).unwrap();
    let mut c = drapto_not_root(t.path());
    c.env("DRAPTO_TEMP_DIR", t.path().join("work"))
        .args(["encode", "--preset", "12", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(&out);
    let o = run(&mut c);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(out.join("clip.mkv").exists());
    assert!(!lock.exists(), "the new lock is removed on release too");
}

#[test]
fn an_audio_track_without_samples_is_left_out_with_a_warning() {
    let t = tempfile::tempdir().unwrap();
    let src = fixture(
        "empty_audio_track.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=2",
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=48000:cl=stereo,atrim=end_sample=0",
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-map",
            "2:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "flac",
        ],
    );
    let (o, ev) = encode_json(t.path(), &src);
    assert!(o.status.success(), "one empty track does not fail the film");
    assert!(
        warnings(&ev).iter().any(|w| w.contains("audio track 2") && w.contains("no samples")),
        "{:?}",
        warnings(&ev)
    );
    let p = ffprobe(&t.path().join("out/empty_audio_track.mkv"));
    let audio = streams(&p, "audio");
    assert_eq!(audio.len(), 1);
    assert_eq!(audio[0]["codec_name"], "opus");
}

/// mkvmerge does not list an AC-3, DTS or TrueHD track without a frame
/// (its codec is described by the first one); ffprobe does.
#[test]
fn an_ac3_track_without_samples_is_left_out_and_the_others_keep_their_places() {
    let t = tempfile::tempdir().unwrap();
    let base = fixture(
        "three_ac3_tracks.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-f",
            "lavfi",
            "-i",
            "anullsrc=cl=5.1(side):d=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=880:duration=2",
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-map",
            "2:a",
            "-map",
            "3:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "ac3",
            "-metadata:s:a:0",
            "language=eng",
            "-metadata:s:a:2",
            "language=fre",
        ],
    );
    // Track 2 keeps its header and loses every frame.
    let src = t.path().join("empty_ac3.mkv");
    let m = std::process::Command::new("mkvmerge")
        .arg("-q")
        .arg("-o")
        .arg(&src)
        .args(["--sync", "2:-10000"])
        .arg(&base)
        .output()
        .unwrap();
    assert!(m.status.code().unwrap_or(2) <= 1, "{}", String::from_utf8_lossy(&m.stdout));
    assert_eq!(streams(&ffprobe(&src), "audio").len(), 3, "ffprobe sees the empty track");
    let (o, ev) = encode_json(t.path(), &src);
    assert!(o.status.success(), "{}", failure(&ev));
    assert!(
        warnings(&ev).iter().any(|w| w.contains("audio track 2") && w.contains("no samples")),
        "{:?}",
        warnings(&ev)
    );
    // The plan says it too (a reader of the JSON saw nothing left out).
    let analysed = ev.iter().find(|e| e["event"] == "analysis_complete").unwrap();
    let left_out = &analysed["analysis"]["mux"]["left_out"];
    assert_eq!(left_out[0]["what"], "audio track 2 (ac3)", "{left_out}");
    assert_eq!(left_out[0]["loss"], false);
    let j = mkvmerge_j(&t.path().join("out/empty_ac3.mkv"));
    let audio: Vec<(&str, &str)> = (j["tracks"].as_array().unwrap().iter())
        .filter(|t| t["type"] == "audio")
        .map(|t| (t["codec"].as_str().unwrap(), t["properties"]["language"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(audio, [("Opus", "eng"), ("Opus", "fre")]);
}

#[test]
fn a_name_that_is_not_utf8_is_refused_with_a_warning_and_the_batch_goes_on_but_is_not_done() {
    use std::os::unix::ffi::OsStrExt;
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let clip = simple_clip("small.mkv", "160x120", 1);
    // "café.mkv" as an old Latin-1 share names it.
    let latin1 = input.join(std::ffi::OsStr::from_bytes(b"caf\xe9.mkv"));
    std::fs::copy(&clip, &latin1).unwrap();
    std::fs::copy(&clip, input.join("good.mkv")).unwrap();
    let out = t.path().join("out");
    let o = run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&input).arg("-o").arg(&out));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(1), "a rip left unencoded: not done");
    assert!(out.join("good.mkv").exists());
    let done = events(&o).into_iter().find(|e| e["event"] == "batch_complete").unwrap();
    assert!(done["summary"]["not_encoded"][0][1].as_str().unwrap().contains("not UTF-8"), "{done}");
    let warned = events(&o).into_iter().filter(|e| e["event"] == "warning").map(|e| e["message"].to_string());
    assert!(warned.clone().any(|m| m.contains("caf") && m.contains("not UTF-8")), "{:?}", warned.collect::<Vec<_>>());
    // Named on its own: one line, a non-zero exit (run from a folder named
    // in Latin-1 too: a variable of the environment that is not UTF-8).
    let mut c = drapto(t.path());
    c.env("OLDPWD", std::ffi::OsStr::from_bytes(b"/home/caf\xe9"));
    let o = run(c.args(["encode", "-i"]).arg(&latin1).arg("-o").arg(&out));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("caf") && e.contains("not UTF-8") && e.trim().lines().count() == 1, "{e}");
    assert_eq!(std::fs::read(&latin1).unwrap(), std::fs::read(&clip).unwrap(), "the rip is untouched");
}

/// With `--json`, a run stopped by its configuration still ends on a JSON
/// line saying why (before: nothing on stdout).
#[test]
fn a_configuration_error_ends_a_json_run_on_an_error_event() {
    let t = tempfile::tempdir().unwrap();
    let o = run(drapto(t.path())
        .env("DRAPTO_PRESET", "99")
        .args(["--json", "encode", "-i"])
        .arg(t.path())
        .arg("-o")
        .arg(t.path().join("o")));
    assert_eq!(o.status.code(), Some(3));
    let ev = events(&o);
    let last = ev.last().expect("an event");
    assert_eq!((last["event"].as_str(), last["exit_code"].as_i64()), (Some("error"), Some(3)), "{last}");
    assert!(last["error"].as_str().unwrap().contains("encoding.preset") && last["time"].is_string(), "{last}");
    // So does a command line the parser refuses.
    let o = run(drapto(t.path()).args(["encode", "--json", "--preset", "fast"]));
    assert_eq!(o.status.code(), Some(2));
    let ev = events(&o);
    let last = ev.last().expect("an event");
    assert_eq!((last["event"].as_str(), last["exit_code"].as_i64()), (Some("error"), Some(2)), "{last}");
    assert!(last["error"].as_str().unwrap().contains("--preset"), "{last}");
}

/// Under `-q` a failed rip is said on stderr: `drapto encode -q … >/dev/null`
/// still says which rip failed (before, only on the stdout thrown away).
#[test]
fn a_quiet_run_says_its_failures_on_stderr() {
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("bad.mkv");
    std::fs::write(&bad, "not a film").unwrap();
    let o = run(drapto(t.path()).args(["encode", "-q", "-i"]).arg(&bad).arg("-o").arg(t.path().join("o")));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad.mkv") && stderr(&o).contains("not a readable media file"), "{}", stderr(&o));
}

/// `drapto config` says which file it read, or where it looked for one.
#[test]
fn config_says_which_file_it_read() {
    let t = tempfile::tempdir().unwrap();
    let o = run(drapto(t.path()).arg("config"));
    let first = stdout(&o).lines().next().unwrap_or_default().to_string();
    assert!(first.contains("# configuration file: none") && first.contains("config.toml does not exist"), "{first}");
    let f = t.path().join("mine.toml");
    std::fs::write(&f, "[encoding]\nvmaf_target = 94\n").unwrap();
    let o = run(drapto(t.path()).arg("--config").arg(&f).arg("config"));
    let first = stdout(&o).lines().next().unwrap_or_default().to_string();
    assert_eq!(first, format!("# configuration file: {}", f.display()));
}

/// A rip the walk cannot read (here a link to a rip since moved away; a
/// folder without read permission is the same walk error, but root reads
/// any): the batch goes on, names it under "not encoded now" and is not
/// done. Before, it exited 0. A link back to a folder above is no rip.
#[test]
fn a_rip_the_walk_cannot_read_leaves_the_batch_not_done() {
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in");
    std::fs::create_dir_all(input.join("disc")).unwrap();
    std::fs::copy(simple_clip("small.mkv", "160x120", 1), input.join("good.mkv")).unwrap();
    std::os::unix::fs::symlink(t.path().join("moved away.mkv"), input.join("gone.mkv")).unwrap();
    // A broken link that is no rip by its name is no rip missed.
    std::os::unix::fs::symlink(t.path().join("notes moved.txt"), input.join("notes.txt")).unwrap();
    std::os::unix::fs::symlink(&input, input.join("disc/up")).unwrap();
    let out = t.path().join("out");
    let o = run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&input).arg("-o").arg(&out));
    assert_eq!(o.status.code(), Some(1), "a rip left unencoded: not done: {}", stderr(&o));
    assert!(out.join("good.mkv").exists());
    let done = events(&o).into_iter().find(|e| e["event"] == "batch_complete").unwrap();
    let not_encoded = done["summary"]["not_encoded"].as_array().unwrap();
    assert_eq!(not_encoded.len(), 1, "the loop and notes.txt are no rips: {done}");
    assert!(not_encoded[0][0].as_str().unwrap().ends_with("gone.mkv"), "{done}");
    assert!(not_encoded[0][1].as_str().unwrap().starts_with("cannot be read"), "{done}");
}

/// A Matroska rip under another name (`.webm`, none) comes out as an MKV.
/// Before, the output kept the rip's name: Matroska with subtitles and
/// attachments under `.webm`, or no extension, which media servers skip.
#[test]
fn a_matroska_rip_under_another_name_comes_out_as_mkv() {
    let t = tempfile::tempdir().unwrap();
    let clip = simple_clip("small.mkv", "160x120", 1);
    for name in ["rip.webm", "rip"] {
        let src = t.path().join(name);
        std::fs::copy(&clip, &src).unwrap();
        let out = t.path().join(format!("out-{name}"));
        let o = run(drapto(t.path()).args(["encode", "-q", "--no-chunked", "-i"]).arg(&src).arg("-o").arg(&out));
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let made: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".report.json"))
            .collect();
        assert_eq!(made, ["rip.mkv"], "{name}");
    }
}

/// A rip without a segment UID (every WebM, ffmpeg's bit-exact Matroska)
/// is encoded. Before, every such rip failed validation after its whole
/// encode ("segment_uid (none) became …": mkvmerge gives each file one),
/// on every run.
#[test]
fn a_rip_without_a_segment_uid_is_encoded() {
    let webm = fixture(
        "no_uid.webm",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=25:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-c:a",
            "libopus",
            "-f",
            "webm",
        ],
    );
    let bitexact = fixture(
        "no_uid_bitexact.mkv",
        &["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1", "-c:v", "libx264", "-fflags", "+bitexact"],
    );
    let t = tempfile::tempdir().unwrap();
    for (name, clip) in [("rip.webm", &webm), ("bitexact.mkv", &bitexact)] {
        let uid = mkvmerge_j(clip)["container"]["properties"]["segment_uid"].clone();
        assert!(uid.is_null(), "the test needs a rip without a segment UID: {name} has {uid}");
        let src = t.path().join(name);
        std::fs::copy(clip, &src).unwrap();
        let o = run(drapto(t.path())
            .args(["encode", "-q", "--no-chunked", "-i"])
            .arg(&src)
            .arg("-o")
            .arg(t.path().join("out")));
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
}

/// A rip without a frame count (ffmpeg and HandBrake write none) has the
/// frames encoded and the speed in its summary, from the output's count.
#[test]
fn a_rip_without_a_frame_count_has_its_speed_in_the_summary() {
    let t = tempfile::tempdir().unwrap();
    let src = simple_clip("no_frame_count.mkv", "160x120", 1);
    let tags = ffprobe(&src)["streams"][0]["tags"].to_string();
    assert!(!tags.contains("NUMBER_OF_FRAMES"), "the test needs a rip without a count: {tags}");
    let o = run(drapto(t.path())
        .args(["encode", "--json", "--no-chunked", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("out")));
    assert!(o.status.success(), "{}", stderr(&o));
    let done = events(&o).into_iter().find(|e| e["event"] == "file_complete").unwrap();
    assert_eq!(done["summary"]["frames"], 25, "{done}");
    assert!(done["summary"]["fps"].as_f64().is_some_and(|f| f > 0.0), "{done}");
}

/// A tool that cannot run (its library gone after an upgrade), and an
/// ffmpeg that lists libsvtav1 but cannot encode with it (a CPU the build
/// does not support), are refused at the start with what they said, exit
/// 4. Before, doctor said "ready" and every rip failed, ffprobe's failure
/// blamed on the rip.
#[test]
fn tools_that_cannot_run_are_refused_at_the_start() {
    let t = tempfile::tempdir().unwrap();
    let sh = |name: &str, body: &str| {
        let p = t.path().join(name);
        script(&p, &format!("#!/bin/sh\n{body}\n"));
        p
    };
    let broken = sh(
        "ffprobe",
        "echo 'ffprobe: error while loading shared libraries: libavdevice.so.61: cannot open shared object file' >&2; exit 127",
    );
    let o = run(drapto(t.path()).env("DRAPTO_FFPROBE", &broken).arg("doctor"));
    assert_eq!(o.status.code(), Some(4), "{}", stdout(&o));
    assert!(stdout(&o).contains("libavdevice.so.61"), "{}", stdout(&o));
    // One that may not be run needs its mode, not another ffprobe.
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let o = run(drapto(t.path()).env("DRAPTO_FFPROBE", &broken).arg("doctor"));
    assert_eq!(o.status.code(), Some(4), "{}", stdout(&o));
    assert!(stdout(&o).contains("chmod +x"), "{}", stdout(&o));

    let svt = format!(
        "for a in \"$@\"; do [ \"$a\" = libsvtav1 ] && [ \"$prev\" = -c:v ] && {{ echo 'Svt[error]: CPU lacks AVX2' >&2; exit 1; }}; prev=$a; done\nexec {} \"$@\"",
        ffmpeg().display()
    );
    let ffmpeg = sh("ffmpeg", &svt);
    let src = simple_clip("small.mkv", "160x120", 1);
    let o = encode_with(t.path(), ("DRAPTO_FFMPEG", &ffmpeg), &src);
    assert_eq!(o.status.code(), Some(4));
    let e = stderr(&o);
    assert!(e.contains("cannot encode with it") && e.contains("AVX2"), "{e}");
}

/// An mkvmerge older than the track flags drapto carries (MKVToolNix 57)
/// is refused at the start. It failed every mux, after the whole encode.
#[test]
fn an_mkvmerge_without_the_track_flags_is_refused_at_the_start() {
    let t = tempfile::tempdir().unwrap();
    let old = t.path().join("mkvmerge");
    let text = "#!/bin/sh\ncase \"$1\" in\n--version) echo \"mkvmerge v52.0.0 ('Secret For The Mad') 64-bit\";;\n--help) echo '  --default-track <TID[:bool]>';;\n*) exec mkvmerge \"$@\";;\nesac\n";
    script(&old, text);
    let src = simple_clip("small.mkv", "160x120", 1);
    let o = encode_with(t.path(), ("DRAPTO_MKVMERGE", &old), &src);
    assert_eq!(o.status.code(), Some(4));
    let e = stderr(&o);
    assert!(e.contains("v52.0.0") && e.contains("too old") && e.contains("MKVToolNix 57"), "{e}");
    assert!(!t.path().join("o").exists(), "no work before the check");
}

/// An ffmpeg whose libvmaf refuses the options drapto scores with (an
/// ffmpeg 4's libvmaf 1) has no chunked path, said at the start. Before,
/// the chunked path was chosen and every rip failed at its first score.
#[test]
fn a_libvmaf_that_cannot_score_as_asked_means_no_chunked_path() {
    let t = tempfile::tempdir().unwrap();
    let ffmpeg_path = t.path().join("ffmpeg");
    let text = format!(
        "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in *libvmaf=model=*) echo \"[Parsed_libvmaf_0 @ 0x1] Option 'model' not found\" >&2; exit 1;; esac; done\nexec {} \"$@\"\n",
        ffmpeg().display()
    );
    script(&ffmpeg_path, &text);
    let src = simple_clip("small.mkv", "160x120", 1);
    let o = run(drapto(t.path())
        .env("DRAPTO_FFMPEG", &ffmpeg_path)
        .args(["encode", "--chunked", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("o")));
    assert_eq!(o.status.code(), Some(4));
    let e = stderr(&o);
    assert!(e.contains("libvmaf") && e.contains("Option 'model' not found"), "{e}");
}
