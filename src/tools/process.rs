//! Running child processes: each in its own process group (so a stop request
//! ends it and everything it started), stdout streamed line by line, the tail
//! of stderr kept for error messages, the command line logged.

use crate::cancel::Cancel;
use crate::error::{Exit, ProcessError, ProcessFailure};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How many stderr lines are kept for the error message.
const STDERR_TAIL: usize = 40;
/// How long a child gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(3);

/// Runs `cmd` for `step`, calling `on_line` with each stdout line.
///
/// Returns the kept stderr lines on success. When `cancel` is set the child's
/// process group gets SIGTERM, then SIGKILL after a grace period, and the
/// result is [`ProcessFailure::Cancelled`].
pub fn run(
    cmd: &mut Command,
    step: &str,
    cancel: &Cancel,
    mut on_line: impl FnMut(&str),
) -> Result<Vec<String>, ProcessFailure> {
    run_lines(cmd, step, cancel, |line| {
        if let Line::Out(l) = line {
            on_line(l)
        }
    })
}

/// A line a child wrote.
#[derive(Debug)]
pub enum Line<'a> {
    Out(&'a str),
    Err(&'a str),
}

/// Like [`run`], but hands over stderr lines too (for filters that report on
/// stderr, such as `scdet`).
pub fn run_lines(
    cmd: &mut Command,
    step: &str,
    cancel: &Cancel,
    on_line: impl FnMut(Line),
) -> Result<Vec<String>, ProcessFailure> {
    run_lines_fed(cmd, Stdio::null(), Signal::SIGTERM, step, cancel, on_line)
}

/// A child started by [`start`].
struct Started {
    child: std::process::Child,
    pgid: Pid,
    /// The program as given, its file name, and the whole command line.
    program: String,
    program_name: String,
    command: String,
}

/// Logs `cmd` and starts it (unless a stop was asked for) with `stdin`, its
/// output piped, in its own process group registered with `cancel`: a stop
/// ends it and all it started, and so does drapto's guard if drapto is
/// killed outright (see crate::guard).
fn start(cmd: &mut Command, stdin: Stdio, step: &str, cancel: &Cancel, quiet: bool) -> Result<Started, ProcessFailure> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let program_name =
        std::path::Path::new(&program).file_name().map_or(program.clone(), |n| n.to_string_lossy().into_owned());
    let command = command_line(cmd);
    if quiet {
        tracing::debug!("{step}: {command}");
    } else {
        tracing::info!("{step}: {command}");
    }
    if let Some(signal) = cancel.signal() {
        return Err(ProcessFailure::Cancelled(signal));
    }
    // Messages in English (the C library's own, `strerror`, among them:
    // "No space left on device" is how a full disk is told apart), and
    // text in UTF-8 whatever locale drapto was started in (see
    // `platform::utf8_locale`).
    if let Some(locale) = crate::platform::utf8_locale() {
        cmd.env("LC_ALL", locale);
    }
    let child = cmd
        .env("LANGUAGE", "en")
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| ProcessFailure::Spawn { program: program.clone(), source })?;
    let pgid = Pid::from_raw(child.id() as i32);
    cancel.register_group(pgid.as_raw());
    Ok(Started { child, pgid, program, program_name, command })
}

/// Like [`run_lines`], with `stdin` as the child's standard input (for a
/// program that takes its work as lines, such as GNU Parallel) and
/// `stop_signal` as the first signal of a stop (GNU Parallel ends its jobs on
/// SIGINT but only stops starting new ones on SIGTERM).
pub fn run_lines_fed(
    cmd: &mut Command,
    stdin: Stdio,
    stop_signal: Signal,
    step: &str,
    cancel: &Cancel,
    on_line: impl FnMut(Line),
) -> Result<Vec<String>, ProcessFailure> {
    supervised(cmd, stdin, (stop_signal, false), step, cancel, on_line)
}

/// [`run_lines_fed`], its command line logged at debug level when `quiet`
/// (a question to a tool, not work on a rip).
fn supervised(
    cmd: &mut Command,
    stdin: Stdio,
    (stop_signal, quiet): (Signal, bool),
    step: &str,
    cancel: &Cancel,
    mut on_line: impl FnMut(Line),
) -> Result<Vec<String>, ProcessFailure> {
    let started = start(cmd, stdin, step, cancel, quiet)?;
    let pgid = started.pgid;
    let result = supervise(started, stop_signal, step, cancel, &mut on_line);
    cancel.unregister_group(pgid.as_raw());
    result
}

