//! Durable jobs: Ctrl-C, concurrent runs, full disks, corrupt state,
//! hardware-decoding fallback, cleanup.

mod common;

use common::*;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A clip long enough that its encode is still running when we act.
fn slow_clip() -> PathBuf {
    fixture(
        "slow.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25:duration=20",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=20",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
        ],
    )
}

/// Starts `drapto encode --json` and waits for the first event whose line
/// contains `marker`.
/// A drapto started with piped `--json` output.
struct Running {
    child: std::process::Child,
    /// Everything it prints after the marker.
    rest: std::thread::JoinHandle<String>,
}

impl Running {
    /// Waits for the end: exit status and the output after the marker.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        (status, self.rest.join().unwrap())
    }
}

/// Starts `cmd` and returns once it printed a line containing `marker`.
fn start_until(cmd: &mut Command, marker: &str) -> Running {
    start_until_with(cmd, marker, Stdio::null())
}

/// [`start_until`] with its stderr going to `stderr`.
fn start_until_with(cmd: &mut Command, marker: &str, stderr: Stdio) -> Running {
    let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let marker = marker.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let rest = std::thread::spawn(move || {
        let mut sent = false;
        let mut rest = String::new();
        for line in out.lines().map_while(Result::ok) {
            if sent {
                rest.push_str(&line);
                rest.push('\n');
            } else if line.contains(&marker) {
                let _ = tx.send(());
                sent = true;
            }
        }
        rest
    });
    rx.recv_timeout(Duration::from_secs(120)).expect("marker event");
    Running { child, rest }
}

fn children_of_source(src: &Path) -> String {
    let ps = Command::new("pgrep").args(["-f", &src.to_string_lossy()]).output().unwrap();
    String::from_utf8_lossy(&ps.stdout).trim().to_string()
}

#[test]
fn ctrl_c_stops_children_keeps_no_output_and_exits_130() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("interrupt me.mkv");
    std::fs::copy(slow_clip(), &src).unwrap();
    let out_dir = t.path().join("out");
    let mut c = drapto(t.path());
    c.env("DRAPTO_PRESET", "4").args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir);
    let running = start_until(&mut c, "\"kind\":\"video\"");
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    let pid = nix::unistd::Pid::from_raw(running.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let (status, rest) = running.finish();
    assert!(sent.elapsed() < Duration::from_secs(5), "took {:?}", sent.elapsed());
    assert_eq!(status.code(), Some(130));
    // Interrupted, not failed: no failure, no failure report, the file named.
    assert!(!rest.contains("\"file_failed\""), "{rest}");
    assert!(rest.contains("\"file_interrupted\""), "the file's end is said: {rest}");
    let done: serde_json::Value =
        serde_json::from_str(rest.lines().find(|l| l.contains("\"batch_complete\"")).expect("batch_complete")).unwrap();
    assert_eq!(done["summary"]["interrupted"].as_array().map(Vec::len), Some(1), "{done}");
    assert!(done["summary"]["failed"].as_array().unwrap().is_empty(), "{done}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(children_of_source(&src), "", "no child process may survive");
    let left: Vec<_> = std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "nothing in the output folder: {left:?}");
}

#[test]
fn a_hang_up_with_stderr_gone_stops_cleanly_and_exits_129() {
    // A terminal closed under a run started without nohup: the hang-up
    // killed drapto outright (no word of it anywhere, a lock file left);
    // and with stderr gone a stop was never heeded (the words before the
    // flag failed).
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("hang up.mkv");
    std::fs::copy(slow_clip(), &src).unwrap();
    let out_dir = t.path().join("out");
    let mut c = drapto(t.path());
    c.env("DRAPTO_PRESET", "4").args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir);
    let mut running = start_until_with(&mut c, "\"kind\":\"video\"", Stdio::piped());
    drop(running.child.stderr.take());
    std::thread::sleep(Duration::from_millis(500));
    let pid = nix::unistd::Pid::from_raw(running.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let (status, rest) = running.finish();
    assert_eq!(status.code(), Some(129), "{rest}");
    assert!(rest.contains("\"file_interrupted\"") && rest.contains("\"batch_complete\""), "{rest}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(children_of_source(&src), "", "no child process may survive");
    let left: Vec<_> = std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "nothing in the output folder, no lock file: {left:?}");
}

#[test]
fn a_terminal_closed_under_a_chunked_encode_stops_it_cleanly() {
    // The live lines drawn on a terminal that hung up: indicatif unwrapped
    // the failed write and drapto aborted (SIGABRT, 4 runs in 5), its stop
    // unsaid and its lock left. The terminal is a pseudo-terminal that
    // python closes, as an ssh session that drops does.
    if !has_libvmaf() {
        eprintln!("skipped: ffmpeg without libvmaf");
        return;
    }
    let src = fixture(
        "hang_up_chunked.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=24000/1001",
            "-f",
            "lavfi",
            "-i",
            "sine=f=440:sample_rate=48000",
        ]
        .into_iter()
        .chain(["-t", "12", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "ac3"])
        .collect::<Vec<_>>(),
    );
    let hang_up = r#"
