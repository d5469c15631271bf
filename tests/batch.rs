//! A library run: bad rips fail alone and the batch goes on; a broken setup
//! (an encoder that always fails) opens the circuit breaker, one trial file
//! after the reset time, then the batch stops.

mod common;

use common::*;
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

/// An ffmpeg in `dir` that runs the shell line `on_video_encode` when asked
/// to encode a rip with libsvtav1, and is the real ffmpeg for everything
/// else (after that line, unless it exits), the start-up check's one-frame
/// test encode included.
fn wrapped_ffmpeg(dir: &Path, on_video_encode: &str) -> std::path::PathBuf {
    let fake = dir.join("ffmpeg");
    let text = format!(
        "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in color=s=64x64*) exec '{0}' \"$@\";; esac; done\nfor a in \"$@\"; do [ \"$a\" = libsvtav1 ] && {{ {on_video_encode}; }}; done\nexec '{0}' \"$@\"\n",
        ffmpeg().display()
    );
    script(&fake, &text);
    fake
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
    // The real ffmpeg for everything but encoding video, which crashes.
    let fake = wrapped_ffmpeg(t.path(), "echo 'Segmentation fault' >&2; exit 139");
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

/// The run log of the one run that wrote into `logs`.
fn run_log(logs: &Path) -> String {
    let entry = std::fs::read_dir(logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("encode_"));
    std::fs::read_to_string(entry.expect("a run log")).unwrap()
}

#[test]
fn max_cpu_bounds_the_standard_path_threads() {
    let t = tempfile::tempdir().unwrap();
    let src = simple_clip("batch_good.mkv", "160x120", 1);
    let logs = t.path().join("logs");
    let o = run(drapto(t.path())
        .env("DRAPTO_MAX_CPU", "50")
        .env("DRAPTO_LOG_DIR", &logs)
        .args(["encode", "--no-chunked", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("out")));
    assert!(o.status.success(), "{}", stderr(&o));
    let cores = std::thread::available_parallelism().unwrap().get();
    let share = ((cores as f64) * 0.5).round().max(1.0) as usize;
    let log = run_log(&logs);
    let encode =
        log.lines().find(|l| l.contains("libsvtav1") && l.contains("-crf")).expect("the video encode's command line");
    assert!(encode.contains(&format!(":lp={share}")), "{encode}");
    assert!(encode.contains(&format!("-threads {share} -filter_threads {share}")), "{encode}");
}

// Linux only: the child's niceness and I/O class are read from /proc and
// ionice (macOS has neither; its I/O policy is set by platform.rs alike).
#[cfg(target_os = "linux")]
#[test]
fn responsive_runs_every_child_at_low_cpu_and_idle_io_priority() {
    let t = tempfile::tempdir().unwrap();
    let src = simple_clip("batch_good.mkv", "160x120", 1);
    let seen = t.path().join("priority.txt");
    // The real ffmpeg, after noting the encoder's niceness and I/O class.
    let fake = wrapped_ffmpeg(
        t.path(),
        &format!("echo \"nice $(cut -d' ' -f19 /proc/$$/stat) io $(ionice -p $$)\" >> '{}'", seen.display()),
    );
    let o = run(drapto(t.path())
        .env("DRAPTO_FFMPEG", &fake)
        .args(["encode", "--responsive", "--no-chunked", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("out")));
    assert!(o.status.success(), "{}", stderr(&o));
    let noted = std::fs::read_to_string(&seen).unwrap();
    assert!(noted.lines().next().unwrap().starts_with("nice 10 io idle"), "{noted}");
}

#[test]
fn clean_reports_and_prunes_the_history() {
    let t = tempfile::tempdir().unwrap();
    let logs = t.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let old = logs.join("encode_20250101_000000.log");
    let recent = logs.join("encode_20261130_000000.log");
    for (p, days) in [(&old, 200u64), (&recent, 1)] {
        std::fs::write(p, b"a run\n").unwrap();
        let f = std::fs::File::options().write(true).open(p).unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(days * 86_400)).unwrap();
    }
    let tracking = t.path().join("work/encode_data");
    std::fs::create_dir_all(&tracking).unwrap();
    let lines: String = (1..=20).map(|i| format!("/rips/{i}.mkv\t/out/{i}.mkv\n")).collect();
    std::fs::write(tracking.join("encoded_files.txt"), lines).unwrap();
    let o = run(drapto(t.path()).env("DRAPTO_LOG_DIR", &logs).env("DRAPTO_TRACKING_KEEP_ENTRIES", "5").arg("clean"));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("1 log(s) and report(s) kept") && out.contains("1 removed"), "{out}");
    assert!(out.contains("15 old tracking entries dropped") && out.contains("90 days"), "{out}");
    assert!(!old.exists() && recent.exists());
    let left = std::fs::read_to_string(tracking.join("encoded_files.txt")).unwrap();
    assert_eq!(left.lines().count(), 5);
    assert!(left.starts_with("/rips/16.mkv"), "the newest are kept: {left}");
    // --json: one line a script reads.
    let o = run(drapto(t.path()).env("DRAPTO_LOG_DIR", &logs).args(["clean", "--json"]));
    let line: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(line["event"], "clean_complete");
    assert_eq!(line["history"]["kept_files"], 1);
}

#[test]
fn a_rip_deleted_while_the_batch_runs_is_skipped_and_its_folder_gone_fails() {
    // The user thins the queue while the first rip encodes: the deleted
    // rip is no failure ("cannot resolve: No such file or directory",
    // exit 1, a failure report); a rip whose whole folder went (a share
    // unmounted) still is.
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("rips");
    std::fs::create_dir_all(dir.join("gone folder")).unwrap();
    let clip = simple_clip("batch_good.mkv", "160x120", 1);
    for n in ["a.mkv", "b.mkv", "gone folder/c.mkv"] {
        std::fs::copy(&clip, dir.join(n)).unwrap();
    }
    let (b, folder) = (dir.join("b.mkv"), dir.join("gone folder"));
    let fake = wrapped_ffmpeg(t.path(), &format!("rm -rf '{}' '{}'", b.display(), folder.display()));
    let (o, ev) = batch(t.path(), &dir, &[("DRAPTO_FFMPEG", fake.to_str().unwrap())]);
    assert_eq!(o.status.code(), Some(1), "the rip of the folder gone failed");
    let s = summary(&ev);
    assert_eq!((count(&s["files"]), count(&s["skipped"]), count(&s["failed"])), (1, 1, 1), "{s}");
    let skipped = ev.iter().find(|e| e["event"] == "file_skipped").expect("skipped");
    assert_eq!(skipped["input"].as_str(), b.to_str());
    assert!(skipped["reason"].as_str().unwrap().contains("deleted or moved since the batch began"), "{skipped}");
}

#[test]
fn a_file_put_under_the_outputs_name_during_the_encode_is_never_replaced() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("clip.mkv");
    std::fs::copy(simple_clip("appear.mkv", "160x120", 1), &src).unwrap();
    let out = t.path().join("out").join("clip.mkv");
    // Hours of encode: the user copies a file of their own there meanwhile.
    let fake = wrapped_ffmpeg(t.path(), &format!("[ -e '{0}' ] || echo mine > '{0}'", out.display()));
    let (o, ev) = batch(t.path(), &src, &[("DRAPTO_FFMPEG", fake.to_str().unwrap())]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let failed = ev.iter().find(|e| e["event"] == "file_failed").expect("file_failed");
    assert!(failed["error"].as_str().unwrap().contains("appeared while the rip was encoded"), "{failed}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "mine\n", "the user's file is left as it is");
    let kept = t.path().join("out/clip.mkv.failed");
    assert_eq!(failed["kept"].as_str(), kept.to_str());
    assert_eq!(streams(&ffprobe(&kept), "video")[0]["codec_name"], "av1", "the encode is kept beside it");
    // The user moves their file away: the run after puts the encode in place.
    std::fs::rename(&out, t.path().join("mine.mkv")).unwrap();
    let (o, _) = batch(t.path(), &src, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(streams(&ffprobe(&out), "video")[0]["codec_name"], "av1");
    assert!(!kept.exists());
}

#[test]
fn a_linked_rip_pointed_at_another_version_during_the_encode_is_a_change() {
    let t = tempfile::tempdir().unwrap();
    let (v1, v2) = (t.path().join("v1.mkv"), t.path().join("v2.mkv"));
    std::fs::copy(simple_clip("version1.mkv", "160x120", 1), &v1).unwrap();
    std::fs::copy(simple_clip("version2.mkv", "160x120", 1), &v2).unwrap();
    let lib = t.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let link = lib.join("film.mkv");
    std::os::unix::fs::symlink(&v1, &link).unwrap();
    // A symlink farm's way of replacing a rip: the link re-pointed.
    let fake = wrapped_ffmpeg(t.path(), &format!("ln -sfn '{}' '{}'", v2.display(), link.display()));
    let (o, ev) = batch(t.path(), &lib, &[("DRAPTO_FFMPEG", fake.to_str().unwrap())]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let failed = ev.iter().find(|e| e["event"] == "file_failed").expect("file_failed");
    assert!(failed["error"].as_str().unwrap().contains("changed while it was being encoded"), "{failed}");
    assert!(!t.path().join("out/film.mkv").exists(), "no output mixes the two versions");
}

#[test]
fn a_run_that_only_looks_leaves_no_log_and_rotates_none_away() {
    let t = tempfile::tempdir().unwrap();
    let logs = t.path().join("logs");
    let lib = t.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(simple_clip("batch_good.mkv", "160x120", 1), lib.join("film.mkv")).unwrap();
    let encode = || {
        run(drapto(t.path())
            .env("DRAPTO_LOG_DIR", &logs)
            .env("DRAPTO_LOG_KEEP_RUNS", "1")
            .args(["encode", "--no-chunked", "-q", "-i"])
            .arg(&lib)
            .arg("-o")
            .arg(t.path().join("out")))
    };
    let names = || -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(&logs).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    };
    assert!(encode().status.success());
    let first = names();
    assert_eq!(first.len(), 1, "{first:?}");
    let log = std::fs::read_to_string(logs.join(&first[0])).unwrap();
    assert!(log.lines().next().unwrap().contains("INFO: drapto "), "its header: {log}");
    // Every rip already encoded: this run's log goes, the earlier stays
    // (one run kept: this one was counted, and the earlier went).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(encode().status.success());
    assert_eq!(names(), first);
}
