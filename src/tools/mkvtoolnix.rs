//! MKVToolNix, the reference Matroska muxer: `mkvmerge` writes every output
//! (the final mux, the chunked path's appended segments) and identifies
//! files (`mkvmerge -J`, typed here as [`Identification`]); `mkvextract`
//! reads a file's chapters and tags as XML.

use crate::cancel::Cancel;
use crate::error::ProcessFailure;
use crate::tools::process::{self, Line};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The MKVToolNix programs drapto runs.
#[derive(Debug, Clone)]
pub struct Mkvtoolnix {
    pub mkvmerge: PathBuf,
    pub mkvextract: PathBuf,
    pub mkvpropedit: PathBuf,
}

/// How reading a file's structure can fail.
#[derive(Debug)]
pub enum IdentifyError {
    Run(ProcessFailure),
    /// mkvmerge ran but its answer could not be read, or it says the file
    /// is not a Matroska file it can read.
    Unreadable(String),
}

impl std::fmt::Display for IdentifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentifyError::Run(e) => e.fmt(f),
            IdentifyError::Unreadable(m) => f.write_str(m),
        }
    }
}

/// `mkvmerge -J`: what a Matroska file holds, as MKVToolNix sees it.
#[derive(Debug, Clone, Deserialize)]
pub struct Identification {
    pub container: Container,
    #[serde(default)]
    pub tracks: Vec<Track>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Container {
    #[serde(default)]
    pub recognized: bool,
    #[serde(default)]
    pub supported: bool,
    #[serde(rename = "type", default)]
    pub format: Option<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
}

/// What kind of track (mkvmerge's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Video,
    Audio,
    Subtitles,
    Buttons,
    #[serde(other)]
    Other,
}

impl TrackKind {
    pub fn name(self) -> &'static str {
        match self {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
            TrackKind::Subtitles => "subtitles",
            TrackKind::Buttons => "buttons",
            TrackKind::Other => "other",
        }
    }
}

/// One track; `properties` holds every property mkvmerge reports
/// (`language_ietf`, `track_name`, `default_track`, `flag_commentary`, …).
#[derive(Debug, Clone, Deserialize)]
pub struct Track {
    /// mkvmerge's track ID (its position in the file, from 0).
    pub id: u32,
    #[serde(rename = "type")]
    pub kind: TrackKind,
    #[serde(default)]
    pub codec: String,
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
}

impl Track {
    /// Its first timestamp (ns), as mkvmerge reports it: only for a track
    /// with a block in the first seconds it reads (a subtitle track whose
    /// first line comes later has none).
    pub fn minimum_timestamp_ns(&self) -> Option<i64> {
        self.properties.get("minimum_timestamp").and_then(Value::as_i64)
    }

    /// Its codec delay (ns, Matroska's `CodecDelay`): how far its first
    /// block lies before the first sample a decoder gives (0: none said).
    pub fn codec_delay_ns(&self) -> u64 {
        self.properties.get("codec_delay").and_then(Value::as_u64).unwrap_or(0)
    }

    /// A text property.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.properties.get(key).and_then(Value::as_str)
    }

    /// A flag property, when the file sets it.
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.properties.get(key).and_then(Value::as_bool)
    }

    /// The track's UID.
    pub fn uid(&self) -> Option<u64> {
        self.properties.get("uid").and_then(Value::as_u64)
    }
}

/// One attachment (fonts, cover art…).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Attachment {
    pub id: u32,
    #[serde(default)]
    pub file_name: String,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
}

impl Identification {
    pub fn from_json(text: &str) -> Result<Identification, String> {
        serde_json::from_str(text).map_err(|e| format!("mkvmerge's identification could not be read: {e}"))
    }

    /// The segment title.
    pub fn title(&self) -> Option<&str> {
        self.container.properties.get("title").and_then(Value::as_str)
    }

    /// The tracks of one kind, in file order.
    pub fn of_kind(&self, kind: TrackKind) -> impl Iterator<Item = &Track> {
        self.tracks.iter().filter(move |t| t.kind == kind)
    }
}

/// What a finished mkvmerge run said beyond success.
#[derive(Debug, Default)]
pub struct MergeOutcome {
    /// Its warnings (mkvmerge exits with 1 when it warned but wrote the file).
    pub warnings: Vec<String>,
}

/// A command running MKVToolNix's `program` with its messages in English,
/// whatever the user's language: drapto reads them (a full disk is told
/// apart by its words; in German it was tried three times and blamed on
/// the rip).
fn english(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(["--ui-language", "en_US"]);
    cmd
}

