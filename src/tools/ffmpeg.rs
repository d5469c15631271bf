//! Typed ffmpeg invocations: a small command builder that asks for
//! machine-readable progress (or, [`FfmpegArgs::quiet`], for nothing but
//! what is piped), and the parser of that progress.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

/// An ffmpeg command line under construction.
///
/// Every command starts with `-hide_banner -nostdin -loglevel error
/// -progress pipe:1 -nostats`, so stdout carries only `key=value` progress.
#[derive(Debug, Clone, Default)]
pub struct FfmpegArgs {
    args: Vec<OsString>,
}

impl FfmpegArgs {
    pub fn new() -> FfmpegArgs {
        let mut a = FfmpegArgs::default();
        a.extend(["-hide_banner", "-nostdin", "-loglevel", "error", "-progress", "pipe:1", "-nostats"]);
        a
    }

    /// A command line whose stdout is the output itself (a bitstream piped
    /// to drapto) or nothing: `-hide_banner -nostdin -loglevel error`, no
    /// progress.
    pub fn quiet() -> FfmpegArgs {
        let mut a = FfmpegArgs::default();
        a.extend(["-hide_banner", "-nostdin", "-loglevel", "error"]);
        a
    }

    /// An input made by a lavfi filter graph: `-f lavfi -i graph`.
    pub fn lavfi_input(&mut self, graph: impl Into<OsString>) -> &mut Self {
        self.extend(["-f", "lavfi", "-i"]).arg(graph)
    }

    /// The output written to stdout in `format`, last on the line.
    pub fn stdout(&mut self, format: &str) -> &mut Self {
        self.extend(["-f", format, "-"])
    }

    /// Appends one argument.
    pub fn arg(&mut self, a: impl Into<OsString>) -> &mut Self {
        self.args.push(a.into());
        self
    }

    /// Appends several arguments.
    pub fn extend<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// `-i path` (a path starting with `-` is made unambiguous).
    pub fn input(&mut self, path: &Path) -> &mut Self {
        self.arg("-i").arg(safe_path(path))
    }

    /// The output file, last on the line, overwriting (outputs are always
    /// drapto's own temporary files).
    pub fn output(&mut self, path: &Path) -> &mut Self {
        self.arg("-y").arg(safe_path(path))
    }

    pub fn args(&self) -> &[OsString] {
        &self.args
    }

    /// The command for the ffmpeg at `ffmpeg`.
    pub fn command(&self, ffmpeg: &Path) -> Command {
        let mut c = Command::new(ffmpeg);
        c.args(&self.args);
        c
    }
}

/// ffmpeg reads `-name` as an option and `proto:x` as a protocol; `file:`
/// makes any path a plain file.
fn safe_path(path: &Path) -> OsString {
    let mut s = OsString::from("file:");
    s.push(path.as_os_str());
    s
}

/// One progress report from `-progress`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub frame: u64,
    pub fps: f64,
    /// Output position in seconds.
    pub out_time: f64,
    /// Bytes written so far.
    pub total_size: u64,
    /// Current bitrate in kbit/s.
    pub bitrate_kbps: f64,
    /// Speed relative to real time.
    pub speed: f64,
    /// True on the last report.
    pub done: bool,
}

/// Accumulates `key=value` lines into [`Progress`] reports.
#[derive(Debug, Default)]
pub struct ProgressParser {
    current: Progress,
}

impl ProgressParser {
    /// Feeds one line; returns a report when the line ends a block.
    pub fn feed(&mut self, line: &str) -> Option<Progress> {
        let (key, value) = line.split_once('=')?;
        let value = value.trim();
        let c = &mut self.current;
        match key.trim() {
            "frame" => c.frame = value.parse().unwrap_or(c.frame),
            "fps" => c.fps = value.parse().unwrap_or(c.fps),
            "out_time_us" | "out_time_ms" => {
                // Both are microseconds (out_time_ms is misnamed in ffmpeg).
                if let Ok(us) = value.parse::<i64>() {
                    c.out_time = us.max(0) as f64 / 1e6;
                }
            }
            "total_size" => c.total_size = value.parse().unwrap_or(c.total_size),
            "bitrate" => {
                if let Ok(b) = value.trim_end_matches("kbits/s").trim().parse() {
                    c.bitrate_kbps = b;
                }
            }
            "speed" => {
                if let Ok(s) = value.trim_end_matches('x').trim().parse() {
                    c.speed = s;
                }
            }
            "progress" => {
                c.done = value == "end";
                return Some(c.clone());
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_progress_block() {
        let block = "frame=120\nfps=24.5\nstream_0_0_q=30.0\nbitrate= 812.3kbits/s\ntotal_size=40960\n\
                     out_time_us=5005000\nout_time_ms=5005000\nout_time=00:00:05.005000\ndup_frames=0\n\
                     drop_frames=0\nspeed=1.02x\nprogress=continue\n";
        let mut p = ProgressParser::default();
        let reports: Vec<_> = block.lines().filter_map(|l| p.feed(l)).collect();
        assert_eq!(reports.len(), 1);
        let r = &reports[0];
        assert_eq!(r.frame, 120);
        assert_eq!(r.fps, 24.5);
        assert_eq!(r.out_time, 5.005);
        assert_eq!(r.total_size, 40960);
        assert_eq!(r.bitrate_kbps, 812.3);
        assert_eq!(r.speed, 1.02);
        assert!(!r.done);
        assert!(p.feed("progress=end").unwrap().done);
    }

    #[test]
    fn tolerates_na_and_garbage() {
        let mut p = ProgressParser::default();
        for l in ["bitrate=N/A", "speed=N/A", "out_time_us=N/A", "fps=", "junk", "=", "frame=-3"] {
            assert!(p.feed(l).is_none());
        }
        assert_eq!(p.feed("progress=continue"), Some(Progress::default()));
    }

    #[test]
    fn paths_are_never_options() {
        let mut a = FfmpegArgs::default();
        a.input(Path::new("-weird.mkv"));
        assert_eq!(a.args()[1], "file:-weird.mkv");
    }
}
