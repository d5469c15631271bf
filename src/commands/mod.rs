//! One module per command. Each takes the parsed flags and the loaded
//! configuration, does its work, and returns the process exit code.

pub mod analyze;
pub mod clean;
pub mod config;
pub mod doctor;
pub mod encode;
pub mod segment_worker;

use crate::cancel::Cancel;
use crate::config::Loaded;
use crate::error::{Error, Result};
use crate::events::{EventSink, Fanout};
use crate::report::file_report::ReportWriter;
use crate::report::json::JsonLines;
use crate::report::log::LogEvents;
use crate::report::terminal::{Terminal, Verbosity};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What every command gets from `main`.
pub struct Session {
    pub loaded: Loaded,
    pub cancel: Cancel,
    pub json: bool,
    pub verbosity: Verbosity,
}

impl Session {
    /// The subscribers for this run: terminal or JSON, plus the log.
    pub fn events(&self) -> Box<dyn EventSink> {
        let view: Box<dyn EventSink> = if self.json {
            Box::new(JsonLines(Mutex::new(std::io::stdout())))
        } else {
            let live = console::Term::stdout().is_term() && console::colors_enabled();
            Box::new(Terminal::new(self.verbosity, live))
        };
        let s = &self.loaded.settings;
        let reports = ReportWriter::new(s.paths.report_dir.clone(), s.log_dir(), s.temp_dir().join("encode_data"));
        Box::new(Fanout(vec![view, Box::new(LogEvents), Box::new(reports)]))
    }
}

/// The MKV files named by `path`: the file itself, or every `*.mkv`
/// (any case) directly inside the folder, in name order.
pub fn inputs_of(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(Error::io("read", path))?;
    // Absolute (symlinks kept): a name like "-x.mkv" can never pass for an
    // option of a child program, whatever the working directory.
    let path = &std::path::absolute(path).map_err(Error::io("resolve", path))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(Error::io("read folder", path))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("mkv")))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Input { path: path.to_path_buf(), problem: "folder holds no .mkv files".into() });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_inputs_are_mkv_only_in_name_order() {
        let d = tempfile::tempdir().unwrap();
        for n in ["b.mkv", "a.MKV", "c.mp4", "d.mkv.failed", ".x.mkv.drapto-partial"] {
            std::fs::write(d.path().join(n), b"x").unwrap();
        }
        std::fs::create_dir(d.path().join("sub.mkv")).unwrap();
        let names: Vec<String> = inputs_of(d.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.MKV", "b.mkv"]);
        let empty = tempfile::tempdir().unwrap();
        assert!(inputs_of(empty.path()).unwrap_err().to_string().contains("no .mkv files"));
    }
}
