//! Segment encodes spread over hosts with GNU Parallel over SSH. A private
//! sshd on 127.0.0.1 plays the second machine ("remote") beside `:` (this
//! one); "nowhere" is a host whose port has nothing listening.
//!
//! Needs `sshd` (Debian openssh-server), `parallel` and `rsync`; the tests
//! fail, naming what to install, when they are missing. Linux only: the
//! lost host is found and killed through /proc.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A throw-away sshd that lets this user in with a throw-away key.
struct Sshd {
    dir: tempfile::TempDir,
    child: Child,
    /// Marks every process started on the "remote" side (in its environment).
    marker: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn need(program: &str, package: &str) -> PathBuf {
    which(program).unwrap_or_else(|| panic!("{program} not found: apt-get install {package} (scripts/setup.sh does)"))
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&format!("{path}:/usr/sbin:/sbin")).map(|d| d.join(program)).find(|p| p.is_file())
}

impl Sshd {
    fn start() -> Sshd {
        let sshd = need("sshd", "openssh-server");
        need("parallel", "parallel");
        need("rsync", "rsync");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in ["client", "host"] {
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(key))
                .status()
                .unwrap();
            assert!(st.success());
        }
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\nAuthorizedKeysFile {d}/client.pub\nPidFile {d}/sshd.pid\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        let closed = free_port();
        let client = format!(
            "Host remote\n  HostName 127.0.0.1\n  Port {port}\nHost nowhere\n  HostName 127.0.0.1\n  Port {closed}\n\
             Host *\n  User {}\n  IdentityFile {}/client\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  \
             BatchMode yes\n  LogLevel ERROR\n  ConnectTimeout 5\n",
            user.trim(),
            d.display()
        );
        std::fs::write(d.join("ssh_config"), client).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new(sshd)
            .args(["-D", "-f"])
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .spawn()
            .expect("start sshd");
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "sshd did not start: {:?}",
                std::fs::read_to_string(d.join("sshd.log"))
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let marker = format!("drapto-test-{}-{port}", std::process::id());
        Sshd { dir, child, marker }
    }

    fn ssh_config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    fn hosts(&self, lines: &str) -> PathBuf {
        let p = self.dir.path().join(format!("hosts-{}", lines.len()));
        std::fs::write(&p, lines).unwrap();
        p
    }

    /// drapto set up to reach the hosts: ssh through our config, drapto and
    /// ffmpeg on the "remote" side given by path, and every remote process
    /// marked.
    fn drapto(&self, temp: &Path) -> Command {
        let mut c = drapto(temp);
        c.env("DRAPTO_SSH", format!("ssh -F {}", self.ssh_config().display()))
            .env(
                "DRAPTO_REMOTE_DRAPTO",
                format!(
                    "DRAPTO_TEST_REMOTE={} DRAPTO_FFMPEG={} {}",
                    self.marker,
                    ffmpeg().display(),
                    env!("CARGO_BIN_EXE_drapto")
                ),
            )
            .env("DRAPTO_ENABLE_CHUNKED_ENCODING", "auto")
            .env("DRAPTO_CHUNK_SIZE", "2")
            .env("DRAPTO_PRESET", "12")
            .env("DRAPTO_VMAF_SUBSAMPLE", "1");
        c
    }

    /// `drapto --json encode -i src -o out --hosts hosts`, set up by [`Sshd::drapto`].
    fn encode(&self, temp: &Path, src: &Path, out: &Path, hosts: &Path) -> Command {
        let mut c = self.drapto(temp);
        c.args(["--json", "encode", "-i"]).arg(src).arg("-o").arg(out).arg("--hosts").arg(hosts);
        c
    }

    /// The host is lost: its sshd, every session and every process it started.
    fn kill_host(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let needle = format!("DRAPTO_TEST_REMOTE={}", self.marker);
        for _ in 0..3 {
            for e in std::fs::read_dir("/proc").unwrap().flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
                let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
                let is_remote = env.split(|b| *b == 0).any(|v| v == needle.as_bytes());
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let is_session = String::from_utf8_lossy(&cmdline).starts_with("sshd: ")
                    && std::fs::read_to_string(e.path().join("stat"))
                        .is_ok_and(|s| s.split_whitespace().nth(3) == Some(&self.child.id().to_string()));
                if is_remote || is_session {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill_host();
    }
}

fn dist_clip() -> PathBuf {
    fixture(
        "dist3.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=12:duration=8,hue=H=t/3,format=yuv420p",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=330:sample_rate=48000:duration=8",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "24",
            "-c:a",
            "flac",
        ],
    )
}

