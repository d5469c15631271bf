//! One ffprobe question about a file's packets or frames, built from a
//! typed [`Query`]: which section, which entries, which stream, which
//! part of the file.

use crate::cancel::Cancel;
use crate::error::ProcessFailure;
use std::path::Path;
use std::process::Command;

/// Which of ffprobe's per-item sections a [`Query`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Demuxed packets: no decoding, one per video frame.
    Packet,
    /// Decoded frames.
    Frame,
}

/// One read of per-packet or per-frame fields, answered as CSV lines
/// (`-of csv=p=0`; the fields come in ffprobe's own order, which for the
/// fields drapto reads is pts, duration, size, flags). Every packet- or
/// frame-level read drapto makes is one of these.
#[derive(Debug, Clone)]
pub struct Query {
    section: Section,
    fields: String,
    stream: Option<String>,
    interval: Option<String>,
    single_thread: bool,
}

impl Query {
    /// Packet fields, such as `"pts_time,size,flags"`.
    pub fn packets(fields: &str) -> Query {
        Query { section: Section::Packet, fields: fields.into(), stream: None, interval: None, single_thread: false }
    }

    /// Decoded frame fields, such as `"pts_time,repeat_pict"`.
    pub fn frames(fields: &str) -> Query {
        Query { section: Section::Frame, ..Query::packets(fields) }
    }

    /// Only the stream `spec` selects (`"v:0"`, `"a:2"`).
    pub fn stream(mut self, spec: &str) -> Query {
        self.stream = Some(spec.into());
        self
    }

    /// From `seconds` to the end (a seek past the end lands on the last
    /// keyframe).
    pub fn from_seconds(self, seconds: f64) -> Query {
        self.interval(format!("{:.3}%", seconds.max(0.0)))
    }

    /// Only `interval`, in `-read_intervals` syntax (`"%+#1"`: the first item).
    pub fn interval(mut self, interval: String) -> Query {
        self.interval = Some(interval);
        self
    }

    /// Decodes on one thread (several reads run side by side).
    pub fn single_thread(mut self) -> Query {
        self.single_thread = true;
        self
    }

    /// The ffprobe command line for `input`.
    pub fn command(&self, ffprobe: &Path, input: &Path) -> Command {
        let mut cmd = Command::new(ffprobe);
        cmd.args(["-v", "error"]);
        if self.single_thread {
            cmd.args(["-threads", "1"]);
        }
        if let Some(s) = &self.stream {
            cmd.args(["-select_streams", s]);
        }
        if let Some(i) = &self.interval {
            cmd.args(["-read_intervals", i]);
        }
        let section = match self.section {
            Section::Packet => "packet",
            Section::Frame => "frame",
        };
        cmd.args(["-show_entries", &format!("{section}={}", self.fields), "-of", "csv=p=0"]);
        cmd.arg(crate::tools::path_arg(input));
        cmd
    }

    /// Runs the query on `input`: its CSV lines.
    pub fn run(&self, ffprobe: &Path, input: &Path, step: &str, cancel: &Cancel) -> Result<String, ProcessFailure> {
        crate::tools::process::output(&mut self.command(ffprobe, input), step, cancel)
    }
}
