//! Notifications: word when a file is finished (sizes, reduction, time,
//! the measured VMAF on the chunked path) or fails (the one-line cause),
//! and when a batch or the watch queue is done; to ntfy, to a webhook (the
//! event as the `--json` stream has it), and to a command. Delivery runs on
//! a thread of its own, with time-outs and retries: it never holds up an
//! encode, and a delivery that fails is one warning in the log. The ntfy
//! token is sent, never printed.

use crate::config::{NotifySettings, NtfyPriority};
use crate::events::{Event, EventSink};
use crate::units::{format_bytes, format_duration};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One notification: the event's JSON, its kind, its file, and the words
/// a person reads.
#[derive(Debug, Clone)]
pub struct Note {
    pub kind: &'static str,
    pub file: Option<PathBuf>,
    pub title: String,
    pub message: String,
    /// The event as one `--json` line.
    pub json: String,
    /// A failure, or a batch with failures or stopped: it stands out.
    pub urgent: bool,
}

/// The notifier: an [`EventSink`] that hands notifications to its thread.
pub struct Notifier {
    tx: Mutex<Option<mpsc::Sender<Note>>>,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Per file: frames and frame-weighted VMAF of its measured segments.
    vmaf: Mutex<BTreeMap<PathBuf, (f64, f64)>>,
    timeout: Duration,
}

impl Notifier {
    /// A notifier for `settings`, `None` when no target is set.
    pub fn new(settings: &NotifySettings) -> Option<Notifier> {
        if settings.ntfy.is_none() && settings.webhook.is_none() && settings.command.is_none() {
            return None;
        }
        let (tx, rx) = mpsc::channel::<Note>();
        let s = settings.clone();
        let worker = std::thread::spawn(move || {
            for note in rx {
                deliver(&s, &note);
            }
        });
        Some(Notifier {
            tx: Mutex::new(Some(tx)),
            worker: Mutex::new(Some(worker)),
            vmaf: Mutex::new(BTreeMap::new()),
            timeout: Duration::from_secs(settings.timeout.into()),
        })
    }

    /// Waits for the notifications still to go, at most one delivery's
    /// time-out: a server that hangs delays drapto's exit by no more.
    pub fn finish(&self) {
        drop(self.tx.lock().expect("notifier").take());
        let Some(worker) = self.worker.lock().expect("notifier").take() else { return };
        let deadline = Instant::now() + self.timeout;
        while !worker.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if worker.is_finished() {
            let _ = worker.join();
        } else {
            tracing::warn!("notifications still undelivered at exit were dropped (the server did not answer)");
        }
    }