fn of_kind<'a>(ev: &'a [Value], kind: &str) -> Vec<&'a Value> {
    ev.iter().filter(|e| e["event"] == kind).collect()
}

/// The output is whole: validated, every source frame, audio kept.
fn assert_complete(ev: &[Value], src: &Path, out: &Path) {
    let v = of_kind(ev, "validation_complete");
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["passed"], true, "{}", v[0]);
    assert_eq!(frame_count(out), frame_count(src), "every source frame, once");
    // Each segment from its own frames: a host that read a shared source
    // from its start encoded the first segment's frames in every segment.
    let psnr = lowest_psnr(out, src);
    assert!(psnr > 24.0, "the output's pictures are the source's: lowest frame PSNR {psnr:.1} dB");
    let p = ffprobe(out);
    assert_eq!(streams(&p, "video")[0]["codec_name"], "av1");
    assert_eq!(streams(&p, "audio")[0]["codec_name"], "opus");
}

#[test]
fn segments_spread_over_local_and_remote_hosts() {
    assert!(has_libvmaf(), "the chunked path needs an ffmpeg with libvmaf (scripts/setup.sh)");
    let sshd = Sshd::start();
    let t = tempfile::tempdir().unwrap();
    let src = dist_clip();
    let out_dir = t.path().join("out");
    let hosts = sshd.hosts(":\nremote\nnowhere\n");
    // A work folder named with GNU Parallel's replacement string, a space
    // and a quote: it is no part of the command GNU Parallel is given.
    let work = t.path().join("work {} it's");
    std::fs::create_dir_all(&work).unwrap();
    let o = run(&mut sshd.encode(&work, &src, &out_dir, &hosts));
    assert!(o.status.success());
    let ev = events(&o);
    // The unreachable host is left out with a warning, not a failure.
    assert!(
        of_kind(&ev, "warning").iter().any(|w| w["message"].as_str().unwrap().contains("host nowhere left out")),
        "no warning about the unreachable host"
    );
    let done = of_kind(&ev, "segment_complete");
    assert_eq!(done.len(), 4, "8 s in 2 s segments");
    let hosts_used: BTreeSet<&str> = done.iter().map(|e| e["host"].as_str().unwrap()).collect();
    assert_eq!(hosts_used, BTreeSet::from([":", "remote"]), "both hosts encode segments");
    let indices: BTreeSet<u64> = done.iter().map(|e| e["segment"].as_u64().unwrap()).collect();
    assert_eq!(indices.len(), 4, "each segment once");
    for e in &done {
        let m = e["measured_vmaf"].as_f64().unwrap();
        assert!((91.0..=97.0).contains(&m), "segment VMAF {m} far from the target: {e}");
    }
    assert_complete(&ev, &src, &out_dir.join("dist3.mkv"));
}

#[test]
fn shared_source_sends_jobs_without_extracts() {
    assert!(has_libvmaf());
    let sshd = Sshd::start();
    let t = tempfile::tempdir().unwrap();
    let src = dist_clip();
    let out_dir = t.path().join("out");
    let hosts = sshd.hosts("remote\n");
    let o = run(sshd.encode(t.path(), &src, &out_dir, &hosts).args(["--shared-source", "--chunk-size", "4"]));
    assert!(o.status.success());
    let ev = events(&o);
    let done = of_kind(&ev, "segment_complete");
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|e| e["host"] == "remote"));
    assert_complete(&ev, &src, &out_dir.join("dist3.mkv"));
    let log = std::fs::read_dir(t.path().join("work/logs")).unwrap().flatten().next().unwrap().path();
    let log = std::fs::read_to_string(log).unwrap();
    assert!(!log.contains(".src.mkv"), "a shared source needs no extract");
}

