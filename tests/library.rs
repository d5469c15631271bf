//! drapto in charge of a library: a nested tree with what real libraries
//! hold besides rips encodes exactly its rips, to mirrored paths; an output
//! that would outgrow its rip stops early; notifications reach a real HTTP
//! server on the loopback address (and a dead one delays nothing).

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn put(root: &Path, rel: &str, from: &Path) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::copy(from, &p).unwrap();
    p
}

fn write(root: &Path, rel: &str, bytes: &[u8]) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_nested_library_encodes_exactly_its_rips_to_mirrored_paths() {
    let t = tempfile::tempdir().unwrap();
    let lib = t.path().join("lib");
    let film = simple_clip("small.mkv", "320x240", 2); // about 200 KB
    let extra = simple_clip("batch_good.mkv", "160x120", 1); // about 55 KB
    let heat = put(&lib, "Movies/Heat (1995)/Heat (1995).mkv", &film);
    put(&lib, "Movies/Heat (1995)/Extras/Trailer.mkv", &extra);
    write(&lib, "Movies/Heat (1995)/Heat (1995).en.srt", b"1\n00:00:00,000 --> 00:00:01,000\nHi\n");
    write(&lib, "Movies/Heat (1995)/poster.jpg", b"not really a jpeg");
    put(&lib, "TV/The Wire/Season 01/S01E01.mkv", &film);
    put(&lib, "TV/The Wire/Season 01/S01E02.mkv.part", &film);
    put(&lib, ".Trash/Old.mkv", &film);
    write(&lib, "notes.txt", b"x");
    // The output folder inside the library is never taken for part of it.
    let out = lib.join("encodes");
    put(&out, "Earlier/Encode.mkv", &film);
    let before = fingerprint(&heat);
    let flags = ["--min-size", "100KB", "--copy-sidecars"];

    let o =
        run(drapto(t.path()).args(["encode", "--json", "--dry-run", "-i"]).arg(&lib).arg("-o").arg(&out).args(flags));
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = events(&o);
    let action = |rel: &str| {
        let l = lines.iter().find(|l| l["input"].as_str().unwrap().ends_with(rel)).unwrap_or_else(|| panic!("{rel}"));
        (l["action"].as_str().unwrap().to_string(), l["reason"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(action("Heat (1995).mkv").0, "encode");
    assert_eq!(action("S01E01.mkv").0, "encode");
    assert!(action("Trailer.mkv").1.contains("below input.min_size"));
    assert!(action("S01E02.mkv.part").1.contains("unfinished"));
    assert!(action("notes.txt").1.contains("file_pattern"));
    // The sidecars the run copies beside the outputs (they were said to be
    // skipped for the file pattern).
    assert_eq!(action("Heat (1995).en.srt").0, "copy");
    let srt = lines.iter().find(|l| l["input"].as_str().unwrap().ends_with("Heat (1995).en.srt")).unwrap();
    assert!(srt["sidecar_of"].as_str().unwrap().ends_with("Heat (1995).mkv"), "{srt}");
    assert_eq!(action("poster.jpg").0, "copy");
    assert!(!lines.iter().any(|l| l["input"].as_str().unwrap().contains("Old.mkv")), "hidden folders are not walked");
    assert!(!lines.iter().any(|l| l["input"].as_str().unwrap().contains("encodes")), "nor is the output folder");
    assert!(!out.join("Movies").exists(), "a dry run encodes nothing");
    assert!(!t.path().join("work").exists(), "nor makes a temporary folder");
    // Nor prunes the history a run would (it removed old logs, failed
    // files' reports and tracking without a word).
    let logs = t.path().join("kept/logs");
    std::fs::create_dir_all(&logs).unwrap();
    let old = ["encode_20250101_000000.log", "encode_20250102_000000.log", "film.failed.report.json"];
    for name in old {
        std::fs::write(logs.join(name), b"x").unwrap();
        let f = std::fs::File::options().write(true).open(logs.join(name)).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)).unwrap();
    }
    let mut c = drapto(t.path());
    c.env("DRAPTO_TEMP_DIR", t.path().join("kept")).env("DRAPTO_LOG_KEEP_RUNS", "1");
    assert!(run(c.args(["encode", "--dry-run", "-i"]).arg(&lib).arg("-o").arg(&out).args(flags)).status.success());
    for name in old {
        assert!(logs.join(name).exists(), "{name} kept by the dry run");
    }

    // A poster the user chose, already beside where the output goes.
    let own = out.join("Movies/Heat (1995)/poster.jpg");
    std::fs::create_dir_all(own.parent().unwrap()).unwrap();
    std::fs::write(&own, b"the user's own poster").unwrap();
    let o = run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&lib).arg("-o").arg(&out).args(flags));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fingerprint(&heat), before, "inputs are only read");
    assert_eq!(std::fs::read(&own).unwrap(), b"the user's own poster", "never replaced");
    let said = events(&o).into_iter().any(|e| e["event"] == "warning" && e["message"].to_string().contains("kept"));
    assert!(said, "the user is told");
    let outputs: Vec<String> = tree(&out).into_iter().filter(|p| !p.ends_with(".report.json")).collect();
    assert_eq!(
        outputs,
        [
            "Earlier/Encode.mkv",
            "Movies/Heat (1995)/Heat (1995).en.srt",
            "Movies/Heat (1995)/Heat (1995).mkv",
            "Movies/Heat (1995)/poster.jpg",
            "TV/The Wire/Season 01/S01E01.mkv",
        ]
    );
    assert_eq!(streams(&ffprobe(&out.join("TV/The Wire/Season 01/S01E01.mkv")), "video")[0]["codec_name"], "av1");

    // A rerun over the library skips every finished rip, and copies a
    // sidecar that went missing since (a copy that failed on a full disk):
    // the user's own poster is left as it is, without a word this time.
    std::fs::remove_file(out.join("Movies/Heat (1995)/Heat (1995).en.srt")).unwrap();
    let o = run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&lib).arg("-o").arg(&out).args(flags));
    assert!(o.status.success());
    let ev = events(&o);
    assert_eq!(ev.iter().filter(|e| e["event"] == "file_skipped").count(), 2);
    assert!(!ev.iter().any(|e| e["event"] == "stage_started" && e["stage"]["kind"] == "video"));
    assert!(out.join("Movies/Heat (1995)/Heat (1995).en.srt").is_file());
    assert!(!ev.iter().any(|e| e["event"] == "warning"), "{ev:?}");
    assert_eq!(std::fs::read(&own).unwrap(), b"the user's own poster");
}