    fn send(&self, note: Note) {
        if let Some(tx) = self.tx.lock().expect("notifier").as_ref() {
            let _ = tx.send(note);
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.finish();
    }
}

impl EventSink for Notifier {
    fn emit(&self, event: &Event) {
        if let Event::SegmentComplete { input, frames, measured_vmaf: Some(v), .. } = event {
            let mut m = self.vmaf.lock().expect("vmaf");
            let e = m.entry(input.clone()).or_default();
            e.0 += *frames as f64;
            e.1 += *frames as f64 * v;
            return;
        }
        let vmaf = |input: &PathBuf| {
            self.vmaf.lock().expect("vmaf").remove(input).filter(|(f, _)| *f > 0.0).map(|(f, s)| s / f)
        };
        if let Some(note) = note_of(event, vmaf) {
            self.send(note);
        }
    }
}

/// The notification of `event`, when it is one worth sending; `vmaf`
/// gives a finished file's measured mean VMAF.
pub fn note_of(event: &Event, vmaf: impl FnOnce(&PathBuf) -> Option<f64>) -> Option<Note> {
    let json = crate::report::json::line(event);
    let name = |p: &PathBuf| p.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let (kind, file, title, message) = match event {
        Event::FileComplete { summary: s } => {
            let (title, message) = file_complete(s, vmaf(&s.input));
            ("file_complete", Some(s.input.clone()), title, message)
        }
        Event::FileFailed { input, error, .. } => {
            ("file_failed", Some(input.clone()), format!("Failed: {}", name(input)), error.clone())
        }
        Event::BatchComplete { summary: s } => {
            let (title, message) = batch_complete(s)?;
            ("batch_complete", None, title, message)
        }
        _ => return None,
    };
    // A rip not encoded now because a ripper still writes it, or another
    // drapto has it, is no alarm: it waits for the next run, as the note
    // says. One that waits on the user is.
    let urgent = match event {
        Event::BatchComplete { summary: s } => {
            let needs_hand = s.not_encoded.iter().any(|(_, why)| why.ends_with(crate::summary::FIX_THEN_RUN));
            !s.failed.is_empty() || !s.interrupted.is_empty() || !s.not_started.is_empty() || needs_hand
        }
        _ => kind == "file_failed",
    };
    Some(Note { kind, file, title, message, json, urgent })
}

/// A finished file's title and message (with its measured mean `vmaf`).
fn file_complete(s: &crate::summary::FileSummary, vmaf: Option<f64>) -> (String, String) {
    let name = s.input.file_name().unwrap_or_default().to_string_lossy();
    let vmaf = vmaf.map(|v| format!(", VMAF {v:.2}")).unwrap_or_default();
    let change = if s.reduction_percent >= 0.0 {
        format!("{:.1}% smaller", s.reduction_percent)
    } else {
        format!("{:.1}% larger", -s.reduction_percent)
    };
    let mut message = format!(
        "{} → {} ({change}) in {}{vmaf}",
        format_bytes(s.input_bytes),
        format_bytes(s.output_bytes),
        format_duration(s.encode_seconds)
    );
    let mut title = format!("Encoded {name}");
    if let Some(t) = &s.truncated {
        // (Encoded as it is, on request: the note says so.)
        title = format!("Encoded truncated rip {name}");
        message.push_str(&format!("; the rip ends at {:.1} s of {:.1} s", t.ends_at, t.promised));
    }
    (title, message)
}

/// A batch's title and message; none for a run that did nothing (every rip
/// already done: no news) or a batch of one (its file's own note says all).
fn batch_complete(s: &crate::summary::BatchSummary) -> Option<(String, String)> {
    let stopped = s.stopped || !s.interrupted.is_empty() || !s.not_started.is_empty();
    let files = s.files.len() + s.failed.len();
    if !stopped && s.not_encoded.is_empty() && files <= 1 {
        return None;
    }
    let mut counts = format!("{} encoded, {} skipped, {} failed", s.files.len(), s.skipped.len(), s.failed.len());
    let counted = [
        (s.interrupted.len(), "interrupted"),
        (s.not_started.len(), "not started"),
        (s.not_encoded.len(), "not encoded now"),
    ];
    for (n, what) in counted {
        if n > 0 {
            counts.push_str(&format!(", {n} {what}"));
        }
    }
    let message = format!(
        "{counts}; {} → {} in {}",
        format_bytes(s.total_input_bytes),
        format_bytes(s.total_output_bytes),
        format_duration(s.total_seconds)
    );
    let title = match s.failed.len() {
        _ if stopped => "drapto: stopped".to_string(),
        0 if !s.not_encoded.is_empty() => "drapto: done, some rips not encoded now".to_string(),
        0 => "drapto: all done".to_string(),
        n => format!("drapto: done, {n} failed"),
    };
    Some((title, message))
}

/// Sends `note` to every target, each tried up to `retries` times.
fn deliver(s: &NotifySettings, note: &Note) {
    let timeout = Duration::from_secs(s.timeout.into());
    let agent = ureq::AgentBuilder::new().timeout_connect(timeout).timeout(timeout).build();
    if let Some(url) = &s.ntfy {
        retried(s, "ntfy", || {
            let (priority, tags) = ntfy_marks(s, note);
            let mut r = agent
                .post(url)
                .set("Title", &header_text(&note.title))
                .set("Priority", &priority)
                .set("Tags", &header_text(&tags));
            if let Some(t) = &s.ntfy_token {
                r = r.set("Authorization", &format!("Bearer {t}"));
            }
            r.send_string(&note.message).map(|_| ()).map_err(describe)
        });
    }
    if let Some(url) = &s.webhook {
        retried(s, "webhook", || {
            agent
                .post(url)
                .set("Content-Type", "application/json")
                .send_string(&note.json)
                .map(|_| ())
                .map_err(describe)
        });
    }
    if let Some(cmd) = &s.command {
        retried(s, "command", || run_command(cmd, note, timeout));
    }
}

/// `text` as an HTTP header's value: as it is when plain ASCII, else as an
/// RFC 2047 encoded word, which ntfy decodes (a header holds ASCII only:
/// the note of "Amélie (2001).mkv" was refused, and never sent).
fn header_text(text: &str) -> String {
    use base64::Engine;
    if text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return text.to_string();
    }
    format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(text))
}

