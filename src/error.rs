//! drapto's errors: one variant per kind of failure, each rendering as one
//! line that names the file (or setting, or tool) and the cause, and where
//! there is one, the fix.

use crate::origin::Origin;
use std::fmt;
use std::path::PathBuf;

/// Result with drapto's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A configuration problem, with where the bad value came from.
#[derive(Debug, Clone, thiserror::Error)]
#[error("configuration: {origin}: {message}")]
pub struct ConfigError {
    pub origin: Origin,
    pub message: String,
}

/// An external program that is missing or lacks a capability drapto needs.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{tool}: {problem}; {fix}")]
pub struct ToolError {
    pub tool: String,
    pub problem: String,
    pub fix: String,
}

/// How the problem of every [`ProcessError::damaged_source`] begins.
pub const DAMAGED_SOURCE: &str = "its video does not decode in full (damaged)";

/// A child process that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ProcessError {
    /// What drapto was doing ("video encode", "probe").
    pub step: String,
    /// The program's file name.
    pub program: String,
    /// The command line as a shell would need it typed (to run it again by
    /// hand); empty where no one command failed.
    pub command: String,
    /// How it ended.
    pub status: Exit,
    /// The last lines it wrote to stderr.
    pub stderr_tail: Vec<String>,
}

/// How a child process ended, when that was a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
    /// The operating system did not say.
    Unknown,
    /// It exited, but did not give what was asked of it (no score printed,
    /// the wrong number of frames back).
    Problem(String),
    /// The source's video did not decode in full (a damaged rip), as this
    /// says: it fails the same on every try.
    /// (Boxed: two `String`s would leave no room for the tag in the
    /// niche, and every failure a word larger.)
    DamagedSource(Box<str>),
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit status {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::Unknown => f.write_str("unknown status"),
            Exit::Problem(p) => f.write_str(p),
            Exit::DamagedSource(p) => f.write_str(p),
        }
    }
}

impl ProcessError {
    /// The exit status, when the program exited by itself.
    pub fn exit_code(&self) -> Option<i32> {
        match self.status {
            Exit::Code(c) => Some(c),
            _ => None,
        }
    }

    /// The stderr line most likely to say what went wrong: the last that
    /// speaks of an error, passing over ffmpeg's lines that only say it
    /// gave up ("Terminating thread with return code -22 (Invalid
    /// argument)" stood for "crop: Invalid too big or non positive size").
    pub fn cause(&self) -> Option<&str> {
        let interesting = |l: &&String| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("invalid") || l.contains("no such") || l.contains("failed")
        };
        const CONSEQUENCES: [&str; 5] = [
            "Terminating thread with return code",
            "Error while filtering",
            "Error while processing the decoded data",
            "Conversion failed",
            "Nothing was written into output file",
        ];
        let specific = |l: &&String| interesting(l) && !CONSEQUENCES.iter().any(|c| l.contains(c));
        let lines = || self.stderr_tail.iter().rev();
        lines()
            .find(specific)
            .or_else(|| lines().find(interesting))
            .or_else(|| self.stderr_tail.last())
            .map(|s| s.trim())
    }

    /// A segment's source video that decodes to fewer frames than it has
    /// (see [`ProcessError::damaged_source`]).
    pub fn is_damaged_source(&self) -> bool {
        matches!(self.status, Exit::DamagedSource(_))
    }

    /// The failure of a segment whose source video decodes to fewer frames
    /// than it has (a damaged rip): `detail` says which, after
    /// [`DAMAGED_SOURCE`].
    pub fn damaged_source(command: String, detail: &str) -> ProcessError {
        ProcessError {
            status: Exit::DamagedSource(format!("{DAMAGED_SOURCE}: {detail}").into()),
            ..ProcessError::problem("decoding the source video", "ffmpeg", command, String::new())
        }
    }

    /// `program`'s run for `step` (`command`), which exited but did not
    /// give what was asked of it, as `problem` says.
    pub fn problem(step: &str, program: &str, command: String, problem: String) -> ProcessError {
        ProcessError {
            step: step.into(),
            program: program.into(),
            command,
            status: Exit::Problem(problem),
            stderr_tail: vec![],
        }
    }

    /// True when the process ran out of disk space.
    pub fn is_disk_full(&self) -> bool {
        // ffmpeg says "No space left on device", mkvmerge "No space left to
        // write to" (and "The drive may be full").
        self.stderr_tail.iter().any(|l| l.contains("No space left"))
    }

    /// True when the process wrote a file larger than its file system
    /// holds (`EFBIG`: FAT32's 4 GiB).
    pub fn is_file_too_large(&self) -> bool {
        self.stderr_tail.iter().any(|l| l.contains("File too large"))
    }

    /// Whether the program failed the way a broken setup makes it fail
    /// (killed by a signal: a crash or the kernel's OOM killer; a shell's
    /// 128 + signal exit for such a signal, as ssh passes on a remote
    /// worker's; no memory; an encoder that cannot open) rather than the way
    /// a bad input does (an error exit over unreadable data: ffmpeg exits
    /// with its error code's low byte, 183 for invalid data, 218 for a codec
    /// its muxer cannot write, which read as crashes and paused a batch for
    /// rips that had nothing wrong with the setup).
    pub fn looks_like_setup(&self) -> bool {
        // SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGKILL, SIGSEGV.
        const CRASHES: [i32; 6] = [4, 6, 7, 8, 9, 11];
        let crashed = matches!(self.status, Exit::Signal(_))
            || self.exit_code().is_some_and(|c| CRASHES.iter().any(|s| c == 128 + s));
        crashed
            || self.stderr_tail.iter().any(|l| {
                l.contains("Cannot allocate memory")
                    || l.contains("Out of memory")
                    || l.contains("Error while opening encoder")
            })
    }
}