/// Streams the child's output until it ends, honouring cancellation.
fn supervise(
    started: Started,
    stop_signal: Signal,
    step: &str,
    cancel: &Cancel,
    on_line: &mut impl FnMut(Line),
) -> Result<Vec<String>, ProcessFailure> {
    let Started { mut child, pgid, program, program_name, command } = started;
    let (rx, out_thread, err_thread) = read_output(&mut child, step);
    let mut stopper = Stopper { pgid, stop_signal, term_sent: None, kill_sent: false };
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok((false, line)) => on_line(Line::Out(&line)),
            Ok((true, line)) => on_line(Line::Err(&line)),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        stopper.tick(cancel);
    }
    let status = loop {
        // stdout is closed; the child is exiting. Keep honouring cancellation.
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {
                stopper.tick(cancel);
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(ProcessFailure::Spawn { program, source: e }),
        }
    };
    // Anything the child left in its group goes with it.
    let _ = killpg(pgid, Signal::SIGKILL);
    let _ = out_thread.join();
    let tail = err_thread.join().unwrap_or_default();
    ended(status, tail, step, program_name, command, cancel)
}

/// The child's output lines as they come (`true`: from stderr), read by two
/// threads: stdout's, and stderr's, which returns the stderr's last lines.
#[allow(clippy::type_complexity)]
fn read_output(
    child: &mut std::process::Child,
    step: &str,
) -> (mpsc::Receiver<(bool, String)>, std::thread::JoinHandle<()>, std::thread::JoinHandle<Vec<String>>) {
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel::<(bool, String)>();
    let err_tx = tx.clone();
    let out_thread = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(std::result::Result::ok) {
            if tx.send((false, line)).is_err() {
                break;
            }
        }
    });
    let step_owned = step.to_string();
    let err_thread = std::thread::spawn(move || read_tail(stderr, &step_owned, err_tx));
    (rx, out_thread, err_thread)
}

/// Stops a child's process group once cancellation is asked: its stop
/// signal first, SIGKILL after [`TERM_GRACE`].
struct Stopper {
    pgid: Pid,
    stop_signal: Signal,
    term_sent: Option<Instant>,
    kill_sent: bool,
}

impl Stopper {
    /// Sends what is due now.
    fn tick(&mut self, cancel: &Cancel) {
        match self.term_sent {
            None if cancel.is_cancelled() => {
                let _ = killpg(self.pgid, self.stop_signal);
                self.term_sent = Some(Instant::now());
            }
            Some(t) if !self.kill_sent && t.elapsed() > TERM_GRACE => {
                let _ = killpg(self.pgid, Signal::SIGKILL);
                self.kill_sent = true;
            }
            _ => {}
        }
    }
}

/// How a child that ended with `status` (its stderr's last lines `tail`)
/// went: cancelled, fine, or failed.
fn ended(
    status: std::process::ExitStatus,
    tail: Vec<String>,
    step: &str,
    program_name: String,
    command: String,
    cancel: &Cancel,
) -> Result<Vec<String>, ProcessFailure> {
    if let Some(signal) = cancel.signal() {
        return Err(ProcessFailure::Cancelled(signal));
    }
    if status.success() {
        return Ok(tail);
    }
    let status_text = match (status.code(), status.signal()) {
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        _ => Exit::Unknown,
    };
    for line in &tail {
        tracing::warn!("{step} stderr: {line}");
    }
    Err(ProcessFailure::Failed(ProcessError {
        step: step.to_string(),
        program: program_name,
        command,
        status: status_text,
        stderr_tail: tail,
    }))
}

