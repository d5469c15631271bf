//! `drapto watch`: a rip still being written is taken only once it is
//! complete; a watch killed outright and started again continues its queue
//! and encodes nothing twice; a failing rip is tried once, and again only
//! after it changes. Real processes, real files, a real clock.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `drapto watch --json` and every event it printed so far.
struct Watch {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Watch {
    fn start(t: &Path, lib: &Path, out: &Path) -> Watch {
        let mut child = drapto(t)
            .env("DRAPTO_WATCH_POLL", "1")
            .args(["watch", "--json", "--settle", "2", "-i"])
            .arg(lib)
            .arg("-o")
            .arg(out)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let e = events.clone();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    e.lock().unwrap().push(v);
                }
            }
        });
        Watch { child, events }
    }

    /// Waits (at most `secs`) until an event satisfies `f`; returns it.
    fn wait_for(&self, secs: u64, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(v) = self.events.lock().unwrap().iter().find(|v| f(v)) {
                return v.clone();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no such event in {secs} s; saw {:?}", self.kinds());
    }

    fn kinds(&self) -> Vec<String> {
        self.events.lock().unwrap().iter().map(|v| v["event"].as_str().unwrap_or("").to_string()).collect()
    }

    fn count(&self, kind: &str, file: &str) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|v| {
                v["event"] == kind
                    && (v["input"].as_str().unwrap_or("").ends_with(file)
                        || v["summary"]["input"].as_str().unwrap_or("").ends_with(file))
            })
            .count()
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and the exit code.
    fn stop(mut self) -> Option<i32> {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        self.child.wait().unwrap().code()
    }
}

fn is(kind: &'static str, file: &'static str) -> impl Fn(&Value) -> bool {
    move |v| {
        v["event"] == kind
            && (v["input"].as_str().unwrap_or("").ends_with(file)
                || v["summary"]["input"].as_str().unwrap_or("").ends_with(file))
    }
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v["time"].as_str().unwrap().parse().unwrap()
}

#[test]
fn a_rip_being_written_is_taken_only_once_complete() {
    let t = tempfile::tempdir().unwrap();
    let (lib, out) = (t.path().join("lib"), t.path().join("out"));
    std::fs::create_dir_all(lib.join("Movies")).unwrap();
    let w = Watch::start(t.path(), &lib, &out);
    std::thread::sleep(Duration::from_secs(2));
    // A ripper writes the file over about five seconds, holding it open.
    let bytes = std::fs::read(simple_clip("small.mkv", "320x240", 2)).unwrap();
    let rip = lib.join("Movies/New.mkv");
    let mut f = std::fs::File::create(&rip).unwrap();
    for chunk in bytes.chunks(bytes.len() / 5 + 1) {
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_secs(1));
    }
    drop(f);
    let written = chrono::Utc::now();
    let started = w.wait_for(60, is("file_started", "New.mkv"));
    assert!(time(&started) >= written, "taken at {} before the ripper finished at {written}", time(&started));
    w.wait_for(120, is("file_complete", "New.mkv"));
    assert!(out.join("Movies/New.mkv").exists());
    assert_eq!(w.stop(), Some(143), "SIGTERM ends the watch as it ends an encode");
}

#[test]
fn a_killed_watch_continues_its_queue_and_encodes_nothing_twice() {
    let t = tempfile::tempdir().unwrap();
    let (lib, out) = (t.path().join("lib"), t.path().join("out"));
    let clip = simple_clip("small.mkv", "320x240", 2);
    for name in ["a.mkv", "b.mkv", "c.mkv"] {
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::copy(&clip, lib.join(name)).unwrap();
    }
    // Old enough to be complete at once.
    std::thread::sleep(Duration::from_secs(3));
    let w = Watch::start(t.path(), &lib, &out);
    w.wait_for(120, is("file_complete", "a.mkv"));
    w.wait_for(60, is("file_started", "b.mkv"));
    w.kill();
    let w = Watch::start(t.path(), &lib, &out);
    w.wait_for(180, is("file_complete", "c.mkv"));
    w.wait_for(60, |v| v["event"] == "file_complete" && v["summary"]["input"].as_str().unwrap().ends_with("b.mkv"));
    assert_eq!(w.count("file_started", "a.mkv"), 0, "the finished rip is not taken again");
    for name in ["a.mkv", "b.mkv", "c.mkv"] {
        assert!(out.join(name).exists(), "{name}");
    }
    w.kill();
}