import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
t0 = time.time()
while time.time() - t0 < float(sys.argv[1]):
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            os.read(fd, 65536)
        except OSError:
            break
os.close(fd)
_, st = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(st))
"#;
    for delay in ["4", "5", "6", "7", "8"] {
        let t = tempfile::tempdir().unwrap();
        let template = drapto(t.path());
        let mut c = Command::new("python3");
        // (Its stderr to a file, as a service's or a redirected run's.)
        let exec = "exec \"$0\" \"$@\" 2>\"$DRAPTO_TEMP_DIR.err\"";
        c.args(["-c", hang_up, delay, "sh", "-c", exec]).arg(template.get_program());
        c.args(["encode", "--chunked", "--preset", "12", "-i"]).arg(&src).arg("-o").arg(t.path().join("out"));
        for (k, v) in template.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        let o = run(&mut c);
        let code = stdout(&o).trim().to_string();
        assert!(code == "129" || code == "0", "after {delay} s: exit {code} (129: stopped, 0: done before)");
        let locks: Vec<_> =
            std::fs::read_dir(t.path().join("out")).into_iter().flatten().flatten().map(|e| e.file_name()).collect();
        assert!(locks.iter().all(|n| !n.to_string_lossy().ends_with("drapto-lock")), "{locks:?}");
    }
}

/// Two drapto runs started together on one folder of two rips, with the
/// temporary folders `temps`; each file must be encoded exactly once.
fn two_runs_encode_each_file_once(t: &Path, temps: [&Path; 2]) {
    let input = t.join("in");
    std::fs::create_dir(&input).unwrap();
    for n in ["a.mkv", "b.mkv"] {
        std::fs::copy(simple_clip("small.mkv", "320x240", 2), input.join(n)).unwrap();
    }
    let out_dir = t.join("out");
    let spawn = |temp: &Path| {
        drapto(temp)
            .args(["encode", "--json", "-i"])
            .arg(&input)
            .arg("-o")
            .arg(&out_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(temps[0]), spawn(temps[1]));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    // A rip the other run encodes is not encoded now by this one (exit 1:
    // a script must not take it for done), said as such.
    for o in [&a, &b] {
        let done = events(o).into_iter().find(|e| e["event"] == "batch_complete").expect("batch_complete");
        let busy = done["summary"]["not_encoded"].as_array().unwrap().clone();
        assert!(busy.iter().all(|n| n[1].as_str().unwrap().contains("another drapto is")), "{busy:?}");
        assert_eq!(o.status.code(), Some(if busy.is_empty() { 0 } else { 1 }), "{done}");
        assert!(done["summary"]["failed"].as_array().unwrap().is_empty(), "{done}");
    }
    let completed = |o: &std::process::Output| {
        events(o)
            .iter()
            .filter(|e| e["event"] == "file_complete")
            .map(|e| e["summary"]["input"].to_string())
            .collect::<Vec<_>>()
    };
    let (ca, cb) = (completed(&a), completed(&b));
    assert_eq!(ca.len() + cb.len(), 2, "each file encoded exactly once: {ca:?} {cb:?}");
    assert!(ca.iter().all(|f| !cb.contains(f)));
    assert_eq!(frame_count(&out_dir.join("a.mkv")), 50);
    assert_eq!(frame_count(&out_dir.join("b.mkv")), 50);
    let hidden: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "no lock or partial file is left in the output folder: {hidden:?}");
}

#[test]
fn two_runs_on_one_folder_never_encode_a_file_twice() {
    let t = tempfile::tempdir().unwrap();
    two_runs_encode_each_file_once(t.path(), [t.path(), t.path()]);
}

#[test]
fn two_machines_writing_one_output_folder_never_encode_a_file_twice() {
    // Each with its own temporary folder, as two machines sharing a library.
    let t = tempfile::tempdir().unwrap();
    two_runs_encode_each_file_once(t.path(), [&t.path().join("m1"), &t.path().join("m2")]);
}

