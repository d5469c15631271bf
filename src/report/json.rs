//! `--json`: one JSON object per event on stdout, newline-delimited, each with
//! `"event"` (its kind) and `"time"` (RFC 3339).

use crate::events::{Event, EventSink};
use serde::Serialize;
use std::io::Write;
use std::sync::Mutex;

/// Writes events as JSON lines to a writer (stdout in the binary).
pub struct JsonLines<W: Write + Send>(pub Mutex<W>);

#[derive(Serialize)]
struct Envelope<'a> {
    time: String,
    #[serde(flatten)]
    event: &'a Event,
}

/// `event` as one JSON line (without the newline), stamped now.
pub fn line(event: &Event) -> String {
    let env = Envelope { time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true), event };
    serde_json::to_string(&env).unwrap_or_else(|e| {
        // (A path that is not UTF-8 cannot be written; discovery refuses them.)
        serde_json::json!({ "time": env.time, "event": "unwritable", "error": e.to_string() }).to_string()
    })
}

/// The last line of a `--json` run that stopped before or outside any
/// file (a configuration error, a bad command line, a missing tool): its
/// message and exit code.
pub fn error_line(error: &str, exit_code: i32) -> String {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    serde_json::json!({ "time": time, "event": "error", "error": error, "exit_code": exit_code }).to_string()
}

impl<W: Write + Send> EventSink for JsonLines<W> {
    fn emit(&self, event: &Event) {
        let line = line(event);
        let mut w = self.0.lock().expect("json writer lock");
        let _ = writeln!(w, "{line}");
        let _ = w.flush();
    }
}