impl Mkvtoolnix {
    /// `mkvmerge -J FILE`.
    pub fn identify(&self, path: &Path, cancel: &Cancel) -> Result<Identification, IdentifyError> {
        let mut cmd = english(&self.mkvmerge);
        cmd.arg("-J").arg(super::process::path_arg(path));
        // mkvmerge -J exits 0 when it recognised the file, 2 otherwise; both
        // print the JSON, whose `errors` say why.
        let mut json = String::new();
        let run = process::run(&mut cmd, "identify (mkvmerge)", cancel, |l| {
            json.push_str(l);
            json.push('\n');
        });
        match run {
            Ok(_) => {}
            Err(ProcessFailure::Failed(e)) if json.trim_start().starts_with('{') => {
                tracing::debug!("mkvmerge -J {}: {e}", path.display());
            }
            Err(e) => return Err(IdentifyError::Run(e)),
        }
        let id = Identification::from_json(&json).map_err(IdentifyError::Unreadable)?;
        if !id.container.recognized || !id.container.supported {
            let why = id.errors.first().cloned().unwrap_or_else(|| "not a file mkvmerge can read".into());
            return Err(IdentifyError::Unreadable(format!("mkvmerge cannot read it: {why}")));
        }
        Ok(id)
    }

    /// The file's chapters as MKVToolNix XML, `None` when it has none.
    pub fn chapters_xml(&self, path: &Path, cancel: &Cancel) -> Result<Option<String>, ProcessFailure> {
        self.extract(path, "chapters", cancel)
    }

    /// The file's tags (global and per track) as MKVToolNix XML, `None`
    /// when it has none.
    pub fn tags_xml(&self, path: &Path, cancel: &Cancel) -> Result<Option<String>, ProcessFailure> {
        self.extract(path, "tags", cancel)
    }

    /// Writes track `id` of `path` to `out` in its codec's own file format
    /// (`.sup` for PGS), and its blocks' timestamps to `times` where asked
    /// (`timestamps_v2`: milliseconds, where an ASS script keeps only
    /// hundredths).
    pub fn extract_track(
        &self,
        path: &Path,
        id: u32,
        out: &Path,
        times: Option<&Path>,
        cancel: &Cancel,
    ) -> Result<(), ProcessFailure> {
        let mut cmd = english(&self.mkvextract);
        let target = |to: &Path| {
            let mut t = std::ffi::OsString::from(format!("{id}:"));
            t.push(super::process::path_arg(to));
            t
        };
        cmd.arg(super::process::path_arg(path)).arg("tracks").arg(target(out));
        if let Some(times) = times {
            cmd.arg("timestamps_v2").arg(target(times));
        }
        told_output(&mut cmd, "extract a track (mkvextract)", cancel).map(|_| ())
    }

    fn extract(&self, path: &Path, what: &str, cancel: &Cancel) -> Result<Option<String>, ProcessFailure> {
        let mut cmd = english(&self.mkvextract);
        cmd.arg(super::process::path_arg(path)).arg(what).arg("-");
        let text = told_output(&mut cmd, &format!("read {what} (mkvextract)"), cancel)?;
        let text = text.trim_start_matches('\u{feff}').trim();
        Ok((!text.is_empty()).then(|| text.to_string()))
    }

    /// Sets track properties of `path` in place with mkvpropedit, each
    /// `(track selector, property=value)` (`("track:1", "name= Film ")`):
    /// what mkvmerge writes otherwise than asked (it trims a name's edge
    /// spaces; it takes a frame rate from rounded timestamps).
    pub fn edit_tracks(&self, path: &Path, edits: &[(String, String)], cancel: &Cancel) -> Result<(), ProcessFailure> {
        let mut cmd = english(&self.mkvpropedit);
        cmd.arg(super::process::path_arg(path));
        for (track, set) in edits {
            cmd.arg("--edit").arg(track).arg("--set").arg(set);
        }
        told_output(&mut cmd, "set track properties (mkvpropedit)", cancel).map(|_| ())
    }