#[test]
fn a_rip_another_drapto_encodes_is_not_encoded_now_and_not_analysed() {
    let t = tempfile::tempdir().unwrap();
    let src = slow_clip();
    let out = t.path().join("out");
    let mut first = drapto(t.path());
    first.args(["encode", "--json", "--no-chunked", "-i"]).arg(&src).arg("-o").arg(&out);
    let running = start_until(&mut first, "\"kind\":\"video\"");
    // A second run, another temporary folder (another machine): the
    // output's lock says it is taken, before any analysis.
    let o = run(drapto(&t.path().join("m2")).args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out));
    let _ =
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(running.child.id() as i32), nix::sys::signal::Signal::SIGINT);
    let _ = running.finish();
    assert_eq!(o.status.code(), Some(1), "not encoded: not a success for `&& rm RIP`");
    let ev = events(&o);
    let skipped = ev.iter().find(|e| e["event"] == "file_skipped").expect("file_skipped");
    assert!(skipped["reason"].as_str().unwrap().contains("another drapto is writing"), "{skipped}");
    assert_eq!(skipped["busy"], true, "not done: {skipped}");
    assert!(!ev.iter().any(|e| e["event"] == "stage_started"), "no analysis: {ev:?}");
    let done = ev.iter().find(|e| e["event"] == "batch_complete").unwrap();
    assert_eq!(done["summary"]["not_encoded"].as_array().unwrap().len(), 1, "{done}");
    assert!(!t.path().join("m2/jobs").exists() || tree_is_empty(&t.path().join("m2/jobs")), "no empty work folder");
}

fn tree_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(true)
}

#[cfg(target_os = "linux")]
fn tmpfs(dir: &Path, size: &str) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(target_os = "linux")]
struct Unmount(PathBuf);
#[cfg(target_os = "linux")]
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

// Linux only: a small disk is a tmpfs mounted for the test (macOS would
// need hdiutil and a disk image).
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_refused_up_front_and_reported_mid_job() {
    let t = tempfile::tempdir().unwrap();
    let small = t.path().join("small-disk");
    assert!(tmpfs(&small, "4m"), "this test needs root to mount a small tmpfs");
    let _guard = Unmount(small.clone());
    let src = slow_clip(); // several MiB: 1.5x does not fit in 4 MiB
    let o = run(drapto(t.path())
        .env("DRAPTO_TEMP_DIR", &small)
        .args(["encode", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("o1")));
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.contains("not enough free space") && text.contains("small-disk"), "{text}");

    // Mid-job: the output disk fills while the file is being written.
    let big = t.path().join("out-disk");
    assert!(tmpfs(&big, "64m"));
    let _guard2 = Unmount(big.clone());
    let small_src = simple_clip("small.mkv", "320x240", 2);
    let mut c = drapto(t.path());
    c.args(["encode", "--json", "-i"]).arg(&small_src).arg("-o").arg(&big);
    // The output disk fills up while the video is encoded, before the mux
    // writes there.
    let child = start_until(&mut c, "\"kind\":\"video\"");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=64"])
        .arg(format!("of={}", big.join("filler").display()))
        .stderr(Stdio::null())
        .status();
    let (status, text) = child.finish();
    let _ = std::fs::remove_file(big.join("filler"));
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("disk filled up"), "{text}");
    assert!(text.contains("(the disk of ") && text.contains("out-disk"), "the full disk is named: {text}");
    assert!(!text.contains("trying again"), "a full disk is not tried again: {text}");
    assert!(!big.join("small.mkv").exists());
    // Space freed: the rerun finishes.
    let o = run(drapto(t.path()).args(["encode", "-i"]).arg(&small_src).arg("-o").arg(&big));
    assert!(o.status.success());
}