#[test]
fn a_failing_rip_is_tried_once_and_again_only_once_it_changes() {
    let t = tempfile::tempdir().unwrap();
    let (lib, out) = (t.path().join("lib"), t.path().join("out"));
    std::fs::create_dir_all(&lib).unwrap();
    let bad = lib.join("bad.mkv");
    std::fs::write(&bad, b"not a film at all\n").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let w = Watch::start(t.path(), &lib, &out);
    w.wait_for(60, is("file_failed", "bad.mkv"));
    // Several looks at the library later, it has not been tried again.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(w.count("file_failed", "bad.mkv"), 1);
    // Restarted: still not retried.
    w.kill();
    let w = Watch::start(t.path(), &lib, &out);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(w.count("file_started", "bad.mkv"), 0, "{:?}", w.kinds());
    // Changed: tried again once it settled.
    let mut f = std::fs::OpenOptions::new().append(true).open(&bad).unwrap();
    f.write_all(b"still not a film\n").unwrap();
    drop(f);
    w.wait_for(60, is("file_failed", "bad.mkv"));
    let status = Command::new(env!("CARGO_BIN_EXE_drapto"))
        .env("DRAPTO_TEMP_DIR", t.path().join("work"))
        .env("XDG_CONFIG_HOME", t.path().join("config"))
        .args(["status", "--json"])
        .output()
        .unwrap();
    let s: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["running"].as_array().unwrap().len(), 1, "{s}");
    let file: &Value = &s["queues"][0]["files"][bad.to_str().unwrap()];
    assert_eq!(file["state"], "failed", "{s}");
    w.kill();
}

#[test]
fn a_watch_removes_the_work_of_rips_gone_since_and_keeps_resumable_work() {
    let t = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(t.path()).unwrap();
    let (lib, out) = (root.join("lib"), root.join("out"));
    std::fs::create_dir_all(&lib).unwrap();
    let elsewhere = root.join("elsewhere.mkv");
    std::fs::write(&elsewhere, b"a rip outside the library").unwrap();
    let mtime = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        m.modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    };
    let job = |name: &str, input: &Path, size: u64, mtime_ns: u128| {
        let dir = root.join("work/jobs").join(name);
        std::fs::create_dir_all(dir.join("encoded")).unwrap();
        std::fs::write(dir.join("encoded/segment-0001.mkv"), vec![0u8; 1 << 20]).unwrap();
        let info = serde_json::json!({ "input": input, "size": size, "mtime_ns": mtime_ns });
        std::fs::write(dir.join("job.json"), info.to_string()).unwrap();
        dir
    };
    // Gone from its folder two days ago; gone a moment ago (a share that
    // dropped may come back); replaced by another rip; resumable.
    let gone = job("gone-0000000000000001", &lib.join("gone.mkv"), 5, 1);
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    for p in [gone.join("job.json"), gone.join("encoded"), gone.clone()] {
        std::fs::File::open(&p).unwrap().set_modified(two_days_ago).unwrap();
    }
    let just_gone = job("just-gone-0000000000000003", &lib.join("just gone.mkv"), 5, 1);
    let replaced = job("replaced-0000000000000004", &elsewhere, 99, mtime(&elsewhere));
    let resumable = job("kept-0000000000000002", &elsewhere, 25, mtime(&elsewhere));
    let w = Watch::start(&root, &lib, &out);
    let deadline = Instant::now() + Duration::from_secs(30);
    while (gone.exists() || replaced.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    w.kill();
    assert!(!gone.exists(), "the work of a rip gone for days stays");
    assert!(!replaced.exists(), "the work of a replaced rip stays");
    assert!(just_gone.exists(), "the work of a rip gone a moment ago was removed");
    assert!(resumable.join("encoded/segment-0001.mkv").exists(), "resumable work was removed");
}

