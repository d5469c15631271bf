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

/// Per shown frame, in order: the Dolby Vision metadata ffmpeg decodes
/// from it (its colour metadata: scene refreshes, source levels).
fn dv_frames(path: &Path) -> Vec<String> {
    let o = Command::new(ffmpeg())
        .args(["-hide_banner", "-i"])
        .arg(path)
        .args(["-vf", "showinfo", "-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    let mut frames = Vec::new();
    for line in text.lines() {
        if line.contains("] n:") {
            frames.push(String::new());
        } else if let (Some(last), Some(i)) = (frames.last_mut(), line.find("color metadata:")) {
            last.push_str(&line[i..]);
        }
    }
    frames
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
            .args(["encode", "--json", "--chunked", "--chunk-size", "1", "--preset", "12", "-i"])
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
        assert_eq!(got, want, "{name}: every frame's RPU is its own source frame's");
        let mi = Command::new("mediainfo").arg(&out).output().unwrap();
        let mi = String::from_utf8_lossy(&mi.stdout);
        assert!(mi.contains("dav1.10") && mi.contains("HDR10 compatible"), "{mi}");
    }
}