/// The ntfy priority and tags of `note`: a failure stands out (at least
/// high priority, and a warning tag) from the configured ones.
fn ntfy_marks(s: &NotifySettings, note: &Note) -> (String, String) {
    let failed = note.urgent;
    let priority = if failed { s.ntfy_priority.max(NtfyPriority::High) } else { s.ntfy_priority };
    let mut tags = s.ntfy_tags.clone();
    if failed {
        tags.insert(0, "warning".into());
    }
    (priority.name().to_string(), tags.join(","))
}

/// An HTTP failure in words (the URL's host and status, never headers).
fn describe(e: ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, r) => format!("the server answered {code} {}", r.status_text()),
        ureq::Error::Transport(t) => t.kind().to_string(),
    }
}

/// Tries `f` up to `retries` times, waiting 1, 2, 4… s between; the last
/// failure is one warning in the log.
fn retried(s: &NotifySettings, target: &str, mut f: impl FnMut() -> Result<(), String>) {
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=s.retries.max(1) {
        match f() {
            Ok(()) => return,
            Err(e) if attempt == s.retries.max(1) => {
                tracing::warn!("notification to {target} not delivered after {attempt} tries: {e}");
            }
            Err(_) => {
                std::thread::sleep(wait);
                wait *= 2;
            }
        }
    }
}