#[test]
fn outputs_taken_or_deleted_neither_stop_the_watch_nor_strand_their_rips() {
    let t = tempfile::tempdir().unwrap();
    let (lib, out) = (t.path().join("lib"), t.path().join("out"));
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let clip = simple_clip("small.mkv", "320x240", 2);
    // Three rips whose output names hold another tool's files: three in a
    // row used to trip the breaker (a setup failure) and stop the watch.
    for name in ["a1.mkv", "a2.mkv", "a3.mkv", "z.mkv"] {
        std::fs::copy(&clip, lib.join(name)).unwrap();
    }
    for name in ["a1.mkv", "a2.mkv", "a3.mkv"] {
        std::fs::write(out.join(name), b"an old encode by another tool\n").unwrap();
    }
    std::thread::sleep(Duration::from_secs(3));
    let w = Watch::start(t.path(), &lib, &out);
    w.wait_for(120, is("file_complete", "z.mkv"));
    assert_eq!(w.count("file_failed", "a1.mkv"), 1);
    // The blocking file moved away: its rip is encoded, no restart needed.
    std::fs::remove_file(out.join("a2.mkv")).unwrap();
    w.wait_for(120, is("file_complete", "a2.mkv"));
    // An encode deleted (a bad one, a lost disk): encoded again.
    std::fs::remove_file(out.join("z.mkv")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while w.count("file_complete", "z.mkv") < 2 {
        assert!(Instant::now() < deadline, "not encoded again; saw {:?}", w.kinds());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(out.join("z.mkv").exists());
    assert_eq!(w.count("file_started", "a1.mkv"), 1, "a rip still blocked is not taken again");
    assert_eq!(w.stop(), Some(143));
}

#[test]
fn a_watch_stopped_mid_encode_says_what_it_left() {
    let t = tempfile::tempdir().unwrap();
    let (lib, out) = (t.path().join("lib"), t.path().join("out"));
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(simple_clip("watch-long.mkv", "640x360", 20), lib.join("long.mkv")).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let w = Watch::start(t.path(), &lib, &out);
    w.wait_for(60, is("file_started", "long.mkv"));
    std::thread::sleep(Duration::from_secs(1));
    let events = w.events.clone();
    assert_eq!(w.stop(), Some(143));
    std::thread::sleep(Duration::from_millis(500));
    let events = events.lock().unwrap();
    let summary = events.iter().find(|e| e["event"] == "batch_complete").expect("a summary as the watch stops");
    let interrupted = summary["summary"]["interrupted"].as_array().unwrap();
    assert_eq!(interrupted.len(), 1, "{summary}");
    // The file's own story ends too.
    assert!(
        events.iter().any(|e| e["event"] == "file_interrupted" && e["input"].as_str().unwrap().ends_with("long.mkv"))
    );
}

/// drapto's own encode dropped into the watched library is skipped once
/// and left alone. Filed as encoded without an output, it was taken again
/// at once, in a loop, an ffprobe each time.
#[test]
fn a_drapto_encode_in_the_watched_library_is_skipped_once() {
    let t = tempfile::tempdir().unwrap();
    let (lib, out) = (t.path().join("lib"), t.path().join("out"));
    std::fs::create_dir_all(&lib).unwrap();
    let first = t.path().join("first");
    let o = run(drapto(t.path())
        .args(["encode", "--preset", "12", "-i"])
        .arg(simple_clip("small.mkv", "320x240", 2))
        .arg("-o")
        .arg(&first));
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::copy(first.join("small.mkv"), lib.join("Film.mkv")).unwrap();
    let w = Watch::start(t.path(), &lib, &out);
    w.wait_for(60, |v| v["event"] == "file_skipped");
    std::thread::sleep(Duration::from_secs(4));
    let skipped = w.count("file_skipped", "Film.mkv");
    w.kill();
    assert_eq!(skipped, 1);
}