/// What a failed program was asked and said, for the failed file's report
/// and the log: enough to run it again by hand.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FailedCommand {
    pub step: String,
    pub command: String,
    pub status: String,
    pub stderr: Vec<String>,
}

impl From<&ProcessError> for FailedCommand {
    fn from(e: &ProcessError) -> FailedCommand {
        FailedCommand {
            step: e.step.clone(),
            command: e.command.clone(),
            status: e.status.to_string(),
            stderr: e.stderr_tail.clone(),
        }
    }
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed ({} {})", self.step, self.program, self.status)?;
        if let Some(cause) = self.cause() {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error(transparent)]
    Tool(#[from] ToolError),

    /// A file-system operation failed.
    #[error("{path}: cannot {action}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The input is not something drapto can encode.
    #[error("{path}: {problem}")]
    Input { path: PathBuf, problem: String },

    /// A child process failed while working on `path`.
    #[error("{path}: {source}")]
    Process {
        path: PathBuf,
        #[source]
        source: Box<ProcessError>,
    },

    /// The encoded file did not pass validation; it was kept at `kept`.
    #[error("{path}: output failed validation: {}{}", failures.join("; "), kept.as_ref().map(|k| format!(" (kept for inspection as {})", k.display())).unwrap_or_default())]
    Validation { path: PathBuf, failures: Vec<String>, kept: Option<PathBuf> },

    /// The rip's data ends well before what its headers promise.
    #[error(
        "{path}: the rip ends at {ends_at:.1} s of {promised:.1} s (truncated); rip it again, or pass --allow-truncated to encode what is there"
    )]
    Truncated { path: PathBuf, ends_at: f64, promised: f64 },

    /// The rip's file ends so that its closing tags, chapters or
    /// attachments are cut or gone (its picture and sound whole).
    #[error(
        "{path}: the rip is cut short: the file ends at byte {size} of at least {claimed}, {place}; rip it again, or pass --allow-truncated to encode it without what the cut lost"
    )]
    CutShort { path: PathBuf, place: String, size: u64, claimed: u64 },

    /// The mux plan leaves out something of the rip that would be lost, and
    /// `processing.on_loss` says to fail (nothing was encoded).
    #[error(
        "{path}: the output would lose {}; nothing was encoded (pass --on-loss warn to encode without it)",
        losses.join("; ")
    )]
    WouldLose { path: PathBuf, losses: Vec<String> },

    /// drapto's own work on `path` went wrong (a segment missing, frames
    /// lost when the segments were appended): the rip is not to blame, and
    /// it counts towards the circuit breaker as a setup failure does.
    #[error("{path}: {problem} (an internal failure, not the rip's; the log file has the details)")]
    Internal { path: PathBuf, problem: String },

    /// The rip's video does not decode in full (a damaged disc): the
    /// chunked path, which needs every frame, cannot encode it.
    #[error("{path}: {problem}")]
    DamagedVideo { path: PathBuf, problem: String },

    /// The output would be (or is) larger than `max_output_ratio` allows:
    /// stopped, nothing kept under the output's name.
    #[error(
        "{path}: the output would be {}, {:.2}× the rip's {} (more than max_output_ratio {limit}); stopped with {at_percent:.0}% of the video encoded, the rip untouched. Raise --max-output-ratio (0: no limit) to encode it anyway",
        crate::units::format_bytes(*output_bytes),
        *output_bytes as f64 / (*source_bytes).max(1) as f64,
        crate::units::format_bytes(*source_bytes)
    )]
    OutputTooLarge { path: PathBuf, output_bytes: u64, source_bytes: u64, limit: f64, at_percent: f64 },

    /// The command line (or the configured folders) cannot work: exit 2.
    #[error("{0}")]
    Usage(String),

    /// The output would overwrite the input.
    #[error("{path}: the output would overwrite the input; choose another output folder with -o")]
    OutputIsInput { path: PathBuf },

    /// A file drapto did not make holds the output's name.
    #[error(
        "{path}: {output} is there already and drapto did not make it (it has no record of its rip: another tool's file, or drapto's cut short or remuxed since); nothing was changed: move it away, then run again"
    )]
    NotDrapto { path: PathBuf, output: PathBuf },

    /// A file appeared under the output's name while the rip was encoded
    /// (or the one there was replaced): it is left as it is.
    #[error(
        "{path}: {output} appeared while the rip was encoded, and drapto did not make it: it is left as it is, and the encode is kept as {kept}"
    )]
    OutputAppeared { path: PathBuf, output: PathBuf, kept: PathBuf },

    /// drapto's output under the output's name was remuxed since (a track
    /// added or taken out with mkvmerge): the user's file now.
    #[error(
        "{path}: {output} was made by drapto and remuxed since (its segment UID is no longer the rip's): it is kept as it is; move it away to encode the rip again"
    )]
    OutputRemuxed { path: PathBuf, output: PathBuf },

    /// The output's name holds drapto's encode of another rip that is still
    /// there (two rips of one name encoded into one folder).
    #[error(
        "{path}: {output} is drapto's encode of another rip, {other}, which is still there; nothing was changed: encode this one into another folder"
    )]
    OutputOfAnotherRip { path: PathBuf, output: PathBuf, other: PathBuf },

    /// The output's name holds drapto's encode of another film, whose rip
    /// is gone (deleted once encoded, on a disk not mounted, or replaced by
    /// this one under its name): another size, and another length or
    /// title, than this rip's. Its encode may be the only copy of that
    /// film. `why` says how it differs.
    #[error(
        "{path}: {output} is drapto's encode of another film ({why}); nothing was changed: move that encode away to encode this rip here"
    )]
    OutputOfAnotherFilm { path: PathBuf, output: PathBuf, why: String },

    /// Not enough free space.
    #[error("{folder}: not enough free space: {needed} needed, {free} free")]
    NoSpace { folder: PathBuf, needed: String, free: String },

    /// A disk filled up while a step was writing; `disk` says which, when
    /// known (" (the disk of FOLDER: N free)").
    #[error("{path}: the disk filled up during {step}{disk}; finished work is kept, free some space and run again")]
    DiskFull { path: PathBuf, step: String, disk: String },

    /// A step wrote a file larger than its folder's file system holds
    /// (FAT32's 4 GiB): the setup's to fix, tried again once it is.
    #[error(
        "{path}: {step}: a file it writes is larger than its folder's file system holds (FAT32 holds 4 GiB at most); \
         finished work is kept: write to a drive formatted exFAT, NTFS, ext4 or APFS and run again"
    )]
    FileTooLarge { path: PathBuf, step: String },

    /// Another drapto process holds this input or output.
    #[error("{path}: {what} is being encoded by another drapto ({holder})")]
    Locked { path: PathBuf, what: String, holder: String },

    /// The hosts of a distributed run: no hosts file, no usable host, or
    /// hosts whose versions differ.
    #[error("hosts: {0}")]
    Hosts(String),

    /// The run was interrupted by a signal.
    #[error("interrupted by {}", signal_name(*signal))]
    Cancelled { signal: i32 },
}