/// 20 s of picture that AV1 cannot make small at a low CRF: its output is
/// far more than 5% of the source.
fn busy_clip() -> PathBuf {
    fixture(
        "library_busy.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=20",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=20",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "30",
            "-c:a",
            "aac",
        ],
    )
}

#[test]
fn an_output_that_would_outgrow_its_rip_stops_early_and_leaves_nothing() {
    let src = busy_clip();
    let before = fingerprint(&src);
    let mut paths = vec![vec!["--no-chunked", "--preset", "10"]];
    if has_libvmaf() {
        paths.push(vec!["--chunked", "--chunk-size", "4", "--preset", "12"]);
    }
    for args in paths {
        let t = tempfile::tempdir().unwrap();
        let o = run(drapto(t.path())
            .env_remove("DRAPTO_MAX_OUTPUT_RATIO")
            .args(["encode", "--json", "--max-output-ratio", "0.05", "-i"])
            .arg(&src)
            .arg("-o")
            .arg(t.path().join("out"))
            .args(&args));
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let ev = events(&o);
        let failed = ev.iter().find(|e| e["event"] == "file_failed").expect("file_failed");
        let msg = failed["error"].as_str().unwrap();
        assert!(msg.contains("max_output_ratio 0.05") && msg.contains("the rip untouched"), "{msg}");
        let percent: f64 = msg.split("stopped with ").nth(1).unwrap().split('%').next().unwrap().parse().unwrap();
        assert!(percent < 100.0, "{args:?}: stopped only at the end: {msg}");
        assert!(!ev.iter().any(|e| e["event"] == "stage_complete" && e["stage"]["kind"] == "video"), "{args:?}");
        let left = tree(&t.path().join("out"));
        assert!(left.iter().all(|f| f.ends_with(".report.json")), "{args:?}: {left:?}");
        // Nor a part-made video in its work, which no rerun could use.
        let work = tree(&t.path().join("work/jobs"));
        assert!(!work.iter().any(|f| f.contains("working/")), "{args:?}: {work:?}");
        assert_eq!(fingerprint(&src), before);
        let summary = ev.iter().find(|e| e["event"] == "batch_complete").unwrap();
        assert!(summary["summary"]["failed"][0][1].as_str().unwrap().contains("max_output_ratio"));
    }
}

