//! A library run: bad rips fail alone and the batch goes on; a broken setup
//! (an encoder that always fails) opens the circuit breaker, one trial file
//! after the reset time, then the batch stops.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn batch(t: &Path, inputs: &Path, extra: &[(&str, &str)]) -> (std::process::Output, Vec<serde_json::Value>) {
    let mut c = drapto(t);
    c.args(["encode", "--json", "-i"]).arg(inputs).arg("-o").arg(t.join("out"));
    for (k, v) in extra {
        c.env(k, v);
    }
    let o = run(&mut c);
    let ev = events(&o);
    (o, ev)
}

fn summary(ev: &[serde_json::Value]) -> &serde_json::Value {
    &ev.iter().find(|e| e["event"] == "batch_complete").expect("batch_complete")["summary"]
}

fn count(v: &serde_json::Value) -> usize {
    v.as_array().unwrap().len()
}

#[test]
fn bad_rips_fail_alone_and_the_good_ones_are_encoded() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("rips");
    std::fs::create_dir_all(&dir).unwrap();
    // Three bad inputs first (name order), then two good ones.
    std::fs::write(dir.join("a_empty.mkv"), b"").unwrap();
    std::fs::write(dir.join("b_text.mkv"), b"this is not a film\n").unwrap();
    let audio_only = fixture("batch_audio_only.mkv", &["-f", "lavfi", "-i", "sine=duration=1", "-c:a", "flac"]);
    std::fs::copy(audio_only, dir.join("c_no_video.mkv")).unwrap();
    let good = simple_clip("batch_good.mkv", "160x120", 1);
    std::fs::copy(&good, dir.join("d_good.mkv")).unwrap();
    std::fs::copy(&good, dir.join("e_good.mkv")).unwrap();
    let (o, ev) = batch(t.path(), &dir, &[]);
    assert_eq!(o.status.code(), Some(1), "a file failed");
    let s = summary(&ev);
    assert_eq!((count(&s["failed"]), count(&s["files"]), count(&s["not_started"])), (3, 2, 0), "{s}");
    assert!(t.path().join("out/d_good.mkv").exists() && t.path().join("out/e_good.mkv").exists());
}

#[test]
fn an_encoder_that_always_fails_opens_the_breaker_and_stops_the_batch() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("rips");
    std::fs::create_dir_all(&dir).unwrap();
    let good = simple_clip("batch_good.mkv", "160x120", 1);
    for n in 1..=6 {
        std::fs::copy(&good, dir.join(format!("film{n}.mkv"))).unwrap();
    }
    // The real ffmpeg for everything but encoding video.
    let fake = t.path().join("ffmpeg");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = libsvtav1 ] && {{ echo 'Segmentation fault' >&2; exit 139; }}; done\nexec '{}' \"$@\"\n",
            ffmpeg().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (o, ev) = batch(t.path(), &dir, &[("DRAPTO_FFMPEG", fake.to_str().unwrap()), ("DRAPTO_BREAKER_RESET", "0")]);
    assert_eq!(o.status.code(), Some(1));
    let s = summary(&ev);
    // Three failures open it; the trial (the fourth) fails: the rest wait.
    assert_eq!((count(&s["failed"]), count(&s["not_started"])), (4, 2), "{s}");
    let warnings: Vec<&str> =
        ev.iter().filter(|e| e["event"] == "warning").filter_map(|e| e["message"].as_str()).collect();
    assert!(warnings.iter().any(|w| w.contains("point at the setup")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("stopping the batch (2 file(s) not started)")), "{warnings:?}");
}
