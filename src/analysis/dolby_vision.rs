//! Dolby Vision: detected from ffprobe's DOVI configuration record and
//! mediainfo's HDR format, with profile, level and compatibility id.

use crate::tools::ffprobe::Stream;
use crate::tools::mediainfo::MediaInfo;
use serde::Serialize;

/// A Dolby Vision stream's configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DolbyVision {
    pub profile: Option<u32>,
    pub level: Option<u32>,
    /// Base-layer signal compatibility: 1 = HDR10, 2 = SDR, 4 = HLG, 0 = none.
    pub compatibility_id: Option<u32>,
    pub rpu_present: bool,
    pub el_present: bool,
    /// Which tools saw it ("ffprobe", "mediainfo").
    pub detected_by: Vec<String>,
    /// mediainfo's HDR format text, when it has one.
    pub mediainfo_format: Option<String>,
}

impl DolbyVision {
    /// "8.1" style profile name.
    pub fn profile_name(&self) -> String {
        match (self.profile, self.compatibility_id) {
            (Some(p), Some(c)) if c > 0 => format!("{p}.{c}"),
            (Some(p), _) => p.to_string(),
            _ => "unknown".into(),
        }
    }

    /// True when the base layer is a usable HDR10/SDR/HLG picture on its own.
    pub fn base_layer_compatible(&self) -> bool {
        self.compatibility_id.is_some_and(|c| c > 0)
    }
}

/// Looks for Dolby Vision in the stream's side data and mediainfo's view.
pub fn detect(stream: &Stream, mediainfo: Option<&MediaInfo>) -> Option<DolbyVision> {
    let mut dv = DolbyVision {
        profile: None,
        level: None,
        compatibility_id: None,
        rpu_present: false,
        el_present: false,
        detected_by: vec![],
        mediainfo_format: None,
    };
    if let Some(sd) = stream.side_data("dovi configuration") {
        let n = |k: &str| sd.number(k).map(|v| v as u32);
        dv.profile = n("dv_profile");
        dv.level = n("dv_level");
        dv.compatibility_id = n("dv_bl_signal_compatibility_id");
        dv.rpu_present = n("rpu_present_flag") == Some(1);
        dv.el_present = n("el_present_flag") == Some(1);
        dv.detected_by.push("ffprobe".into());
    }
    if let Some(mi) = mediainfo {
        if let Some(track) = mi.tracks(crate::tools::mediainfo::TrackKind::Video).next() {
            if let Some(fmt) = track.get("HDR_Format").filter(|f| f.contains("Dolby Vision")) {
                dv.detected_by.push("mediainfo".into());
                dv.mediainfo_format = Some(fmt.to_string());
                if dv.profile.is_none() {
                    dv.profile = parse_profile(track.get("HDR_Format_Profile").unwrap_or(fmt));
                }
            }
        }
    }
    (!dv.detected_by.is_empty()).then_some(dv)
}

/// "dvhe.08.06" or "Profile 8.1" → 8.
fn parse_profile(text: &str) -> Option<u32> {
    if let Some(p) = text
        .split(['.', ' '])
        .skip_while(|s| !s.starts_with("dvhe") && !s.starts_with("dvh1") && !s.starts_with("dav1"))
        .nth(1)
    {
        return p.parse().ok();
    }
    let after = text.split("Profile").nth(1)?;
    after.trim().split(['.', ',', ' ']).next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_text() {
        assert_eq!(parse_profile("dvhe.08.06"), Some(8));
        assert_eq!(parse_profile("dav1.10.01"), Some(10));
        assert_eq!(parse_profile("Dolby Vision, Version 1.0, Profile 8.1, dvhe.08.06"), Some(8));
        assert_eq!(parse_profile("nothing"), None);
    }

    #[test]
    fn from_ffprobe_side_data() {
        let s: Stream = serde_json::from_str(
            r#"{"index":0,"codec_type":"video","side_data_list":[{"side_data_type":"DOVI configuration record",
            "dv_version_major":1,"dv_profile":8,"dv_level":4,"rpu_present_flag":1,"el_present_flag":0,
            "bl_present_flag":1,"dv_bl_signal_compatibility_id":1}]}"#,
        )
        .unwrap();
        let dv = detect(&s, None).unwrap();
        assert_eq!(dv.profile_name(), "8.1");
        assert!(dv.rpu_present && dv.base_layer_compatible());
        assert_eq!(detect(&Stream::default(), None), None);
    }
}
