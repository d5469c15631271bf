//! Typed `mediainfo --Output=JSON`: the per-track fields drapto reads (HDR
//! format, Dolby Vision profile), everything else kept as raw text.

use crate::cancel::Cancel;
use crate::error::ProcessFailure;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, Deserialize, Default)]
pub struct MediaInfo {
    #[serde(default)]
    pub media: Option<Media>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Media {
    #[serde(default)]
    pub track: Vec<Track>,
}

/// What a track is (mediainfo's `@type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum TrackKind {
    General,
    Video,
    Audio,
    Text,
    Menu,
    #[default]
    #[serde(other)]
    Other,
}

/// One track; mediainfo writes every value as a string.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Track {
    #[serde(rename = "@type", default)]
    pub kind: TrackKind,
    #[serde(flatten)]
    pub fields: BTreeMap<String, serde_json::Value>,
}

impl Track {
    /// A field as text.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(|v| v.as_str())
    }
}

impl MediaInfo {
    pub fn from_json(text: &str) -> Result<MediaInfo, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Tracks of one kind.
    pub fn tracks(&self, kind: TrackKind) -> impl Iterator<Item = &Track> {
        self.media.iter().flat_map(|m| m.track.iter()).filter(move |t| t.kind == kind)
    }
}

/// Runs mediainfo on `path`.
pub fn mediainfo(program: &Path, path: &Path, cancel: &Cancel) -> Result<MediaInfo, MediaInfoError> {
    let mut cmd = Command::new(program);
    cmd.arg("--Output=JSON").arg(crate::tools::path_arg(path));
    let text = crate::tools::process::output(&mut cmd, "mediainfo", cancel).map_err(MediaInfoError::Run)?;
    MediaInfo::from_json(&text).map_err(|e| MediaInfoError::Parse(e.to_string()))
}

#[derive(Debug)]
pub enum MediaInfoError {
    Run(ProcessFailure),
    Parse(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hdr_format() {
        let j = r#"{"creatingLibrary":{"name":"MediaInfoLib"},"media":{"@ref":"x.mkv","track":[
            {"@type":"General","Format":"Matroska"},
            {"@type":"Video","Format":"HEVC","HDR_Format":"Dolby Vision / SMPTE ST 2086",
             "HDR_Format_Profile":"dvhe.08 / ","HDR_Format_Compatibility":"HDR10 / HDR10","extra":{"a":"b"}}]}}"#;
        let m = MediaInfo::from_json(j).unwrap();
        let v = m.tracks(TrackKind::Video).next().unwrap();
        assert_eq!(v.get("HDR_Format"), Some("Dolby Vision / SMPTE ST 2086"));
        assert_eq!(v.get("extra"), None);
        assert_eq!(m.tracks(TrackKind::Audio).count(), 0);
    }

    #[test]
    fn tolerates_empty_output() {
        assert!(MediaInfo::from_json("{}").unwrap().tracks(TrackKind::Video).next().is_none());
    }
}