impl Error {
    /// An I/O error on `path` while doing `action` ("read", "create folder").
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { action, path, source }
    }

    /// Wraps a child-process failure with the file it was working on.
    pub fn process(path: impl Into<PathBuf>) -> impl FnOnce(ProcessFailure) -> Error {
        let path = path.into();
        move |f| match f {
            ProcessFailure::Failed(source) if source.is_disk_full() => {
                Error::DiskFull { path, step: source.step, disk: String::new() }
            }
            // (Said once, not tried three times, each writing gigabytes.)
            ProcessFailure::Failed(source) if source.is_file_too_large() => {
                Error::FileTooLarge { path, step: source.step }
            }
            ProcessFailure::Failed(ProcessError { status: Exit::DamagedSource(problem), .. }) => {
                Error::DamagedVideo { path, problem: problem.into() }
            }
            ProcessFailure::Failed(source) => Error::Process { path, source: Box::new(source) },
            ProcessFailure::Cancelled(signal) => Error::Cancelled { signal },
            ProcessFailure::Spawn { program, source } => Error::Io { action: "start", path: program.into(), source },
        }
    }

    /// Whether this failure points at the environment rather than at the
    /// file `input`: a tool missing or crashing (see
    /// [`ProcessError::looks_like_setup`]), no space, a disk that filled up,
    /// hosts that fail, a file or folder other than the input that cannot
    /// be used. Only these count towards the batch's circuit breaker; a bad
    /// rip (an ffmpeg that exits with an error over its data) fails alone.
    pub fn is_environmental(&self, input: &std::path::Path) -> bool {
        match self {
            Error::Process { source, .. } => source.looks_like_setup(),
            Error::Tool(_)
            | Error::NoSpace { .. }
            | Error::FileTooLarge { .. }
            | Error::DiskFull { .. }
            | Error::Hosts(_)
            | Error::Internal { .. } => true,
            Error::Io { path, .. } => path != input,
            _ => false,
        }
    }

    /// Whether the output's name is taken by a file that is not this rip's
    /// to replace: the rip can be encoded once that file is moved away.
    pub fn is_blocked(&self) -> bool {
        matches!(
            self,
            Error::NotDrapto { .. }
                | Error::OutputOfAnotherRip { .. }
                | Error::OutputOfAnotherFilm { .. }
                | Error::OutputAppeared { .. }
                | Error::OutputRemuxed { .. }
        )
    }

    /// The program that failed, when a program's failure is the cause.
    pub fn failed_command(&self) -> Option<FailedCommand> {
        match self {
            Error::Process { source, .. } => Some(source.as_ref().into()),
            _ => None,
        }
    }

    /// True for failures that trying the same step again may cure (a
    /// crashed or failing child), false for those it cannot (bad input, full
    /// disk, a stop request, configuration).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Process { .. })
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Cancelled { signal } => 128 + signal,
            Error::Usage(_) => 2,
            Error::Config(_) => 3,
            Error::Tool(_) | Error::Hosts(_) => 4,
            _ => 1,
        }
    }
}