/// Runs the notification command with the event on its stdin, killing it
/// after `timeout`, with whatever it started (its own process group: a
/// `curl` to a dead host left behind each time adds up over weeks).
fn run_command(cmd: &str, note: &Note, timeout: Duration) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new("sh")
        .process_group(0)
        .arg("-c")
        .arg(cmd)
        .env("DRAPTO_EVENT", note.kind)
        .env("DRAPTO_FILE", note.file.as_deref().unwrap_or(std::path::Path::new("")))
        .stdin(std::process::Stdio::piped())
        // What it prints goes with drapto's messages, never into stdout's
        // `--json` events (a `curl` printed its answer there).
        .stdout(std::io::stderr())
        .spawn()
        .map_err(|e| format!("could not start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "{}", note.json);
    }
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("it ended with {status}")),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let group = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                return Err(format!("it took more than {} s", timeout.as_secs()));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::FileSummary;

    #[test]
    fn header_text_is_ascii_as_it_is_else_an_encoded_word() {
        assert_eq!(header_text("Encoded heat.mkv"), "Encoded heat.mkv");
        assert_eq!(header_text("Encoded Amélie.mkv"), "=?UTF-8?B?RW5jb2RlZCBBbcOpbGllLm1rdg==?=");
        assert_eq!(header_text("a\tb"), "=?UTF-8?B?YQli?=", "no control characters either");
    }

    #[test]
    fn a_command_past_its_time_is_stopped_with_what_it_started() {
        let t = tempfile::tempdir().unwrap();
        let pid_file = t.path().join("pid");
        let note = Note {
            kind: "file_complete",
            file: None,
            title: "t".into(),
            message: "m".into(),
            json: "{}".into(),
            urgent: false,
        };
        // The hook starts a child that outlives it unless stopped.
        let cmd = format!("sleep 30 & echo $! > '{}'; wait", pid_file.display());
        let e = run_command(&cmd, &note, Duration::from_millis(500)).unwrap_err();
        assert!(e.contains("more than"), "{e}");
        let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // (Killed, it may stay a zombie until someone reaps it.)
        let ps = std::process::Command::new("ps").args(["-o", "stat=", "-p", &pid.to_string()]).output().unwrap();
        let stat = String::from_utf8_lossy(&ps.stdout).trim().to_string();
        assert!(stat.is_empty() || stat.starts_with('Z'), "the hook's child {pid} still runs ({stat})");
    }

    #[test]
    fn finished_and_failed_files_and_the_batch_are_worth_a_note() {
        let s = FileSummary::new("/r/Heat.mkv".into(), "/o/Heat.mkv".into(), 4_000_000, 1_000_000, 65.0, 60.0, None);
        let n = note_of(&Event::FileComplete { summary: s }, |_| Some(93.456)).unwrap();
        assert_eq!(n.kind, "file_complete");
        assert_eq!(n.title, "Encoded Heat.mkv");
        assert!(n.message.contains("75.0% smaller") && n.message.contains("VMAF 93.46"), "{}", n.message);
        let json: serde_json::Value = serde_json::from_str(&n.json).unwrap();
        assert_eq!(json["event"], "file_complete");
        // A truncated rip encoded as it is, on request: said.
        let mut cut =
            FileSummary::new("/r/Cut.mkv".into(), "/o/Cut.mkv".into(), 4_000_000, 1_000_000, 65.0, 60.0, None);
        cut.truncated = Some(crate::summary::Truncation { ends_at: 30.0, promised: 60.0 });
        let n = note_of(&Event::FileComplete { summary: cut }, |_| None).unwrap();
        assert!(n.title.contains("truncated") && n.message.contains("ends at 30.0 s of 60.0 s"), "{n:?}");
        let failed = Event::FileFailed {
            input: "/r/x.mkv".into(),
            error: "/r/x.mkv: has no video stream".into(),
            kept: None,
            command: None,
        };
        assert_eq!(note_of(&failed, |_| None).unwrap().message, "/r/x.mkv: has no video stream");
        let step = Event::Warning { input: None, message: "x".into() };
        assert!(note_of(&step, |_| None).is_none());
    }

    #[test]
    fn a_batch_that_stopped_says_so() {
        let mut s = crate::summary::BatchSummary::default();
        // Nothing done, or one file (its own note said it): no note.
        assert!(note_of(&Event::BatchComplete { summary: s.clone() }, |_| None).is_none());
        s.failed.push(("/r/x.mkv".into(), "bad".into()));
        assert!(note_of(&Event::BatchComplete { summary: s.clone() }, |_| None).is_none());
        s.failed.push(("/r/y.mkv".into(), "bad".into()));
        let done = note_of(&Event::BatchComplete { summary: s.clone() }, |_| None).unwrap();
        assert_eq!(done.title, "drapto: done, 2 failed");
        let settings = NotifySettings { ntfy_priority: NtfyPriority::Default, ..NotifySettings::default() };
        let (priority, tags) = ntfy_marks(&settings, &done);
        assert_eq!(priority, "high");
        assert!(tags.starts_with("warning"));
        s.failed.clear();
        s.interrupted.push("/r/a.mkv".into());
        s.not_started.push("/r/b.mkv".into());
        let stopped = note_of(&Event::BatchComplete { summary: s }, |_| None).unwrap();
        assert_eq!(stopped.title, "drapto: stopped");
        assert!(stopped.message.starts_with("0 encoded, 0 skipped, 0 failed, 1 interrupted, 1 not started"));
        assert!(stopped.urgent);
        // A watch stopped while idle says so too (no alarm: nothing was cut).
        let idle = crate::summary::BatchSummary { stopped: true, ..Default::default() };
        let note = note_of(&Event::BatchComplete { summary: idle }, |_| None).unwrap();
        assert_eq!((note.title.as_str(), note.urgent), ("drapto: stopped", false));
        // Rips not encoded now (still being written) are no alarm.
        let mut waiting = crate::summary::BatchSummary::default();
        waiting.files.push(FileSummary::new("/r/a.mkv".into(), "/o/a.mkv".into(), 10, 5, 1.0, 1.0, None));
        waiting.not_encoded.push(("/r/b.mkv".into(), "still being written".into()));
        let note = note_of(&Event::BatchComplete { summary: waiting }, |_| None).unwrap();
        assert_eq!((note.title.as_str(), note.urgent), ("drapto: done, some rips not encoded now", false));
        // One that waits on the user (unreadable, two rips for one output) is.
        let mut blocked = crate::summary::BatchSummary::default();
        blocked.files.push(FileSummary::new("/r/a.mkv".into(), "/o/a.mkv".into(), 10, 5, 1.0, 1.0, None));
        let why = format!("cannot be read: Permission denied; {}", crate::summary::FIX_THEN_RUN);
        blocked.not_encoded.push(("/r/c.mkv".into(), why));
        assert!(note_of(&Event::BatchComplete { summary: blocked }, |_| None).unwrap().urgent);
        // A file that grew says so.
        let s = FileSummary::new("/r/a.mkv".into(), "/o/a.mkv".into(), 1_000_000, 1_331_000, 1.0, 1.0, None);
        assert!(note_of(&Event::FileComplete { summary: s }, |_| None).unwrap().message.contains("(33.1% larger)"));
    }
}