/// A loopback HTTP server that records each request (path, headers, body)
/// and answers 200, or, `hang`ing, reads it and never answers.
/// The requests a server saw: path, head, body.
type Requests = Arc<Mutex<Vec<(String, String, String)>>>;

fn http_server(hang: bool) -> (String, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            s.lock().unwrap().push((path, head, String::from_utf8_lossy(&body).into_owned()));
            if hang {
                held.push(stream);
            } else {
                let mut stream = stream;
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        }
    });
    (url, seen)
}

/// A rip whose name is not plain ASCII gets its ntfy note, the title as
/// an RFC 2047 encoded word. Before, the header was refused and the note
/// never sent (one line in the log).
#[test]
fn an_ntfy_note_of_a_rip_named_in_accents_is_sent() {
    use base64::Engine;
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("in");
    put(&dir, "Amélie (2001).mkv", &simple_clip("small.mkv", "160x120", 1));
    let (url, seen) = http_server(false);
    let o = run(drapto(t.path())
        .env("DRAPTO_NOTIFY_NTFY", format!("{url}/films"))
        .args(["encode", "-q", "--no-chunked", "-i"])
        .arg(&dir)
        .arg("-o")
        .arg(t.path().join("out")));
    assert!(o.status.success(), "{}", stderr(&o));
    let seen = seen.lock().unwrap().clone();
    let titles: Vec<String> = seen
        .iter()
        .filter_map(|(_, head, _)| head.lines().find_map(|l| l.strip_prefix("Title: ")).map(str::to_string))
        .collect();
    let decoded: Vec<String> = titles
        .iter()
        .map(|t| match t.strip_prefix("=?UTF-8?B?").and_then(|t| t.strip_suffix("?=")) {
            Some(b) => String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap(),
            None => t.clone(),
        })
        .collect();
    assert!(decoded.iter().any(|t| t == "Encoded Amélie (2001).mkv"), "{titles:?}");
}