/// How running a child process can fail.
#[derive(Debug)]
pub enum ProcessFailure {
    /// It could not be started.
    Spawn { program: String, source: std::io::Error },
    /// It ran and failed.
    Failed(ProcessError),
    /// drapto was asked to stop (signal number) and ended it.
    Cancelled(i32),
}

impl fmt::Display for ProcessFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessFailure::Spawn { program, source } => write!(f, "{program} could not be started: {source}"),
            ProcessFailure::Failed(e) => e.fmt(f),
            ProcessFailure::Cancelled(sig) => write!(f, "stopped by {}", signal_name(*sig)),
        }
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        2 => "SIGINT (Ctrl-C)".into(),
        15 => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(status: Exit, stderr: &[&str]) -> ProcessError {
        ProcessError {
            step: "video".into(),
            program: "ffmpeg".into(),
            command: "ffmpeg -i a.mkv b.mkv".into(),
            status,
            stderr_tail: stderr.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn crashes_point_at_the_setup_error_exits_at_the_file() {
        assert!(failed(Exit::Signal(11), &[]).looks_like_setup());
        assert!(failed(Exit::Code(139), &["Segmentation fault"]).looks_like_setup());
        assert!(failed(Exit::Code(1), &["Error while opening encoder for output stream #0:0"]).looks_like_setup());
        assert!(!failed(Exit::Code(1), &["Invalid data found when processing input"]).looks_like_setup());
        assert!(failed(Exit::Code(137), &[]).looks_like_setup(), "killed, through a shell");
        // ffmpeg's error codes: AVERROR_INVALIDDATA, AVERROR(ENOSYS).
        assert!(!failed(Exit::Code(183), &["Invalid data found when processing input"]).looks_like_setup());
        assert!(!failed(Exit::Code(218), &["Could not write header"]).looks_like_setup());
        let input = std::path::Path::new("/rips/a.mkv");
        let e = Error::Process { path: input.into(), source: Box::new(failed(Exit::Code(1), &["Invalid data"])) };
        assert!(!e.is_environmental(input));
        let other = || std::io::Error::from(std::io::ErrorKind::Other);
        assert!(Error::Io { action: "create folder", path: "/tmp/w".into(), source: other() }.is_environmental(input));
        assert!(!Error::Io { action: "read", path: input.into(), source: other() }.is_environmental(input));
        let internal = Error::Internal { path: input.into(), problem: "only 3 of 4 segments were encoded".into() };
        assert!(internal.is_environmental(input), "not the rip's fault");
        let rip = Error::Input { path: input.into(), problem: "has no video stream".into() };
        assert!(!rip.is_environmental(input));
    }

    #[test]
    fn a_file_too_large_for_its_file_system_fails_the_rip_once() {
        let input = std::path::Path::new("/rips/a.mkv");
        let mkvmerge = failed(Exit::Code(2), &["Error: Could not write to the output file: File too large"]);
        let e = Error::process(input)(ProcessFailure::Failed(mkvmerge));
        assert!(e.to_string().contains("FAT32 holds 4 GiB at most"), "{e}");
        // The setup's: a batch stops on it, a restarted watch tries again.
        assert!(!e.is_retryable() && e.is_environmental(input));
    }

    #[test]
    fn the_cause_is_the_error_not_ffmpeg_giving_up() {
        let e = failed(
            Exit::Code(234),
            &[
                "[Parsed_crop_0 @ 0x1] Invalid too big or non positive size for width '352' or height '160'",
                "[vf#0:0 @ 0x2] Error while filtering: Invalid argument",
                "[vf#0:0 @ 0x2] Terminating thread with return code -22 (Invalid argument)",
            ],
        );
        assert!(e.cause().unwrap().contains("Invalid too big"), "{:?}", e.cause());
        let only = failed(Exit::Code(1), &["Conversion failed!"]);
        assert_eq!(only.cause(), Some("Conversion failed!"));
    }
}
