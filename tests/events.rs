//! What people and programs see: the `--json` event sequence, the plain
//! terminal output of a small batch, the log file and the per-file report.

mod common;

use common::*;
use serde_json::Value;

fn kinds(ev: &[Value]) -> Vec<String> {
    ev.iter().map(|e| e["event"].as_str().unwrap().to_string()).filter(|k| k != "progress").collect()
}

#[test]
fn json_events_of_a_good_and_a_broken_file() {
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(simple_clip("small.mkv", "320x240", 2), input.join("a.mkv")).unwrap();
    std::fs::write(input.join("b.mkv"), b"not a film").unwrap();
    let o = run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&input).arg("-o").arg(t.path().join("out")));
    assert_eq!(o.status.code(), Some(1));
    let ev = events(&o);
    for e in &ev {
        assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')), "every event has a time: {e}");
    }
    let k = kinds(&ev);
    let expected = [
        "batch_started",
        "file_started",
        "stage_started",
        "stage_complete",
        "analysis_complete",
        "stage_started",
        "stage_complete",
        "stage_started",
        "stage_complete",
        "stage_started",
        "stage_complete",
        "validation_complete",
        "file_complete",
        "file_started",
        "stage_started",
        "file_failed",
        "batch_complete",
    ];
    assert_eq!(k, expected);
    assert!(ev.iter().any(|e| e["event"] == "progress" && e["percent"].as_f64().is_some()));
    let done = ev.iter().find(|e| e["event"] == "file_complete").unwrap();
    let s = &done["summary"];
    for field in ["input_bytes", "output_bytes", "reduction_percent", "encode_seconds", "speed", "resources"] {
        assert!(!s[field].is_null(), "summary.{field}");
    }
    assert!(s["resources"]["peak_memory_bytes"].as_u64().unwrap() > 0);
    let batch = &ev.last().unwrap()["summary"];
    assert_eq!(batch["files"].as_array().unwrap().len(), 1);
    assert_eq!(batch["failed"].as_array().unwrap().len(), 1);
}

/// Digits vary from run to run; the shape of the output must not.
fn skeleton(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("video ") || !l.contains('%'))
        .map(|l| {
            let mut out = String::new();
            let mut last_digit = false;
            for c in l.chars() {
                if c.is_ascii_digit() {
                    if !last_digit {
                        out.push('#');
                    }
                    last_digit = true;
                } else {
                    out.push(c);
                    last_digit = false;
                }
            }
            out.trim_end().to_string()
        })
        .filter(|l| !l.contains("  audio # #%") && !l.contains("  mux #%") && !l.contains("  mux  #%"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn plain_output_of_a_small_batch() {
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(simple_clip("small.mkv", "320x240", 2), input.join("good.mkv")).unwrap();
    std::fs::write(input.join("empty.mkv"), b"").unwrap();
    let o = run(drapto(t.path()).args(["encode", "-i"]).arg(&input).arg("-o").arg(t.path().join("out")));
    let text = stdout(&o).replace(&t.path().display().to_string(), "<tmp>");
    let got = skeleton(&text);
    let expected =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/plain_batch.txt")).unwrap();
    // Progress lines depend on timing; compare everything else.
    let strip = |s: &str| s.lines().filter(|l| !l.contains("fps,")).map(str::to_string).collect::<Vec<_>>().join("\n");
    assert_eq!(strip(&got), strip(expected.trim_end()), "plain output changed:\n{got}");
    assert!(!text.contains('\x1b'), "no colour codes when NO_COLOR is set");
}

#[test]
fn log_file_and_report_hold_the_details() {
    let t = tempfile::tempdir().unwrap();
    let src = simple_clip("small.mkv", "320x240", 2);
    let out_dir = t.path().join("out");
    let o = run(drapto(t.path()).args(["encode", "-q", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success());
    let logs: Vec<_> = std::fs::read_dir(t.path().join("work/logs")).unwrap().map(|e| e.unwrap().path()).collect();
    let log = logs.iter().find(|p| p.file_name().unwrap().to_string_lossy().starts_with("encode_")).expect("run log");
    let text = std::fs::read_to_string(log).unwrap();
    let first = text.lines().next().unwrap();
    assert!(first.starts_with('[') && first.contains("Z] INFO: "), "design's format: {first}");
    assert!(text.contains("Looking at ") && text.contains("Encode complete"));
    assert!(text.contains("-c:v libsvtav1 -preset 13"), "child command lines are logged");
    assert!(text.contains("check video: ok"));

    let report: Value = serde_json::from_slice(&std::fs::read(out_dir.join("small.mkv.report.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "encoded");
    assert_eq!(report["analysis"]["resolution"], "SD");
    assert_eq!(report["plan"]["video"]["crf"], 25);
    let stages: Vec<&str> = report["stages"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["analysis", "video", "audio 1", "mux"]);
    assert!(report["validation"].as_array().unwrap().iter().all(|c| c["passed"] == true));
    let s = &report["summary"];
    assert!(s["output_bytes"].as_u64().unwrap() > 1024 && s["speed"].as_f64().unwrap() > 0.0);
    assert!(s["resources"]["cpu_seconds"].as_f64().unwrap() > 0.0);
    // The library tracking files (the design's encode_data) gained a line each.
    for f in ["encoded_files.txt", "encoding_times.txt", "input_sizes.txt", "output_sizes.txt"] {
        let text = std::fs::read_to_string(t.path().join("work/encode_data").join(f)).unwrap();
        assert_eq!(text.lines().count(), 1, "{f}");
        assert!(text.starts_with(&src.display().to_string()));
    }
}

#[test]
fn a_failure_report_says_when_and_goes_once_the_rip_is_encoded() {
    let t = tempfile::tempdir().unwrap();
    let lib = t.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(lib.join("film.mkv"), b"not a film yet").unwrap();
    let encode = || run(drapto(t.path()).args(["encode", "-q", "-i"]).arg(&lib).arg("-o").arg(t.path().join("out")));
    assert_eq!(encode().status.code(), Some(1));
    let logs = t.path().join("work/logs");
    let reports = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&logs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".failed.report.json"))
            .collect()
    };
    let failed = reports();
    assert_eq!(failed.len(), 1);
    let report: Value = serde_json::from_slice(&std::fs::read(&failed[0]).unwrap()).unwrap();
    let at = report["failed_at"].as_str().expect("when it failed");
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    std::fs::copy(simple_clip("small.mkv", "320x240", 2), lib.join("film.mkv")).unwrap();
    assert!(encode().status.success());
    assert!(reports().is_empty(), "the rip is encoded now");
}