/// Work and output on one disk with room for either alone but not for both:
/// refused before any encode, naming the disk (before, each was checked
/// alone and the output's mux found the disk full hours later).
#[cfg(target_os = "linux")]
#[test]
fn work_and_output_on_one_disk_need_room_for_both() {
    let t = tempfile::tempdir().unwrap();
    let disk = t.path().join("one-disk");
    let src = slow_clip();
    let size = std::fs::metadata(&src).unwrap().len();
    // 1.5x the source fits, 1.5x + 0.5x does not.
    assert!(tmpfs(&disk, &format!("{}k", size * 7 / 4 / 1024)), "this test needs root to mount a small tmpfs");
    let _guard = Unmount(disk.clone());
    let o = run(drapto(t.path())
        .env("DRAPTO_TEMP_DIR", disk.join("work"))
        .args(["encode", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(disk.join("out")));
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.contains("not enough free space") && text.contains("one-disk"), "{text}");
    assert!(!disk.join("out/slow.mkv").exists());
}

/// A killed run's hidden output, as large as the film, on a disk it nearly
/// fills: the rerun removes it before it counts the free space (before, it
/// took the lock the file was left under for another drapto's, kept the
/// file and refused the rip for want of space).
#[cfg(target_os = "linux")]
#[test]
fn a_killed_runs_hidden_output_is_removed_before_the_space_is_counted() {
    let t = tempfile::tempdir().unwrap();
    let disk = t.path().join("full-disk");
    assert!(tmpfs(&disk, "16m"), "this test needs root to mount a small tmpfs");
    let _guard = Unmount(disk.clone());
    let out = disk.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let partial = out.join(".small.mkv.drapto-partial");
    std::fs::write(&partial, vec![0u8; 16 * 1024 * 1024 - 256 * 1024]).unwrap();
    let src = simple_clip("small.mkv", "320x240", 2);
    let o = run(drapto(t.path())
        .env("DRAPTO_TEMP_DIR", disk.join("work"))
        .args(["encode", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(!partial.exists() && out.join("small.mkv").exists());
}

/// The chunked path fills a small work disk with its survey's samples:
/// the file fails saying so, and what it was writing (half-written samples,
/// of no use to a rerun) is removed, so the next file has the room.
#[cfg(target_os = "linux")]
#[test]
fn a_work_disk_filled_by_the_chunked_path_is_left_with_room_for_the_next_file() {
    assert!(has_libvmaf(), "the test ffmpeg must have libvmaf (scripts/setup.sh installs one)");
    let t = tempfile::tempdir().unwrap();
    let small = t.path().join("small-disk");
    assert!(tmpfs(&small, "20m"), "this test needs root to mount a small tmpfs");
    let _guard = Unmount(small.clone());
    // 6 MB of 720p: its 1.5x fits, its raw samples do not.
    let big = fixture(
        "samples_fill_a_disk.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25:duration=10",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "28",
        ],
    );
    let rips = t.path().join("rips");
    std::fs::create_dir_all(&rips).unwrap();
    std::fs::copy(&big, rips.join("a_big.mkv")).unwrap();
    std::fs::copy(simple_clip("small.mkv", "320x240", 2), rips.join("b_small.mkv")).unwrap();
    let o = run(drapto(t.path())
        .env("DRAPTO_TEMP_DIR", &small)
        .args(["encode", "--chunked", "--chunk-size", "2", "--preset", "12", "-i"])
        .arg(&rips)
        .arg("-o")
        .arg(t.path().join("out")));
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("a_big.mkv: the disk filled up"), "{text}");
    let left: Vec<String> = walk(&small.join("jobs")).into_iter().filter(|p| p.contains("/working/")).collect();
    assert!(left.is_empty(), "half-written samples left: {left:?}");
    assert!(t.path().join("out/b_small.mkv").exists(), "the next file had the room: {text}");
}

/// A temporary folder drapto cannot write: one clear error before any rip
/// is analysed (each rip of the batch failed on it in turn, each line
/// naming a work folder).
#[cfg(target_os = "linux")]
#[test]
fn a_temporary_folder_that_cannot_be_written_stops_the_run_before_any_rip() {
    let t = tempfile::tempdir().unwrap();
    let ro = t.path().join("read-only");
    std::fs::create_dir_all(&ro).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"]).arg(&ro).status();
    assert!(mounted.is_ok_and(|s| s.success()), "this test needs root to mount a read-only tmpfs");
    let _guard = Unmount(ro.clone());
    let o = run(drapto(t.path())
        .env("DRAPTO_TEMP_DIR", &ro)
        .args(["encode", "--json", "-i"])
        .arg(simple_clip("small.mkv", "320x240", 2))
        .arg("-o")
        .arg(t.path().join("out")));
    assert_eq!(o.status.code(), Some(3), "a setting to change");
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(text.contains("read-only") && text.contains("cannot write to temporary folder"), "{text}");
    assert!(text.contains("set DRAPTO_TEMP_DIR"), "{text}");
    assert!(!text.contains("\"analysis_complete\""), "no rip analysed: {text}");
    assert!(!t.path().join("out").exists(), "a run refused for its settings makes no output folder");
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p.display().to_string());
        }
    }
    files
}

