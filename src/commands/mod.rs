//! One module per command. Each takes the parsed flags and the loaded
//! configuration, does its work, and returns the process exit code.

pub mod analyze;
pub mod clean;
pub mod config;
pub mod doctor;
mod dry_run;
pub mod encode;
pub mod segment_worker;
pub mod status;
pub mod watch;

use crate::cancel::Cancel;
use crate::config::Loaded;
use crate::discover::{Discovery, Filters, Skip};
use crate::error::{Error, Result};
use crate::events::{EventSink, Fanout};
use crate::job::tracking::Tracking;
use crate::report::file_report::ReportWriter;
use crate::report::json::JsonLines;
use crate::report::log::LogEvents;
use crate::report::terminal::{Terminal, Verbosity};
use std::path::Path;
use std::sync::Mutex;

/// What every command gets from `main`.
pub struct Session {
    pub loaded: Loaded,
    pub cancel: Cancel,
    pub json: bool,
    pub verbosity: Verbosity,
    /// This run's log, where one is written.
    pub run_log: Option<crate::report::log::SharedLog>,
}

impl Session {
    /// Where the settings say each tool is, and which setting says so.
    pub fn tool_paths(&self) -> crate::tools::ToolPaths {
        let (tools, origins) = (&self.loaded.settings.tools, &self.loaded.origins);
        let set = |path: &Option<std::path::PathBuf>, key: &str| crate::tools::ToolSetting {
            path: path.clone(),
            origin: origins.of(key).to_string(),
        };
        crate::tools::ToolPaths {
            ffmpeg: set(&tools.ffmpeg, "tools.ffmpeg"),
            ffprobe: set(&tools.ffprobe, "tools.ffprobe"),
            mediainfo: set(&tools.mediainfo, "tools.mediainfo"),
            mkvmerge: set(&tools.mkvmerge, "tools.mkvmerge"),
        }
    }

    /// The subscribers for this run: terminal or JSON, plus the log.
    pub fn events(&self) -> Box<dyn EventSink> {
        let view: Box<dyn EventSink> = if self.json {
            Box::new(JsonLines(Mutex::new(std::io::stdout())))
        } else {
            let live = console::Term::stdout().is_term() && console::colors_enabled();
            Box::new(Terminal::new(self.verbosity, live).with_run_log(self.run_log.clone()))
        };
        let s = &self.loaded.settings;
        let reports = ReportWriter::new(s.paths.report_dir.clone(), s.log_dir(), Tracking::in_temp(&s.temp_dir()));
        let status = crate::report::status::StatusWriter::new(&s.temp_dir());
        let mut sinks: Vec<Box<dyn EventSink>> =
            vec![view, Box::new(LogEvents { run_log: self.run_log.clone() }), Box::new(reports), Box::new(status)];
        if let Some(n) = crate::report::notify::Notifier::new(&s.notify) {
            sinks.push(Box::new(n));
        }
        Box::new(Fanout(sinks))
    }
}

/// The rips `input` names (see [`crate::discover`]), their outputs under
/// `output_dir`; those another process is still writing are skipped. A
/// folder without any rip is an error that says why: the folders that
/// cannot be read, else how to see why each file is skipped (`explained`:
/// this is the run that shows it, `--dry-run`).
/// An error when the temporary folder is there but cannot be read (a file
/// of that name, no permission): `status` said no drapto ran and `clean`
/// that it removed nothing, with exit 0. Not there at all is no error:
/// nothing ran yet.
pub(crate) fn readable_temp(temp: &Path) -> Result<()> {
    match std::fs::read_dir(temp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("read temporary folder", temp)(e)),
        _ => Ok(()),
    }
}

pub fn find_work(
    input: &Path,
    output_dir: &Path,
    settings: &crate::config::Settings,
    explained: bool,
) -> Result<Discovery> {
    let filters = Filters::of_settings(settings)?;
    let mut d = crate::discover::discover(input, output_dir, &filters)?;
    crate::discover::leave_out_unfinished(&mut d);
    let waiting = d.skipped.iter().any(|(_, why)| matches!(why, Skip::BeingWritten(_)));
    if d.found.is_empty() && !waiting && !explained {
        let problem = match unreadable_only(&d) {
            Some((path, why)) => format!("holds no rip that can be read ({}: {why})", path.display()),
            None => format!(
                "holds no rips matching \"{}\" ({} other file(s); drapto encode --dry-run says why each is skipped)",
                settings.input.file_pattern,
                d.skipped.len()
            ),
        };
        return Err(Error::Input { path: input.to_path_buf(), problem });
    }
    Ok(d)
}

/// Where discovery found no rip, and none still being written, the first
/// file or folder it could not read: the run fails on it (exit 1), and the
/// dry run too.
pub(crate) fn unreadable_only(d: &Discovery) -> Option<&(std::path::PathBuf, Skip)> {
    let waiting = d.skipped.iter().any(|(_, why)| matches!(why, Skip::BeingWritten(_)));
    if !d.found.is_empty() || waiting {
        return None;
    }
    d.skipped.iter().find(|(_, why)| matches!(why, Skip::Unreadable(_) | Skip::UnreadableFolder(_)))
}

/// What a run says of each `DRAPTO_*` variable that is no setting (a typo,
/// a removed one's old name).
pub(crate) fn ignored_env(session: &Session) -> Vec<String> {
    session.loaded.ignored_env.iter().map(|name| format!("{}; it is ignored", why_ignored(name))).collect()
}

/// Why the variable `name` is ignored.
pub(crate) fn why_ignored(name: &str) -> String {
    match crate::config::DESIGN_NAMES.contains(&name) {
        true => format!("environment variable {name} is an old name (the design's): drapto reads DRAPTO_{name}"),
        false => format!("environment variable {name} is no drapto setting (`drapto config` lists the settings)"),
    }
}
