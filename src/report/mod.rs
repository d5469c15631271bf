//! Subscribers of the event stream: the terminal view, `--json` lines and the
//! log file; plus the summary figures they all print.

pub mod file_report;
pub mod json;
pub mod log;
pub mod notify;
pub mod resources;
pub mod retention;
pub mod status;
pub mod terminal;

pub use crate::units::{count, format_bytes, format_duration};

/// What a resumed file's time holds of earlier runs, after its time:
/// ` (00h 01m 10s of it in earlier runs)`; nothing for a file done in one.
pub fn earlier_runs(s: &crate::summary::FileSummary) -> String {
    if s.earlier_runs_seconds > 0.0 {
        format!(" ({} of it in earlier runs)", format_duration(s.earlier_runs_seconds))
    } else {
        String::new()
    }
}

/// `text` (a file's name) as a person's terminal shows it: each control
/// character escaped as `ls -b` does (`\n`, `\t`, `\e`, `\x07`), so that a
/// name with a line break stays on its line and one with escape sequences
/// neither colours nor moves the terminal.
pub fn for_people(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped_for_people() {
        assert_eq!(super::for_people("new\nline \u{1b}[31mRED\u{7}.mkv"), "new\\nline \\e[31mRED\\x07.mkv");
        assert_eq!(super::for_people("café [1080p].mkv"), "café [1080p].mkv");
    }
}