    /// Runs mkvmerge with `args` for `step` (a remux of `source`'s video
    /// with a timestamp file), then gives `output`'s video `source`'s
    /// nominal frame duration, which mkvmerge would take from the file's
    /// milliseconds (42 ms for a 23.976 film).
    pub fn remux_timed(
        &self,
        source: &Path,
        args: &[OsString],
        output: &Path,
        step: &str,
        cancel: &Cancel,
    ) -> Result<MergeOutcome, ProcessFailure> {
        let nominal = match self.identify(source, cancel) {
            Ok(id) => id.tracks.first().and_then(|t| t.properties.get("default_duration")).and_then(|d| d.as_u64()),
            Err(IdentifyError::Run(e)) => return Err(e),
            Err(IdentifyError::Unreadable(_)) => None,
        };
        let outcome = self.merge(args, step, cancel, |_| {})?;
        if let Some(ns) = nominal {
            self.edit_tracks(output, &[("track:v1".into(), format!("default-duration={ns}"))], cancel)?;
        }
        Ok(outcome)
    }

    /// Runs mkvmerge with `args` for `step`, calling `on_progress` with its
    /// percentage. Its warnings are a success (exit status 1) and come
    /// back; an error (exit status 2) fails with mkvmerge's own message.
    pub fn merge(
        &self,
        args: &[OsString],
        step: &str,
        cancel: &Cancel,
        mut on_progress: impl FnMut(f64),
    ) -> Result<MergeOutcome, ProcessFailure> {
        let mut cmd = english(&self.mkvmerge);
        cmd.arg("--gui-mode").args(args);
        let mut outcome = MergeOutcome::default();
        let mut errors = Vec::new();
        let run = process::run_lines(&mut cmd, step, cancel, |line| {
            let Line::Out(l) = line else { return };
            if let Some(p) = l.strip_prefix("#GUI#progress ") {
                if let Ok(p) = p.trim().trim_end_matches('%').parse::<f64>() {
                    on_progress(p);
                }
            } else if let Some(w) = l.strip_prefix("#GUI#warning ") {
                outcome.warnings.push(w.trim().to_string());
            } else if let Some(e) = l.strip_prefix("#GUI#error ") {
                errors.push(e.trim().to_string());
            }
        });
        match run {
            Ok(_) => Ok(outcome),
            Err(ProcessFailure::Failed(e)) if e.exit_code() == Some(1) => Ok(outcome),
            Err(ProcessFailure::Failed(mut e)) => {
                // mkvmerge says what went wrong on stdout.
                e.stderr_tail.extend(errors.into_iter().map(|m| format!("Error: {m}")));
                Err(ProcessFailure::Failed(e))
            }
            Err(e) => Err(e),
        }
    }
}

/// [`process::output`] for MKVToolNix's programs, which say why they
/// failed on stdout (`Error: …`), not stderr: a failure carries those
/// lines (it said only "exit status 2").
fn told_output(cmd: &mut Command, step: &str, cancel: &Cancel) -> Result<String, ProcessFailure> {
    let mut out = String::new();
    match process::run(cmd, step, cancel, |line| {
        out.push_str(line);
        out.push('\n');
    }) {
        Ok(_) => Ok(out),
        Err(ProcessFailure::Failed(mut e)) => {
            let said = out.lines().filter(|l| l.starts_with("Error:") || l.starts_with("Warning:"));
            e.stderr_tail.extend(said.map(str::to_string));
            Err(ProcessFailure::Failed(e))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identification_is_typed() {
        let id = Identification::from_json(
            r#"{"container": {"recognized": true, "supported": true, "type": "Matroska",
                 "properties": {"title": "Heat (1995)"}},
                "tracks": [{"id": 0, "type": "video", "codec": "AVC", "properties": {"uid": 7}},
                           {"id": 1, "type": "audio", "codec": "AAC",
                            "properties": {"language_ietf": "es-419", "flag_commentary": true}},
                           {"id": 2, "type": "buttons", "codec": "x"},
                           {"id": 3, "type": "strange", "codec": "y"}],
                "attachments": [{"id": 1, "file_name": "cover.jpg", "content_type": "image/jpeg", "size": 10}]}"#,
        )
        .unwrap();
        assert_eq!(id.title(), Some("Heat (1995)"));
        assert_eq!(id.tracks[0].uid(), Some(7));
        assert_eq!(id.tracks[1].text("language_ietf"), Some("es-419"));
        assert_eq!(id.tracks[1].flag("flag_commentary"), Some(true));
        assert_eq!(id.tracks[1].flag("flag_original"), None);
        assert_eq!(id.tracks[2].kind, TrackKind::Buttons);
        assert_eq!(id.tracks[3].kind, TrackKind::Other);
        assert_eq!(id.of_kind(TrackKind::Audio).count(), 1);
        assert_eq!(id.attachments[0].content_type.as_deref(), Some("image/jpeg"));
    }
}