#[test]
fn notifications_reach_ntfy_a_webhook_and_a_command_and_a_dead_server_delays_nothing() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("in");
    put(&dir, "good.mkv", &simple_clip("small.mkv", "320x240", 2));
    write(&dir, "broken.mkv", b"this is not a film\n");
    let (url, seen) = http_server(false);
    let said = t.path().join("command.txt");
    let logs = t.path().join("logs");
    let o = run(drapto(t.path())
        .env("DRAPTO_NOTIFY_NTFY", format!("{url}/my-encodes"))
        .env("DRAPTO_NOTIFY_NTFY_TOKEN", "tk_secret_123")
        .env("DRAPTO_LOG_DIR", &logs)
        .args(["encode", "--json", "-v", "--notify-webhook"])
        .arg(format!("{url}/hook"))
        .arg("--notify-command")
        // (tee prints it too: a command's output never joins the events.)
        .arg(format!("echo \"$DRAPTO_EVENT $DRAPTO_FILE $(cat | head -c 30)\" | tee -a '{}'", said.display()))
        .arg("-i")
        .arg(&dir)
        .arg("-o")
        .arg(t.path().join("out")));
    assert_eq!(o.status.code(), Some(1), "one file failed");
    let out = stdout(&o);
    let not_json: Vec<&str> = out.lines().filter(|l| serde_json::from_str::<Value>(l).is_err()).collect();
    assert!(not_json.is_empty(), "stdout is events only: {not_json:?}");
    let seen = seen.lock().unwrap().clone();
    let hooks: Vec<Value> =
        seen.iter().filter(|(p, _, _)| p == "/hook").map(|(_, _, b)| serde_json::from_str(b).unwrap()).collect();
    let kinds: Vec<&str> = hooks.iter().map(|h| h["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["file_failed", "file_complete", "batch_complete"], "the events as --json has them");
    assert!(hooks[0]["error"].as_str().unwrap().contains("not a readable media file"));
    assert!(hooks[1]["summary"]["output_bytes"].as_u64().unwrap() > 0);
    let ntfy: Vec<&(String, String, String)> = seen.iter().filter(|(p, _, _)| p == "/my-encodes").collect();
    assert_eq!(ntfy.len(), 3);
    let good = ntfy.iter().find(|(_, h, _)| h.contains("Title: Encoded good.mkv")).expect("the finished file's note");
    assert!(good.1.contains("Authorization: Bearer tk_secret_123"), "{}", good.1);
    assert!(good.2.contains("smaller") || good.2.contains("→"), "{}", good.2);
    let command = std::fs::read_to_string(&said).unwrap();
    assert!(
        command.contains("file_complete") && command.contains("good.mkv") && command.contains("{\"time\""),
        "{command}"
    );
    // The token is sent, never shown or logged.
    let log = tree(&logs).iter().map(|f| std::fs::read_to_string(logs.join(f)).unwrap()).collect::<String>();
    for text in [stdout(&o), stderr(&o), log] {
        assert!(!text.contains("tk_secret_123"));
    }
    let shown = run(drapto(t.path()).env("DRAPTO_NOTIFY_NTFY_TOKEN", "tk_secret_123").arg("config"));
    assert!(!stdout(&shown).contains("tk_secret_123") && stdout(&shown).contains("notify.ntfy_token"));
    let shown = run(drapto(t.path()).env("DRAPTO_NOTIFY_NTFY_TOKEN", "tk_secret_123").args(["config", "--json"]));
    assert!(!stdout(&shown).contains("tk_secret_123"));
    let rows: Vec<serde_json::Value> = serde_json::from_str(stdout(&shown).trim()).unwrap();
    let value = |key: &str| rows.iter().find(|r| r["key"] == key).unwrap()["value"].clone();
    assert!(value("encoding.preset").is_u64(), "a number, not TOML text: {}", value("encoding.preset"));
    assert_eq!(value("notify.ntfy_token"), "(set, not shown)");
    assert_eq!(value("distributed.hosts"), serde_json::Value::Null, "an unset setting is there, as null");

    // A server that hangs, and one that refuses: the file is encoded all
    // the same, and each failed delivery is one warning in the log.
    let (hanging, _) = http_server(true);
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let logs = t.path().join("logs2");
    let o = run(drapto(t.path())
        .env("DRAPTO_NOTIFY_WEBHOOK", format!("{hanging}/hook"))
        .env("DRAPTO_NOTIFY_NTFY", format!("{refused}/topic"))
        .env("DRAPTO_NOTIFY_TIMEOUT", "2")
        .env("DRAPTO_NOTIFY_RETRIES", "1")
        .env("DRAPTO_LOG_DIR", &logs)
        .args(["encode", "--json", "-i"])
        .arg(dir.join("good.mkv"))
        .arg("-o")
        .arg(t.path().join("out2")));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(t.path().join("out2/good.mkv").exists());
    let log = tree(&logs).iter().map(|f| std::fs::read_to_string(logs.join(f)).unwrap()).collect::<String>();
    assert!(log.contains("notification to ntfy not delivered"), "{log}");
}

#[test]
fn a_rip_whose_folder_was_renamed_takes_its_encode_along_instead_of_a_new_one() {
    let t = tempfile::tempdir().unwrap();
    let (lib, out) = (t.path().join("lib"), t.path().join("out"));
    std::fs::create_dir_all(lib.join("Heat")).unwrap();
    std::fs::copy(simple_clip("library_moved.mkv", "320x240", 2), lib.join("Heat/heat.mkv")).unwrap();
    let reports = t.path().join("reports");
    let encode = || {
        run(drapto(t.path())
            .env("DRAPTO_REPORT_DIR", &reports)
            .args(["encode", "--json", "-i"])
            .arg(&lib)
            .arg("-o")
            .arg(&out))
    };
    let o = encode();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("Heat/heat.mkv").is_file());
    let first = tree(&reports);
    assert_eq!(first.len(), 1, "{first:?}");
    // Tidied for a media server (mv keeps the file's time).
    std::fs::rename(lib.join("Heat"), lib.join("Heat (1995)")).unwrap();
    let o = encode();
    let moved = tree(&reports);
    assert!(moved.len() == 1 && moved != first, "the report is named for its output's new path: {moved:?}");
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = events(&o);
    assert!(!ev.iter().any(|e| e["event"] == "stage_complete" && e["stage"]["kind"] == "video"), "no video encoded");
    assert!(ev.iter().any(|e| e["event"] == "file_skipped"), "not encoded again: {:?}", ev);
    assert!(out.join("Heat (1995)/heat.mkv").is_file() && !out.join("Heat/heat.mkv").exists(), "{:?}", tree(&out));
    assert!(!ev.iter().any(|e| e["event"] == "analysis_complete"), "known without an analysis");
    // The file itself renamed for the media server: its encode follows,
    // as the dry run says.
    std::fs::rename(lib.join("Heat (1995)/heat.mkv"), lib.join("Heat (1995)/Heat (1995).mkv")).unwrap();
    let o = run(drapto(t.path()).args(["encode", "--dry-run", "-i"]).arg(&lib).arg("-o").arg(&out));
    assert!(stdout(&o).contains("its encode moves here from"), "{}", stdout(&o));
    assert!(out.join("Heat (1995)/heat.mkv").is_file(), "a dry run moves nothing");
    let o = encode();
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = events(&o);
    assert!(!ev.iter().any(|e| e["event"] == "stage_started" && e["stage"]["kind"] == "video"), "no video encoded");
    assert!(out.join("Heat (1995)/Heat (1995).mkv").is_file(), "{:?}", tree(&out));
    assert!(!out.join("Heat (1995)/heat.mkv").exists(), "no second copy of the film: {:?}", tree(&out));
    std::fs::rename(lib.join("Heat (1995)/Heat (1995).mkv"), lib.join("Heat (1995)/heat.mkv")).unwrap();
    std::fs::rename(out.join("Heat (1995)/Heat (1995).mkv"), out.join("Heat (1995)/heat.mkv")).unwrap();
    // Moved again, and encoded into another output folder: that folder gets
    // an encode of its own; the first folder's is left where it is.
    std::fs::rename(lib.join("Heat (1995)"), lib.join("Heat (1995) [1080p]")).unwrap();
    let other = t.path().join("other");
    let o = run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&lib).arg("-o").arg(&other));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("Heat (1995)/heat.mkv").is_file(), "{:?}", tree(&out));
    assert!(other.join("Heat (1995) [1080p]/heat.mkv").is_file(), "{:?}", tree(&other));
}