#[test]
fn forced_unavailable_hardware_decoder_falls_back_to_software() {
    let t = tempfile::tempdir().unwrap();
    let src = simple_clip("small.mkv", "320x240", 2);
    let out_dir = t.path().join("out");
    let o = run(drapto(t.path())
        .env("DRAPTO_HWACCEL", "cuda")
        .args(["encode", "--json", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(&out_dir));
    assert!(o.status.success());
    let ev = events(&o);
    let plan = ev.iter().find(|e| e["event"] == "analysis_complete").unwrap();
    assert_eq!(plan["plan"]["video"]["hwaccel"], "cuda");
    assert!(
        ev.iter()
            .any(|e| e["event"] == "warning" && e["message"].as_str().unwrap().contains("falling back to software")),
        "the fallback is reported"
    );
    let done = ev.iter().find(|e| e["event"] == "stage_complete" && e["stage"]["kind"] == "video").unwrap();
    let detail = done["detail"].as_str().unwrap();
    assert!(detail.contains("software decoding (cuda failed)"), "said as it was done: {detail}");
    assert_eq!(frame_count(&out_dir.join("small.mkv")), 50);
    let log = std::fs::read_dir(t.path().join("work/logs")).unwrap().next().unwrap().unwrap().path();
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("-hwaccel cuda") && log.contains("falling back to software decoding"));
}

#[test]
fn clean_removes_abandoned_work_and_reports_space() {
    let t = tempfile::tempdir().unwrap();
    let jobs = t.path().join("work/jobs");
    let gone = jobs.join("gone-0000000000000001");
    std::fs::create_dir_all(gone.join("encoded")).unwrap();
    std::fs::write(gone.join("encoded/0001.mkv"), vec![0u8; 100_000]).unwrap();
    // Its rip deleted from a folder that is there.
    let deleted = t.path().join("film.mkv");
    let info = serde_json::json!({"input": deleted, "size": 1, "mtime_ns": 1});
    std::fs::write(gone.join("job.json"), info.to_string()).unwrap();
    // A rip on a share that is not mounted now: its work stays.
    let away = jobs.join("away-0000000000000002");
    std::fs::create_dir_all(&away).unwrap();
    let info = serde_json::json!({"input": "/nonexistent-share/film.mkv", "size": 1, "mtime_ns": 1});
    std::fs::write(away.join("job.json"), info.to_string()).unwrap();
    // Killed between its mux and the rename: a hidden, film-sized output.
    let out = t.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(gone.join("output"), out.join("film.mkv").as_os_str().as_encoded_bytes()).unwrap();
    let partial = out.join(".film.mkv.drapto-partial");
    std::fs::write(&partial, vec![0u8; 50_000]).unwrap();
    let stale_lock = out.join(".film.mkv.drapto-lock");
    std::fs::write(&stale_lock, "pid 1 on gone since 2026-01-01").unwrap();
    let live_src = t.path().join("live.mkv");
    std::fs::copy(simple_clip("small.mkv", "320x240", 2), &live_src).unwrap();
    let live = drapto::job::WorkDir::for_input(&t.path().join("work"), &live_src).unwrap();
    live.create().unwrap();

    let o = run(drapto(t.path()).arg("clean"));
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(!gone.exists() && live.root().exists(), "{text}");
    assert!(away.exists() && text.contains("out of reach"), "{text}");
    assert!(!partial.exists(), "the abandoned partial output is removed with its work: {text}");
    assert!(!stale_lock.exists(), "and the lock file its killed run left beside it: {text}");
    assert!(text.contains("1 work folder(s) removed") && text.contains("KiB"), "{text}");
    let o = run(drapto(t.path()).args(["clean", "--all"]));
    assert!(o.status.success());
    assert!(!live.root().exists() && !away.exists());
}

#[test]
fn corrupt_state_restarts_the_video_cleanly() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("state.mkv");
    std::fs::copy(simple_clip("small.mkv", "320x240", 2), &src).unwrap();
    let work = drapto::job::WorkDir::for_input(&t.path().join("work"), &src).unwrap();
    work.create().unwrap();
    std::fs::write(work.root().join("state/encoding.json"), b"{\"version\": 1, \"fingerprint\": tru").unwrap();
    std::fs::write(work.root().join("encoded/0001.mkv"), b"half a segment").unwrap();
    let o = run(drapto(t.path())
        .env("DRAPTO_ENABLE_CHUNKED_ENCODING", "true")
        .env("DRAPTO_CHUNK_SIZE", "1")
        .args(["encode", "--json", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("out")));
    assert!(o.status.success());
    let ev = events(&o);
    assert!(ev.iter().any(|e| e["event"] == "warning" && e["message"].as_str().unwrap().contains("not used")));
    assert_eq!(frame_count(&t.path().join("out/state.mkv")), 50);
}

#[test]
fn killed_standard_job_resumes_after_its_finished_stages() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("standard resume.mkv");
    std::fs::copy(slow_clip(), &src).unwrap();
    let out_dir = t.path().join("out");
    let mut c = drapto(t.path());
    c.args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir);
    // Kill as soon as the video is done, before audio and mux.
    let mut child = start_until(&mut c, "\"event\":\"stage_complete\",\"input\"").child;
    let mut child_done = false;
    // The first stage_complete is the analysis: wait for the video's.
    for _ in 0..600 {
        let jobs = t.path().join("work/jobs");
        let stages = std::fs::read_dir(&jobs)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path().join("state/stages.json"));
        if stages.is_some_and(|p| std::fs::read_to_string(p).is_ok_and(|s| s.contains("\"video\""))) {
            child.kill().unwrap();
            child_done = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(child_done, "the video stage never finished");
    child.wait().unwrap();
    assert!(!out_dir.join("standard resume.mkv").exists());

    // Resumed with fewer threads: the finished video is as good.
    let o = run(drapto(t.path())
        .env("DRAPTO_MAX_CPU", "50")
        .args(["encode", "--json", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(&out_dir));
    assert!(o.status.success());
    let ev = events(&o);
    assert!(ev.iter().any(|e| e["event"] == "warning" && e["message"].as_str().unwrap().contains("resuming: video")));
    assert!(
        !ev.iter().any(|e| e["event"] == "stage_started" && e["stage"]["kind"] == "video"),
        "video not encoded again"
    );
    assert_eq!(frame_count(&out_dir.join("standard resume.mkv")), frame_count(&src));
}

#[test]
fn an_input_that_changes_during_the_encode_is_not_accepted() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("changing.mkv");
    std::fs::copy(slow_clip(), &src).unwrap();
    let out_dir = t.path().join("out");
    let mut c = drapto(t.path());
    c.args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir);
    let child = start_until(&mut c, "\"kind\":\"video\"");
    // Another program rewrites the file while drapto works on it.
    let mut f = std::fs::OpenOptions::new().append(true).open(&src).unwrap();
    std::io::Write::write_all(&mut f, b"appended by someone else").unwrap();
    drop(f);
    let (status, _) = child.finish();
    assert_eq!(status.code(), Some(1));
    assert!(!out_dir.join("changing.mkv").exists(), "no output from a changed input");
    let log = std::fs::read_dir(t.path().join("work/logs")).unwrap().next().unwrap().unwrap().path();
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("changed while it was being encoded"), "{log}");
}

