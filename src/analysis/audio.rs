//! Audio track plans: channel count → Opus layout and bitrate.

use crate::config::AudioSettings;
use crate::tools::ffprobe::Stream;
use serde::Serialize;

/// How one source audio track will be encoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioPlan {
    /// Position among the source's audio streams (the `N` of `0:a:N`).
    pub index: usize,
    pub codec: String,
    pub source_channels: u32,
    pub source_layout: Option<String>,
    /// Channels in the Opus output.
    pub channels: u32,
    /// `aformat` channel layouts the filter may pick from.
    pub layouts: String,
    pub bitrate_kbps: u32,
    pub language: Option<String>,
    pub title: Option<String>,
    pub default: bool,
    pub forced: bool,
    /// Start offset relative to the file start, in seconds.
    pub delay: f64,
    /// Why this track is not a plain 1/2/6/8-channel encode, if it is not.
    pub warning: Option<String>,
}

/// The design's layouts, which libopus accepts for 1, 2, 6 and 8 channels.
pub const STANDARD_LAYOUTS: &str = "7.1|5.1|stereo|mono";

/// Channel count → (channels, aformat layouts, bitrate kbit/s, warning).
pub fn layout_for(channels: u32, s: &AudioSettings) -> (u32, String, u32, Option<String>) {
    let std = STANDARD_LAYOUTS.to_string();
    match channels {
        1 => (1, std, s.bitrate_mono, None),
        2 => (2, std, s.bitrate_stereo, None),
        6 => (6, std, s.bitrate_5_1, None),
        8 => (8, std, s.bitrate_7_1, None),
        // Opus carries 3, 4, 5 and 7 channels in these layouts; keep every
        // channel and give each a share between the neighbouring table rows.
        3 => (3, "3.0".into(), 160, Some("3-channel audio kept as 3.0 at 160k (not a standard layout)".into())),
        4 => (4, "quad".into(), 192, Some("4-channel audio kept as quad at 192k (not a standard layout)".into())),
        5 => (5, "5.0".into(), 224, Some("5-channel audio kept as 5.0 at 224k (not a standard layout)".into())),
        7 => (7, "6.1".into(), 320, Some("7-channel audio kept as 6.1 at 320k (not a standard layout)".into())),
        0 => (
            2,
            "stereo".into(),
            s.bitrate_stereo,
            Some("audio track reports no channel count; encoding it as stereo".into()),
        ),
        n => (
            8,
            std,
            s.bitrate_7_1,
            Some(format!("{n}-channel audio is more than Opus carries: DOWNMIXED to 7.1 at {}k", s.bitrate_7_1)),
        ),
    }
}

/// Plans every audio stream, in source order.
pub fn plan_tracks<'a>(
    streams: impl Iterator<Item = &'a Stream>,
    file_start: f64,
    s: &AudioSettings,
) -> Vec<AudioPlan> {
    streams
        .enumerate()
        .map(|(index, st)| {
            let source_channels = st.channels.unwrap_or(0);
            let (channels, layouts, bitrate_kbps, warning) = layout_for(source_channels, s);
            AudioPlan {
                index,
                codec: st.codec_name.clone(),
                source_channels,
                source_layout: st.channel_layout.clone(),
                channels,
                layouts,
                bitrate_kbps,
                language: st.tag("language").map(str::to_string),
                title: st.tag("title").map(str::to_string),
                default: st.has_disposition("default"),
                forced: st.has_disposition("forced"),
                delay: st.start_time.map(|t| t - file_start).unwrap_or(0.0),
                warning,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrate_table_for_one_to_eight_channels() {
        let s = AudioSettings::default();
        let table: Vec<(u32, u32, u32, bool)> = (1..=8)
            .map(|c| {
                let (ch, _, br, warn) = layout_for(c, &s);
                (c, ch, br, warn.is_some())
            })
            .collect();
        assert_eq!(
            table,
            vec![
                (1, 1, 64, false),
                (2, 2, 128, false),
                (3, 3, 160, true),
                (4, 4, 192, true),
                (5, 5, 224, true),
                (6, 6, 256, false),
                (7, 7, 320, true),
                (8, 8, 384, false),
            ]
        );
    }

    #[test]
    fn too_many_channels_is_a_loud_downmix() {
        let (ch, _, br, warn) = layout_for(10, &AudioSettings::default());
        assert_eq!((ch, br), (8, 384));
        assert!(warn.unwrap().contains("DOWNMIXED"));
    }

    #[test]
    fn configured_bitrates_are_used() {
        let s = AudioSettings { bitrate_stereo: 96, ..AudioSettings::default() };
        assert_eq!(layout_for(2, &s).2, 96);
    }
}