#[test]
fn a_rip_renamed_and_the_next_disc_ripped_under_its_old_name_each_keep_their_own() {
    // MakeMKV names every disc's film title_t00.mkv: the user renames the
    // first for the media server, and rips the next disc. Its encode (and
    // its subtitles) follow the renamed rip; the next disc is encoded under
    // the old name, now and on every run after; in either order of steps.
    for before_run in [true, false] {
        let t = tempfile::tempdir().unwrap();
        let (lib, out) = (t.path().join("lib"), t.path().join("out"));
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::copy(simple_clip("library_disc1.mkv", "320x240", 2), lib.join("title_t00.mkv")).unwrap();
        std::fs::write(lib.join("title_t00.en.srt"), "1\n00:00:00,000 --> 00:00:01,000\nHEAT\n").unwrap();
        let encode = || {
            let o =
                run(drapto(t.path()).args(["encode", "--json", "--copy-sidecars", "-i"]).arg(&lib).arg("-o").arg(&out));
            assert!(o.status.success(), "{before_run}: {}", stdout(&o));
            events(&o)
        };
        encode();
        std::fs::rename(lib.join("title_t00.mkv"), lib.join("Heat (1995).mkv")).unwrap();
        std::fs::rename(lib.join("title_t00.en.srt"), lib.join("Heat (1995).en.srt")).unwrap();
        let next_disc = || {
            std::fs::copy(simple_clip("library_disc2.mkv", "160x120", 3), lib.join("title_t00.mkv")).unwrap();
            std::fs::write(lib.join("title_t00.en.srt"), "1\n00:00:00,000 --> 00:00:01,000\nRAN\n").unwrap();
        };
        if before_run {
            next_disc();
        } else {
            encode();
            next_disc();
        }
        let ev = encode();
        let videos = ev.iter().filter(|e| e["event"] == "stage_started" && e["stage"]["kind"] == "video").count();
        assert_eq!(videos, 1, "{before_run}: only the next disc is encoded");
        let width = |f: &str| streams(&ffprobe(&out.join(f)), "video")[0]["width"].as_u64();
        assert_eq!((width("Heat (1995).mkv"), width("title_t00.mkv")), (Some(320), Some(160)), "{before_run}");
        let srt = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
        assert!(srt("Heat (1995).en.srt").contains("HEAT") && srt("title_t00.en.srt").contains("RAN"), "{before_run}");
        // And the run after: both known, nothing fails.
        let ev = encode();
        assert_eq!(ev.iter().filter(|e| e["event"] == "file_skipped").count(), 2, "{before_run}");
    }
}