#[test]
fn killed_during_the_mux_resumes_with_video_and_audio_reused() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("mux kill.mkv");
    std::fs::copy(simple_clip("small.mkv", "320x240", 2), &src).unwrap();
    let out_dir = t.path().join("out");
    let mut c = drapto(t.path());
    c.args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir);
    // SIGKILL the moment the mux starts writing the partial file.
    let mut child = start_until(&mut c, "\"kind\":\"mux\"").child;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out_dir.join("mux kill.mkv").exists(), "nothing under the final name");
    // The dry run says the run resumes (it said a plain `encode`).
    let o = run(drapto(t.path()).args(["encode", "--json", "--dry-run", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    let said = events(&o).into_iter().next().unwrap();
    assert_eq!(said["action"], "encode");
    assert!(said["reason"].as_str().unwrap().starts_with("an earlier run left work in "), "{said}");

    let o = run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success());
    let ev = events(&o);
    let started: Vec<&str> =
        ev.iter().filter(|e| e["event"] == "stage_started").map(|e| e["stage"]["kind"].as_str().unwrap()).collect();
    assert_eq!(started, ["analysis", "mux"], "video and audio reused: {started:?}");
    assert_eq!(frame_count(&out_dir.join("mux kill.mkv")), frame_count(&src));
    let leftovers: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "partial files cleaned: {leftovers:?}");
}

/// A rip replaced while the chunked path encodes it: the failure is the
/// rip's (not the setup's, which would count towards stopping the batch),
/// said as such, and the old rip's work is removed.
#[test]
fn an_input_replaced_during_a_chunked_encode_fails_as_the_rips_own() {
    assert!(has_libvmaf(), "the test ffmpeg must have libvmaf (scripts/setup.sh installs one)");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("replaced.mkv");
    std::fs::copy(slow_clip(), &src).unwrap();
    let out_dir = t.path().join("out");
    let mut c = drapto(t.path());
    c.args(["encode", "--json", "--chunked", "--chunk-size", "2", "--preset", "12", "-i"])
        .arg(&src)
        .arg("-o")
        .arg(&out_dir);
    let child = start_until(&mut c, "\"event\":\"segment_complete\"");
    // Another, shorter rip takes its name.
    let other = t.path().join("other.mkv");
    std::fs::copy(simple_clip("small.mkv", "320x240", 2), &other).unwrap();
    std::fs::rename(&other, &src).unwrap();
    let (status, rest) = child.finish();
    assert_eq!(status.code(), Some(1), "{rest}");
    let failed: Vec<&str> = rest.lines().filter(|l| l.contains("\"event\":\"file_failed\"")).collect();
    assert!(failed.len() == 1 && failed[0].contains("changed while it was being encoded"), "{rest}");
    assert!(!out_dir.join("replaced.mkv").exists());
    let jobs: Vec<_> = std::fs::read_dir(t.path().join("work/jobs")).unwrap().collect();
    assert!(jobs.is_empty(), "the old rip's work is of no use: {jobs:?}");
}