#[test]
fn a_lost_host_costs_only_its_segments() {
    assert!(has_libvmaf());
    let mut sshd = Sshd::start();
    let t = tempfile::tempdir().unwrap();
    let src = dist_clip();
    let out_dir = t.path().join("out");
    let hosts = sshd.hosts(":\nremote\n");
    let mut child =
        sshd.encode(t.path(), &src, &out_dir, &hosts).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = Vec::new();
    let mut killed_after = None;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        // Once the remote host has finished a segment (and so holds the
        // next one), it disappears.
        if killed_after.is_none() && v["event"] == "segment_complete" && v["host"] == "remote" {
            sshd.kill_host();
            killed_after = Some(lines.len());
        }
        lines.push(v);
    }
    let status = child.wait().unwrap();
    assert!(killed_after.is_some(), "the remote host never finished a segment");
    assert!(status.success(), "the job completes without the lost host");
    let done = of_kind(&lines, "segment_complete");
    let indices: BTreeSet<u64> = done.iter().map(|e| e["segment"].as_u64().unwrap()).collect();
    assert_eq!((done.len(), indices.len()), (4, 4), "every segment exactly once");
    let after: Vec<&&Value> =
        done.iter().filter(|e| lines.iter().position(|l| l == **e).unwrap() > killed_after.unwrap()).collect();
    assert!(!after.is_empty() && after.iter().all(|e| e["host"] == ":"), "after the loss only this machine works");
    assert_complete(&lines, &src, &out_dir.join("dist3.mkv"));
}

#[test]
fn doctor_checks_every_host() {
    let sshd = Sshd::start();
    let t = tempfile::tempdir().unwrap();
    let hosts = sshd.hosts(":\n2/remote\nnowhere\n");
    let o = run(sshd.drapto(t.path()).arg("doctor").arg("--hosts").arg(&hosts));
    assert_eq!(o.status.code(), Some(1), "a host that does not answer fails the check");
    let text = stdout(&o);
    let line = |name: &str| text.lines().find(|l| l.contains(&format!(" {name}"))).unwrap_or_default().to_string();
    assert!(line(":").contains('✓'), "{text}");
    assert!(line("remote").contains('✓') && line("remote").contains("2 slot(s)"), "{text}");
    assert!(line("nowhere").contains('✗') && line("nowhere").contains("did not answer"), "{text}");

    // A host whose drapto cannot run at all.
    let o = run(sshd
        .drapto(t.path())
        .env("DRAPTO_REMOTE_DRAPTO", "/nonexistent/drapto")
        .args(["--json", "doctor", "--hosts"])
        .arg(sshd.hosts("remote\n")));
    assert_eq!(o.status.code(), Some(1));
    let first: Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(first["hosts"][0]["ready"], false);
    assert!(first["hosts"][0]["problem"].as_str().unwrap().contains("/nonexistent/drapto"), "{first}");
}

#[test]
fn a_bad_hosts_file_is_refused_with_its_line() {
    let t = tempfile::tempdir().unwrap();
    let hosts = t.path().join("hosts");
    std::fs::write(&hosts, ":\n0/remote\n").unwrap();
    let src = simple_clip("small.mkv", "320x240", 2);
    let o = run(drapto(t.path())
        .env("DRAPTO_ENABLE_CHUNKED_ENCODING", "auto")
        .arg("encode")
        .arg("-i")
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("out"))
        .arg("--hosts")
        .arg(&hosts));
    assert_eq!(o.status.code(), Some(3), "a configuration error");
    let err = stderr(&o);
    assert!(err.contains("hosts file") && err.contains("line 2") && err.contains("at least 1"), "{err}");
    assert!(!t.path().join("out/small.mkv").exists());
}

#[test]
fn a_segment_that_fails_on_every_host_fails_the_file_instead_of_hanging() {
    assert!(has_libvmaf());
    let sshd = Sshd::start();
    let t = tempfile::tempdir().unwrap();
    // A host whose worker answers the version check but fails every job
    // (its disk full, its ffmpeg crashing).
    let worker = t.path().join("failing-drapto");
    let text = format!(
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --info ] && exec {} \"$@\"; done\necho 'worker: disk full' >&2\nexit 1\n",
        env!("CARGO_BIN_EXE_drapto")
    );
    script(&worker, &text);
    let out_dir = t.path().join("out");
    let hosts = sshd.hosts("remote\n");
    let mut child = sshd
        .encode(t.path(), &dist_clip(), &out_dir, &hosts)
        .env("DRAPTO_REMOTE_DRAPTO", format!("DRAPTO_FFMPEG={} {}", ffmpeg().display(), worker.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
        stdout.lines().map_while(Result::ok).filter_map(|l| serde_json::from_str(&l).ok()).collect::<Vec<Value>>()
    });
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the encode hung after its segments failed on every host");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let lines = reader.join().unwrap();
    assert!(!status.success());
    let failed = of_kind(&lines, "file_failed");
    assert_eq!(failed.len(), 1, "{:?}", lines.iter().map(|l| l["event"].clone()).collect::<Vec<_>>());
    assert!(failed[0]["error"].as_str().unwrap().contains("failed on every host tried"), "{}", failed[0]["error"]);
    assert!(!out_dir.join("dist3.mkv").exists());
}