#[test]
fn an_output_made_with_other_settings_is_checked_once_and_then_known() {
    let t = tempfile::tempdir().unwrap();
    let (lib, out) = (t.path().join("lib"), t.path().join("out"));
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(simple_clip("library_settings.mkv", "320x240", 2), lib.join("a.mkv")).unwrap();
    std::fs::write(lib.join("b.mkv"), b"not drapto's").unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(lib.join("b.mkv"), out.join("b.mkv")).unwrap();
    let encode = |preset: &str, extra: &[&str]| {
        run(drapto(t.path())
            .args(["encode", "--json", "--preset", preset, "-i"])
            .arg(&lib)
            .arg("-o")
            .arg(&out)
            .args(extra))
    };
    encode("12", &[]);
    assert!(out.join("a.mkv").is_file());
    // Another preset: the dry run says the output will be checked, and the
    // file in b's way makes b fail.
    let dry_run = || {
        let o = encode("11", &["--dry-run"]);
        stdout(&o).lines().filter_map(|l| serde_json::from_str(l).ok()).collect::<Vec<serde_json::Value>>()
    };
    let action = |plan: &[serde_json::Value], name: &str| {
        plan.iter().find(|p| p["input"].as_str().unwrap_or("").ends_with(name)).unwrap()["action"].clone()
    };
    let plan = dry_run();
    assert_eq!((action(&plan, "a.mkv"), action(&plan, "b.mkv")), ("check".into(), "fail".into()), "{plan:?}");
    // The run keeps the valid output and leaves no work behind...
    let o = encode("11", &[]);
    assert!(events(&o).iter().any(|e| e["event"] == "file_skipped"), "{}", stdout(&o));
    let jobs = t.path().join("work/jobs");
    let left: Vec<_> =
        std::fs::read_dir(&jobs).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.iter().all(|n| !n.to_string_lossy().starts_with("a-")), "{left:?}");
    // ...and the next run knows it without an analysis, as its dry run says.
    let plan = dry_run();
    assert_eq!(action(&plan, "a.mkv"), "skip", "{plan:?}");
    let o = encode("11", &[]);
    let ev = events(&o);
    assert!(ev.iter().any(|e| e["event"] == "file_skipped" && e["input"].as_str().unwrap().ends_with("a.mkv")));
    assert!(
        !ev.iter().any(|e| e["event"] == "analysis_complete" && e["input"].as_str().unwrap_or("").ends_with("a.mkv"))
    );
    // The rip touched (a library copied without its times): checked, not
    // encoded again.
    let f = std::fs::File::options().append(true).open(lib.join("a.mkv")).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60)).unwrap();
    drop(f);
    let plan = dry_run();
    assert_eq!(action(&plan, "a.mkv"), "check", "{plan:?}");
}