/// A finished audio track that a power cut left short (its stage recorded,
/// its data not all on disk): the rerun encodes it again, and validation
/// checks every audio track's end. Before, the short track was reused and
/// the output, its sound stopping halfway, passed validation.
/// An mkvmerge (a script in `dir`) that fails the mux into the output's
/// hidden name and does all else: a run stopped after its video and audio.
fn mkvmerge_failing_the_mux(dir: &Path) -> PathBuf {
    let wrapper = dir.join("mkvmerge-fails-the-mux.sh");
    script(
        &wrapper,
        "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in *drapto-partial*) exit 2;; esac; done\nexec mkvmerge \"$@\"\n",
    );
    wrapper
}

#[test]
fn a_finished_audio_track_left_short_is_encoded_again() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("film.mkv");
    std::fs::copy(simple_clip("small10.mkv", "320x240", 10), &src).unwrap();
    // The first run stops at the mux, its video and audio finished.
    let wrapper = mkvmerge_failing_the_mux(t.path());
    let out = t.path().join("out");
    let o = run(drapto(t.path()).env("DRAPTO_MKVMERGE", &wrapper).args(["encode", "-i"]).arg(&src).arg("-o").arg(&out));
    assert_eq!(o.status.code(), Some(1), "the mux fails");
    let audio =
        walk(&t.path().join("work")).into_iter().find(|f| f.ends_with("audio-0.mka")).expect("the audio's file");
    let len = std::fs::metadata(&audio).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&audio).unwrap().set_len(len / 2).unwrap();

    let o = run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let reused = events(&o).iter().any(|e| e["event"] == "warning" && e["message"].to_string().contains("audio-0"));
    assert!(!reused, "the short audio is not reused");
    let end = packet_ends(&out.join("film.mkv"), "a:0").into_iter().fold(0.0, f64::max);
    assert!((end - 10.0).abs() < 0.2, "the output's sound ends at {end} s, the rip's at 10 s");
}

/// A run killed between the rename into place and the clean-up leaves the
/// finished rip's work folder (as large as the output): the next run that
/// skips the rip removes it (before, it was kept as resumable for ever).
#[test]
fn a_finished_rips_leftover_work_is_removed_when_it_is_skipped() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("done.mkv");
    std::fs::copy(simple_clip("small.mkv", "320x240", 2), &src).unwrap();
    let out = t.path().join("out");
    let o = run(drapto(t.path()).args(["encode", "-i"]).arg(&src).arg("-o").arg(&out));
    assert!(o.status.success());
    let left = drapto::job::WorkDir::for_input(&t.path().join("work"), &src).unwrap();
    left.create().unwrap();
    std::fs::write(left.root().join("encoded.mkv"), vec![0u8; 100_000]).unwrap();
    let o = run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out));
    assert!(o.status.success() && events(&o).iter().any(|e| e["event"] == "file_skipped"));
    assert!(!left.root().exists(), "the finished rip's work is removed");
}

/// A rip whose time changed (a library copied without its times) is
/// analysed once and its output validated against it; from then on it is
/// skipped before any analysis again (before: on every run, every rip).
#[test]
fn a_rip_touched_since_its_encode_is_analysed_once() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("touched.mkv");
    std::fs::copy(simple_clip("small.mkv", "320x240", 2), &src).unwrap();
    let out = t.path().join("out");
    let encode = || run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out));
    assert!(encode().status.success());
    let later = std::time::SystemTime::now() + Duration::from_secs(60);
    std::fs::File::options().write(true).open(&src).unwrap().set_modified(later).unwrap();
    let analysed = |o: &std::process::Output| {
        let ev = events(o);
        assert!(ev.iter().any(|e| e["event"] == "file_skipped"), "the output is kept");
        ev.iter().any(|e| e["event"] == "stage_started" && e["stage"]["kind"] == "analysis")
    };
    assert!(analysed(&encode()), "the touched rip is analysed and its output validated");
    assert!(!analysed(&encode()), "once: then it is known");
}

/// A view that goes away (`drapto encode … | head`, a closed terminal):
/// the encode goes on to its end without it (before: a panic, exit 101,
/// and the encoder left running without drapto).
#[test]
fn an_encode_whose_stdout_is_closed_finishes_without_it() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let mut child = drapto(t.path())
        .args(["encode", "-i"])
        .arg(simple_clip("small.mkv", "320x240", 2))
        .arg("-o")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{:?}: {}", o.status, String::from_utf8_lossy(&o.stderr));
    assert_eq!(frame_count(&out.join("small.mkv")), 50);
}

