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