/// A rip whose video does not decode in full (a damaged disc) is encoded
/// on the standard path when the segments go to hosts, as it is with this
/// machine's workers. It failed: at the extract made for the hosts, or,
/// with a shared source, once every host had tried the segment.
#[test]
fn a_damaged_rip_on_hosts_goes_to_the_standard_path() {
    assert!(has_libvmaf());
    need("parallel", "parallel");
    let clean = fixture(
        "dist-clean24.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=24:duration=8",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "24",
        ],
    );
    // Frames 72–119 (3–5 s) damaged: 149 of the 192 frames decode.
    let noise = "noise=amount='5*gte(pts*tb\\,3)*lt(pts*tb\\,5)'";
    let damaged = fixture("dist-damaged.mkv", &["-i", clean.to_str().unwrap(), "-c", "copy", "-bsf:v", noise]);
    for shared in [false, true] {
        let t = tempfile::tempdir().unwrap();
        let hosts = t.path().join("hosts");
        std::fs::write(&hosts, ":\n").unwrap();
        let out_dir = t.path().join("out");
        let mut c = drapto(t.path());
        c.args(["--json", "encode", "--chunked", "--chunk-size", "2", "--preset", "12", "--hosts"]).arg(&hosts);
        if shared {
            c.arg("--shared-source");
        }
        let o = run(c.arg("-i").arg(&damaged).arg("-o").arg(&out_dir));
        let ev = events(&o);
        assert!(o.status.success(), "shared {shared}: {}", stderr(&o));
        let said = of_kind(&ev, "warning").iter().any(|w| {
            let m = w["message"].as_str().unwrap_or("");
            m.contains("does not decode in full") && m.contains("standard path")
        });
        assert!(said, "shared {shared}: {:?}", of_kind(&ev, "warning"));
        assert_eq!(frame_count(&out_dir.join("dist-damaged.mkv")), frame_count(&damaged), "shared {shared}");
    }
}

#[test]
fn dolby_vision_without_a_shared_source_stays_on_this_machine() {
    assert!(has_libvmaf());
    let sshd = Sshd::start();
    let t = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dv_p81_144p.mkv");
    let out_dir = t.path().join("out");
    let hosts = sshd.hosts("remote\n");
    let o = run(&mut sshd.encode(t.path(), &src, &out_dir, &hosts));
    let lines = events(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    let warned =
        of_kind(&lines, "warning").iter().any(|w| w["message"].as_str().unwrap_or("").contains("Dolby Vision"));
    assert!(warned, "the user is told why the hosts are not used");
    let done = of_kind(&lines, "segment_complete");
    assert!(done.len() >= 2 && done.iter().all(|e| e["host"] != "remote"), "{done:?}");
    let p = ffprobe(&out_dir.join("dv_p81_144p.mkv"));
    let dv = streams(&p, "video")[0]["side_data_list"].to_string();
    assert!(dv.contains("DOVI configuration record"), "{dv}");
}

/// The `:` host (this machine) uses the ffmpeg this run found by flag (or
/// configuration file), not the one on PATH: its worker was started with
/// neither, found PATH's ffmpeg (Debian's, without libvmaf here), and this
/// machine was left out as unable, or encoded with another SVT-AV1.
#[test]
fn this_machine_as_a_host_uses_the_ffmpeg_named_by_flag() {
    need("parallel", "parallel");
    let t = tempfile::tempdir().unwrap();
    let hosts = t.path().join("hosts");
    std::fs::write(&hosts, ":\n").unwrap();
    let o = run(drapto(t.path())
        .env_remove("DRAPTO_FFMPEG")
        .env("PATH", "/usr/bin:/bin")
        .arg("doctor")
        .arg("--ffmpeg")
        .arg(ffmpeg())
        .arg("--hosts")
        .arg(&hosts));
    let text = stdout(&o);
    let line = text.lines().find(|l| l.contains(" :")).unwrap_or_default();
    assert!(line.contains('✓'), "{text}{}", stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{text}");
}