/// What a run killed at the end leaves beside an output is cleared: an
/// earlier run's invalid output kept for inspection, once a valid one is in
/// place; the lock of a run killed right after the rename, once a later
/// run finds the output finished (it stayed in the library for ever).
#[test]
fn a_stale_failed_output_and_lock_beside_a_finished_output_are_removed() {
    let t = tempfile::tempdir().unwrap();
    let src = simple_clip("small.mkv", "160x120", 1);
    let out = t.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let failed = out.join("small.mkv.failed");
    std::fs::write(&failed, b"an earlier run's invalid output").unwrap();
    let encode = || run(drapto(t.path()).args(["encode", "-q", "--preset", "12", "-i"]).arg(&src).arg("-o").arg(&out));
    assert!(encode().status.success());
    assert!(out.join("small.mkv").exists() && !failed.exists());
    let lock = out.join(".small.mkv.drapto-lock");
    std::fs::write(&lock, b"pid 1 on a machine long gone").unwrap();
    assert!(encode().status.success());
    assert!(!lock.exists(), "{:?}", walk(&out));
}

/// A chunked rip stopped after its video was assembled (here: the mux
/// fails) reuses the video whole; its report and log still tell of every
/// segment and its VMAF, read from the state. Before, they had none.
#[test]
fn a_chunked_rip_resumed_after_its_video_reports_its_segments() {
    assert!(has_libvmaf(), "the test ffmpeg must have libvmaf (scripts/setup.sh installs one)");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("film.mkv");
    std::fs::copy(simple_clip("small4.mkv", "320x240", 4), &src).unwrap();
    let wrapper = mkvmerge_failing_the_mux(t.path());
    let out = t.path().join("out");
    let args = ["encode", "--json", "--chunked", "--chunk-size", "2", "--preset", "12", "-i"];
    let o = run(drapto(t.path()).env("DRAPTO_MKVMERGE", &wrapper).args(args).arg(&src).arg("-o").arg(&out));
    assert_eq!(o.status.code(), Some(1), "the mux fails");
    let mut first: Vec<serde_json::Value> =
        events(&o).into_iter().filter(|e| e["event"] == "segment_complete").collect();
    // (In the order they finished: by two workers.)
    first.sort_by_key(|e| e["segment"].as_u64());
    assert!(first.len() >= 2, "the test needs several segments: {}", first.len());

    let o = run(drapto(t.path()).args(args).arg(&src).arg("-o").arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = events(&o);
    let started: Vec<&str> =
        ev.iter().filter(|e| e["event"] == "stage_started").filter_map(|e| e["stage"]["kind"].as_str()).collect();
    assert!(!started.contains(&"video"), "the assembled video is reused: {started:?}");
    let again: Vec<&serde_json::Value> = ev.iter().filter(|e| e["event"] == "segment_complete").collect();
    assert_eq!(again.len(), first.len(), "every segment is told of again");
    for (a, b) in first.iter().zip(&again) {
        for key in ["segment", "start_frame", "frames", "crf", "measured_vmaf", "bytes"] {
            assert_eq!(a[key], b[key], "{key}");
        }
        assert_eq!(b["reused"], true);
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("film.mkv.report.json")).unwrap()).unwrap();
    assert_eq!(report["segments"].as_array().map(Vec::len), Some(first.len()), "{report}");
}

/// A file stopped after its video and resumed: its time is both runs', the
/// earlier said (it was the last run's alone, and its speed that much
/// higher).
#[test]
fn a_resumed_files_time_holds_its_earlier_runs() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("timed.mkv");
    std::fs::copy(slow_clip(), &src).unwrap();
    let out_dir = t.path().join("out");
    let mut c = drapto(t.path());
    c.args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir);
    let running = start_until(&mut c, "\"event\":\"stage_complete\",\"input\"");
    let pid = nix::unistd::Pid::from_raw(running.child.id() as i32);
    let stages = || {
        let jobs = t.path().join("work/jobs");
        let job = std::fs::read_dir(&jobs).ok().and_then(|mut d| d.next()).and_then(|e| e.ok());
        job.map(|e| e.path().join("state/stages.json"))
            .is_some_and(|p| std::fs::read_to_string(p).is_ok_and(|s| s.contains("\"video\"")))
    };
    let started = Instant::now();
    while !stages() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let (status, _) = running.finish();
    if status.code() == Some(0) {
        eprintln!("skipped: the file was done before the stop");
        return;
    }
    assert_eq!(status.code(), Some(130));
    let o = run(drapto(t.path()).args(["encode", "--json", "-i"]).arg(&src).arg("-o").arg(&out_dir));
    assert!(o.status.success());
    let done = events(&o).into_iter().find(|e| e["event"] == "file_complete").expect("file_complete");
    let s = &done["summary"];
    let earlier = s["earlier_runs_seconds"].as_f64().unwrap_or(0.0);
    assert!(earlier > 0.0, "{s}");
    assert!(s["encode_seconds"].as_f64().unwrap() > earlier, "{s}");
}
