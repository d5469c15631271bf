//! The best picture a UHD disc has: Dolby Vision on the chunked path keeps
//! every frame's RPU, each from its own source frame, in one valid profile
//! 10 stream. Checked frame by frame against the source.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dv_sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Per shown frame of the first video stream, in order: the side data
/// ffmpeg's showinfo prints for it from the line that holds `marker` on.
fn frame_side_data(path: &Path, marker: &str) -> Vec<String> {
    let o = Command::new(ffmpeg())
        // (-nostats: ffmpeg's progress lines, written from another thread,
        // landed inside showinfo's now and then, and a frame's metadata was
        // read as another's: the test failed once in a while.)
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-vf", "showinfo", "-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    let mut frames = Vec::new();
    for line in text.lines() {
        if line.contains("] n:") {
            frames.push(String::new());
        } else if let (Some(last), Some(i)) = (frames.last_mut(), line.find(marker)) {
            last.push_str(&line[i..]);
        }
    }
    frames
}

/// Per shown frame, in order: the Dolby Vision metadata ffmpeg decodes
/// from it (its colour metadata: scene refreshes, source levels).
fn dv_frames(path: &Path) -> Vec<String> {
    frame_side_data(path, "color metadata:")
}

#[test]
fn dolby_vision_takes_the_chunked_path_with_every_frames_own_rpu() {
    if !has_libvmaf() {
        eprintln!("skipped: this ffmpeg has no libvmaf (the chunked path)");
        return;
    }
    for name in ["dv_p8_hdr10_720p.mkv", "dv_p81_144p.mkv"] {
        let src = dv_sample(name);
        let t = tempfile::tempdir().unwrap();
        let o = run(drapto(t.path())
            .args(["encode", "--json", "--chunked", "--chunk-size", "2", "--preset", "12", "-i"])
            .arg(&src)
            .arg("-o")
            .arg(t.path().join("out")));
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let ev = events(&o);
        let plan = &ev.iter().find(|e| e["event"] == "analysis_complete").unwrap()["plan"];
        assert_eq!(plan["path"], "chunked", "{name}");
        assert_eq!(plan["video"]["dolby_vision"], true, "{name}");
        let segments = ev.iter().filter(|e| e["event"] == "segment_complete").count();
        assert!(segments >= 2, "{name}: {segments} segment(s): the test needs several");
        // Probes on samples cut from the source (raw frames, no RPUs) too.
        let cut = ev.iter().any(|e| e["event"] == "segment_step" && e["step"]["kind"] == "sampling");
        assert!(cut, "{name}: no segment was probed on cut samples");

        let out = t.path().join("out").join(name);
        let p = ffprobe(&out);
        let v = streams(&p, "video")[0];
        let rec = v["side_data_list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["side_data_type"] == "DOVI configuration record")
            .expect("one DOVI configuration record");
        assert_eq!((rec["dv_profile"].as_u64(), rec["dv_bl_signal_compatibility_id"].as_u64()), (Some(10), Some(1)));
        assert_eq!((rec["rpu_present_flag"].as_u64(), rec["el_present_flag"].as_u64()), (Some(1), Some(0)));
        let (want, got) = (dv_frames(&src), dv_frames(&out));
        assert_eq!(got.len(), want.len(), "{name}: frames");
        assert!(got.iter().all(|f| !f.is_empty()), "{name}: a frame without its RPU");
        assert!(
            want.windows(2).any(|w| w[0] != w[1]),
            "{name}: the source's RPUs must differ for the test to mean anything"
        );
        if got != want {
            // Intermittent once in CI (unreproduced since): say where.
            let wrong: Vec<usize> = (0..want.len()).filter(|&i| got[i] != want[i]).collect();
            let from = |i: usize| want.iter().position(|w| *w == got[i]);
            let moved: Vec<_> = wrong.iter().take(12).map(|&i| (i, from(i))).collect();
            let spans: Vec<_> = ev
                .iter()
                .filter(|e| e["event"] == "segment_complete")
                .map(|e| (e["start_frame"].as_u64(), e["frames"].as_u64(), e["crf"].as_f64()))
                .collect();
            panic!(
                "{name}: {} of {} frames carry another frame's RPU; (frame, first source frame with that RPU): \
                 {moved:?}; segments (start, frames, crf): {spans:?}",
                wrong.len(),
                want.len()
            );
        }
        let mi = Command::new("mediainfo").arg(&out).output().unwrap();
        let mi = String::from_utf8_lossy(&mi.stdout);
        assert!(mi.contains("dav1.10") && mi.contains("HDR10 compatible"), "{mi}");
    }
}

/// Per shown frame, in order: its HDR10+ metadata as ffmpeg decodes it.
fn hdr10plus_frames(path: &Path) -> Vec<String> {
    frame_side_data(path, "SMPTE2094-40 (HDR10+):")
}

/// 2 s of PQ video in HEVC with HDR10+ metadata that differs on every
/// frame (libx265's dhdr10-info), with B-frames (decode order is not
/// presentation order); `letterbox`: black bars above and below.
fn hdr10plus_clip(letterbox: bool) -> PathBuf {
    let name = if letterbox { "hdr10plus_letterbox.mkv" } else { "hdr10plus.mkv" };
    hdr10plus_source(name, 2, letterbox, "")
}

/// `seconds` of such video at 24 fps, with `x265` options added, as `name`.
fn hdr10plus_source(name: &str, seconds: u32, letterbox: bool, x265: &str) -> PathBuf {
    let frames = seconds * 24;
    let scenes: Vec<serde_json::Value> = (0..frames)
        .map(|i| {
            serde_json::json!({
                "LuminanceParameters": {
                    "AverageRGB": 100 + i * 7,
                    "LuminanceDistributions": {
                        "DistributionIndex": [1, 5, 10, 25, 50, 75, 90, 95, 99],
                        "DistributionValues": [0, 10 + i, 20 + i, 40 + i, 80 + i, 160 + i, 320 + i, 640 + i, 1280 + i]
                    },
                    "MaxScl": [2000 + i * 10, 1900 + i * 10, 1800 + i * 10]
                },
                "NumberOfWindows": 1,
                "TargetedSystemDisplayMaximumLuminance": 0,
                "SceneFrameIndex": i,
                "SceneId": 0,
                "SequenceFrameIndex": i
            })
        })
        .collect();
    let meta = serde_json::json!({
        "JSONInfo": {"HDR10plusProfile": "A", "Version": "1.0"},
        "SceneInfo": scenes,
        "SceneInfoSummary": {"SceneFirstFrameIndex": [0], "SceneFrameNumbers": [frames]},
        "ToolInfo": {"Tool": "drapto tests", "Version": "1"}
    });
    let json = text_file(&format!("{name}.json"), &meta.to_string());
    let bars = if letterbox { ",scale=320:160,pad=320:240:0:40" } else { "" };
    let vf =
        format!("setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc{bars},format=yuv420p10le");
    let x265 = format!(
        "hdr10=1:repeat-headers=1:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:\
         master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400:\
         dhdr10-info={}:bframes=3:log-level=error{x265}",
        json.display()
    );
    let src = format!("testsrc2=size=320x240:rate=24:duration={seconds}");
    fixture(
        name,
        &["-f", "lavfi", "-i", &src, "-vf", &vf, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", &x265],
    )
}

#[test]
fn hdr10plus_is_carried_frame_by_frame_on_both_paths_and_through_a_crop() {
    let mut runs = vec![(false, vec!["--no-chunked"]), (true, vec!["--no-chunked"])];
    if has_libvmaf() {
        runs.push((false, vec!["--chunked", "--chunk-size", "1"]));
    }
    for (letterbox, args) in runs {
        let src = hdr10plus_clip(letterbox);
        let want = hdr10plus_frames(&src);
        assert_eq!(want.len(), 48);
        assert!(want.iter().all(|f| !f.is_empty()) && want[0] != want[1], "the source has its own metadata per frame");
        let t = tempfile::tempdir().unwrap();
        let o = run(drapto(t.path()).args(["analyze", "--json"]).arg(&src));
        let a: serde_json::Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
        assert_eq!(a["analysis"]["hdr"]["hdr10_plus"]["windows"], 1);
        assert_eq!(a["analysis"]["crop"]["crop"].is_null(), !letterbox, "{letterbox}: {}", a["analysis"]["crop"]);

        let o = encode_json(t.path(), &src, &args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let ev = events(&o);
        let v = ev.iter().find(|e| e["event"] == "validation_complete").unwrap();
        let check = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "hdr10+").expect("an hdr10+ check");
        assert_eq!(check["passed"], true);
        // The container's static metadata too (the chunked path wrote a
        // minimum of 0.001288 nits for 0.0001).
        for name in ["hdr10 mastering display", "hdr10 content light"] {
            let check = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).expect(name);
            assert_eq!(check["passed"], true, "{args:?} {name}: {}", check["detail"]);
        }
        let out = t.path().join("out").join(src.file_name().unwrap());
        assert_eq!(hdr10plus_frames(&out), want, "{letterbox} {args:?}: every frame's own metadata");
        if letterbox {
            assert_eq!(streams(&ffprobe(&out), "video")[0]["height"], 160, "the picture was cropped");
        }
    }
}

/// A rip cut at an open GOP (an HEVC CRA whose leading RASL pictures lost
/// their references with the stream before; decoders drop them): both paths
/// encode the frames a decoder shows, each with its own metadata (before,
/// the chunked path failed its frame count and both failed the HDR10+ carry
/// on the dropped pictures).
#[test]
fn a_rip_starting_on_an_open_gop_keeps_every_shown_frame_and_its_hdr10plus() {
    let full = hdr10plus_source("hdr10plus_open_gop.mkv", 6, false, ":open-gop=1:keyint=48:min-keyint=48:scenecut=0");
    let t = tempfile::tempdir().unwrap();
    // Cut alone, the leading pictures have no time; with a track starting
    // at 0 beside it, times before their keyframe's.
    let with_audio: &[&str] = &["-f", "lavfi", "-i", "sine=duration=4", "-map", "1", "-c:a", "aac"];
    for (name, more) in [("cut.mkv", &[][..]), ("cut_with_audio.mkv", with_audio)] {
        let src = t.path().join(name);
        let cut = Command::new(ffmpeg())
            // Lands on the keyframe at 2 s.
            .args(["-v", "error", "-ss", "3.0", "-i"])
            .arg(&full)
            .args(more)
            .args(["-map", "0", "-c:v", "copy"])
            .arg(&src)
            .status()
            .unwrap();
        assert!(cut.success());
        let want = hdr10plus_frames(&src);
        let packets = packet_count(&src);
        assert!(want.len() < packets, "{name} starts with pictures the decoder drops: {} of {packets}", want.len());
        assert!(want.iter().all(|f| !f.is_empty()), "{name}: every shown frame has HDR10+");
        for args in [vec!["--no-chunked"], vec!["--chunked", "--chunk-size", "1"]] {
            let t = tempfile::tempdir().unwrap();
            let o = encode_json(t.path(), &src, &args);
            assert!(o.status.success(), "{name} {args:?}: {}", stderr(&o));
            let out = t.path().join("out").join(name);
            assert_eq!(frame_count(&out), want.len() as u64, "{name} {args:?}");
            assert!(hdr10plus_frames(&out) == want, "{name} {args:?}: every shown frame's own metadata");
        }
    }
}

/// An HDR10+ rip whose last frame stays on screen for 4 s: the carry
/// keeps both the metadata and the hold (it rewrites the video's
/// timestamps, which gave the last frame one frame's duration).
#[test]
fn a_held_last_frame_keeps_its_hold_through_the_hdr10plus_carry() {
    let t = tempfile::tempdir().unwrap();
    let stamps = text_file("hdr10plus_held.txt", "# timestamp format v1\nassume 24\n47,47,0.25\n");
    let src = t.path().join("held.mkv");
    let mut ts = std::ffi::OsString::from("0:");
    ts.push(&stamps);
    let ok = Command::new("mkvmerge")
        .args(["-q", "-o"])
        .arg(&src)
        .arg("--timestamps")
        .arg(ts)
        .arg(hdr10plus_clip(false))
        .status()
        .unwrap();
    assert!(ok.success());
    let end = |p: &Path| packet_ends(p, "v:0").into_iter().fold(0.0, f64::max);
    assert!((end(&src) - 5.958).abs() < 0.01, "{}", end(&src));
    let want = hdr10plus_frames(&src);
    let o = encode_json(t.path(), &src, &["--no-chunked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = t.path().join("out/held.mkv");
    assert!(hdr10plus_frames(&out) == want, "every frame's own metadata");
    assert!((end(&out) - end(&src)).abs() < 0.01, "the video ends at {} s, the rip's at {} s", end(&out), end(&src));
}

#[test]
fn hdr10plus_through_inverse_telecine_is_a_loss_said_before_the_encode() {
    // Inverse telecine drops frames, and HDR10+ is frame by frame: the
    // carry would fail once the whole encode was done. (At NTSC video's
    // rate: a forced ivtc holds only where 3:2 pulldown can be.)
    let t = tempfile::tempdir().unwrap();
    let ts = t.path().join("ntsc.txt");
    std::fs::write(&ts, "# timestamp format v1\nassume 29.970\n").unwrap();
    let src = t.path().join("ntsc.mkv");
    let ok = Command::new("mkvmerge")
        .args(["-q", "-o"])
        .arg(&src)
        .arg("--timestamps")
        .arg(format!("0:{}", ts.display()))
        .arg(hdr10plus_clip(false))
        .status()
        .unwrap();
    assert!(ok.success());
    let o = run(drapto(t.path()).args(["analyze", "--json", "--interlace", "ivtc"]).arg(&src));
    assert!(!o.status.success());
    assert!(stdout(&o).contains("HDR10+") || stderr(&o).contains("HDR10+"), "{}{}", stdout(&o), stderr(&o));
    let o = encode_json(t.path(), &src, &["--no-chunked", "--interlace", "ivtc", "--on-loss", "warn"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = events(&o);
    let a = ev.iter().find(|e| e["event"] == "analysis_complete").unwrap();
    assert!(a["analysis"]["hdr"]["hdr10_plus"].is_null());
    let said = a["analysis"]["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("HDR10+"));
    assert!(said, "{}", a["analysis"]["warnings"]);
    assert!(!ev.iter().any(|e| e["event"] == "stage_started" && e["stage"]["kind"] == "hdr10plus"));
}