/// Runs `cmd` for `step` handing its stdout to `on_bytes` as it comes
/// (binary output: a bitstream), in its own process group like [`run`];
/// `cancel` ends it with SIGTERM, then SIGKILL.
pub fn run_bytes(
    cmd: &mut Command,
    step: &str,
    cancel: &Cancel,
    mut on_bytes: impl FnMut(&[u8]),
) -> Result<Vec<String>, ProcessFailure> {
    let Started { mut child, pgid, program, program_name: name, command } =
        start(cmd, Stdio::null(), step, cancel, false)?;
    let (tx, _) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr is piped");
    let step_owned = step.to_string();
    let err_thread = std::thread::spawn(move || read_tail(stderr, &step_owned, tx));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (done, cancel) = (done.clone(), cancel.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if cancel.is_cancelled() {
                    let _ = killpg(pgid, Signal::SIGTERM);
                    std::thread::sleep(TERM_GRACE);
                    let _ = killpg(pgid, Signal::SIGKILL);
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n) = stdout.read(&mut buf) {
        if n == 0 {
            break;
        }
        on_bytes(&buf[..n]);
    }
    let status = child.wait().map_err(|source| ProcessFailure::Spawn { program: program.clone(), source });
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = killpg(pgid, Signal::SIGKILL);
    let _ = watcher.join();
    cancel.unregister_group(pgid.as_raw());
    let tail = err_thread.join().unwrap_or_default();
    ended(status?, tail, step, name, command, cancel)
}

/// Runs `cmd` for `step`, for `limit` at most (then its group is killed):
/// whether it exited 0, and what it wrote to stdout and stderr together.
/// `Err` says why there is no answer: it did not end in time, could not
/// be started, or a stop was asked. For questions to a tool (its version,
/// what it has), which a hung tool must not leave drapto waiting on.
pub fn answer_within(
    cmd: &mut Command,
    step: &str,
    limit: Duration,
    cancel: &Cancel,
) -> Result<(bool, String), String> {
    let timer = cancel.child();
    let (done, ended) = mpsc::channel::<()>();
    let alarm = {
        let timer = timer.clone();
        std::thread::spawn(move || {
            if ended.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                timer.cancel(Signal::SIGALRM as i32);
            }
        })
    };
    let mut text = String::new();
    let result = supervised(cmd, Stdio::null(), (Signal::SIGTERM, true), step, &timer, |line| {
        let (Line::Out(l) | Line::Err(l)) = line;
        text.push_str(l);
        text.push('\n');
    });
    drop(done);
    let _ = alarm.join();
    match result {
        Ok(_) => Ok((true, text)),
        Err(ProcessFailure::Failed(_)) => Ok((false, text)),
        Err(ProcessFailure::Cancelled(_)) if !cancel.is_cancelled() => {
            Err(format!("did not answer within {} s", limit.as_secs()))
        }
        Err(ProcessFailure::Cancelled(sig)) => Err(format!("stopped by signal {sig}")),
        Err(ProcessFailure::Spawn { source, .. }) => Err(format!("cannot be run: {source}")),
    }
}

/// Runs `cmd` and returns its whole stdout (for JSON-printing tools).
pub fn output(cmd: &mut Command, step: &str, cancel: &Cancel) -> Result<String, ProcessFailure> {
    let mut out = String::new();
    run(cmd, step, cancel, |line| {
        out.push_str(line);
        out.push('\n');
    })?;
    Ok(out)
}

fn read_tail(stderr: impl Read, step: &str, tx: mpsc::Sender<(bool, String)>) -> Vec<String> {
    let mut tail = VecDeque::with_capacity(STDERR_TAIL);
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                if line.is_empty() {
                    continue;
                }
                tracing::debug!("{step} stderr: {line}");
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                let _ = tx.send((true, line.clone()));
                tail.push_back(line);
            }
        }
    }
    tail.into()
}

/// The command as a shell would need it typed, for logs.
pub fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `s` as one shell word.
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+%@".contains(c);
    if !s.is_empty() && s.chars().all(safe) { s.to_string() } else { format!("'{}'", s.replace('\'', "'\\''")) }
}

/// `path` as an argument no program can take for an option ("-x.mkv" →
/// "./-x.mkv") or, as mkvmerge does, for a file of options ("@x" → "./@x").
pub fn path_arg(path: &std::path::Path) -> std::ffi::OsString {
    if path.is_relative() && path.as_os_str().to_string_lossy().starts_with(['-', '@']) {
        std::path::Path::new(".").join(path).into_os_string()
    } else {
        path.as_os_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("-c:v"), "-c:v");
        assert_eq!(shell_quote("my film.mkv"), "'my film.mkv'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn streams_stdout_and_reports_failures() {
        let cancel = Cancel::new();
        let mut lines = Vec::new();
        run(Command::new("sh").args(["-c", "echo a; echo b"]), "test", &cancel, |l| lines.push(l.to_string())).unwrap();
        assert_eq!(lines, ["a", "b"]);
        let err =
            run(Command::new("sh").args(["-c", "echo oops: error >&2; exit 3"]), "test", &cancel, |_| {}).unwrap_err();
        match err {
            ProcessFailure::Failed(e) => {
                assert_eq!(e.status, Exit::Code(3));
                assert_eq!(e.command, "sh -c 'echo oops: error >&2; exit 3'");
                assert_eq!(e.cause(), Some("oops: error"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cancellation_kills_the_whole_group_quickly() {
        let cancel = Cancel::new();
        let c2 = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            c2.cancel(2);
        });
        let start = Instant::now();
        // The shell ignores TERM, and its child sleep inherits the group.
        let err = run(Command::new("sh").args(["-c", "trap '' TERM; sleep 30 & sleep 30"]), "test", &cancel, |_| {})
            .unwrap_err();
        assert!(matches!(err, ProcessFailure::Cancelled(2)));
        assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    }
}