/// A rip still being written is not encoded, and the run says so: in its
/// summary (quiet or not) and its exit code, for a script that would take
/// the exit code for "done".
#[test]
fn a_rip_still_being_written_is_in_the_summary_and_the_run_is_not_done() {
    let t = tempfile::tempdir().unwrap();
    let lib = t.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(simple_clip("library_writing.mkv", "320x240", 2), lib.join("film.mkv")).unwrap();
    let writer = std::fs::File::options().append(true).open(lib.join("film.mkv")).unwrap();
    let o = run(drapto(t.path())
        .args(["encode", "-q", "--preset", "12", "-i"])
        .arg(&lib)
        .arg("-o")
        .arg(t.path().join("out")));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("Not encoded now: film.mkv (still being written"), "{}", stdout(&o));
    let o = run(drapto(t.path())
        .args(["encode", "--json", "--preset", "12", "-i"])
        .arg(lib.join("film.mkv"))
        .arg("-o")
        .arg(t.path().join("out")));
    assert_eq!(o.status.code(), Some(1));
    let done = events(&o).into_iter().find(|e| e["event"] == "batch_complete").unwrap();
    assert!(done["summary"]["not_encoded"][0][1].as_str().unwrap().starts_with("still being written"), "{done}");
    // The dry run says the same, and exits as the run would.
    let o = run(drapto(t.path())
        .args(["encode", "--json", "--dry-run", "-i"])
        .arg(&lib)
        .arg("-o")
        .arg(t.path().join("out")));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let plan: serde_json::Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(plan["action"], "not_now", "{plan}");
    drop(writer);
    assert!(!t.path().join("out/film.mkv").exists());
}

/// Rips whose outputs would share a name (`rip.mkv` and `rip.webm`): the
/// one not encoded is said as the run finds it (a JSON reader saw it in the
/// batch's summary alone).
#[test]
fn a_rip_whose_output_another_takes_is_said_as_it_is_found() {
    let t = tempfile::tempdir().unwrap();
    let lib = t.path().join("lib");
    let clip = simple_clip("same-output.mkv", "160x120", 1);
    put(&lib, "rip.mkv", &clip);
    put(&lib, "rip.webm", &clip);
    let o = run(drapto(t.path())
        .args(["encode", "--json", "--file-pattern", "*", "-i"])
        .arg(&lib)
        .arg("-o")
        .arg(t.path().join("out")));
    assert_eq!(o.status.code(), Some(1), "not everything was encoded: {}", stdout(&o));
    let said = events(&o).into_iter().find(|e| e["event"] == "warning" && e["input"].to_string().contains("rip.webm"));
    assert!(said.is_some_and(|w| w["message"].to_string().contains("rename one of them")), "{}", stdout(&o));
    assert!(t.path().join("out/rip.mkv").exists());
}

/// drapto's own encodes in a library (a rip replaced by its encode to free
/// space, an earlier run's output folder inside the library) are left out
/// of its walk, said so, dry run alike: each was encoded again, losing
/// quality for a percent of its size. Named alone, one is encoded.
#[test]
fn drapto_encodes_in_a_library_are_not_encoded_again() {
    let t = tempfile::tempdir().unwrap();
    let lib = t.path().join("lib");
    let film = simple_clip("small.mkv", "320x240", 2);
    put(&lib, "Heat.mkv", &film);
    let o = run(drapto(t.path()).args(["encode", "--preset", "12", "-i"]).arg(&lib).arg("-o").arg(lib.join("encodes")));
    assert!(o.status.success(), "{}", stderr(&o));
    // The rip replaced by its encode.
    std::fs::copy(lib.join("encodes/Heat.mkv"), lib.join("Heat.mkv")).unwrap();
    let out = t.path().join("out");
    let o = run(drapto(t.path()).args(["encode", "--dry-run", "-i"]).arg(&lib).arg("-o").arg(&out));
    let said = stdout(&o);
    assert!(o.status.success(), "{said}");
    assert!(said.contains("0 to encode, 3 skipped"), "{said}");
    assert_eq!(said.matches("is drapto's encode of").count(), 2, "{said}");
    let o = run(drapto(t.path()).args(["encode", "--json", "--preset", "12", "-i"]).arg(&lib).arg("-o").arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let skipped = events(&o).into_iter().filter(|e| e["event"] == "file_skipped").count();
    assert_eq!(skipped, 2);
    assert!(!out.exists() || tree(&out).iter().all(|f| !f.ends_with(".mkv")), "{:?}", tree(&out));
    assert!(!out.join("encodes").exists(), "no empty output folder for a file skipped");
    // Named alone: encoded (a smaller copy of a finished film).
    let o =
        run(drapto(t.path()).args(["encode", "--preset", "12", "-i"]).arg(lib.join("Heat.mkv")).arg("-o").arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("Heat.mkv").is_file());
}
