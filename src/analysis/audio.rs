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

/// Channel count and layout (ffprobe's name, if any) → (channels, aformat
/// layouts, bitrate kbit/s, warning).
///
/// Opus carries 3.0 and quad as they are. It has no 2.1 or 4.0, and
/// ffmpeg's libopus wrapper puts the channels of 5.0 and 6.1 in the wrong
/// speakers (a 5.0 track's centre came out in a back speaker, measured
/// channel by channel). So every other layout of 3 to 7 channels goes up
/// to 5.1 or 7.1: the channels it has stay where they were, a missing LFE
/// is silent, and a back centre is played by both back speakers.
pub fn layout_for(channels: u32, layout: Option<&str>, s: &AudioSettings) -> (u32, String, u32, Option<String>) {
    let std = STANDARD_LAYOUTS.to_string();
    let named = layout.filter(|l| *l != "unknown").unwrap_or("no named layout");
    let up = |to: &str, ch: u32, kbps: u32| {
        let why = format!("{channels}-channel audio ({named}) encoded as {to} at {kbps}k (Opus keeps it no other way)");
        (ch, to.to_string(), kbps, Some(why))
    };
    match (channels, layout) {
        (1, _) => (1, std, s.bitrate_mono, None),
        (2, _) => (2, std, s.bitrate_stereo, None),
        (6, _) => (6, std, s.bitrate_5_1, None),
        (8, _) => (8, std, s.bitrate_7_1, None),
        // Kept as they are, at a rate between the neighbouring table rows.
        (3, Some("3.0")) => {
            (3, "3.0".into(), 160, Some("3-channel audio kept as 3.0 at 160k (not a standard layout)".into()))
        }
        (4, Some("quad")) => {
            (4, "quad".into(), 192, Some("4-channel audio kept as quad at 192k (not a standard layout)".into()))
        }
        (3..=5, _) => up("5.1", 6, s.bitrate_5_1),
        (7, _) => up("7.1", 8, s.bitrate_7_1),
        (0, _) => (
            2,
            "stereo".into(),
            s.bitrate_stereo,
            Some("audio track reports no channel count; encoding it as stereo".into()),
        ),
        (n, _) => (
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
            let (channels, layouts, bitrate_kbps, warning) =
                layout_for(source_channels, st.channel_layout.as_deref(), s);
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
        let table: Vec<(&str, u32, String, u32, bool)> = [
            (1, "mono"),
            (2, "stereo"),
            (3, "3.0"),
            (3, "2.1"),
            (3, "unknown"),
            (4, "quad"),
            (4, "4.0"),
            (5, "5.0(side)"),
            (6, "5.1(side)"),
            (7, "6.1"),
            (8, "7.1"),
        ]
        .into_iter()
        .map(|(c, l)| {
            let (ch, layouts, br, warn) = layout_for(c, Some(l), &s);
            (l, ch, layouts, br, warn.is_some())
        })
        .collect();
        let std = STANDARD_LAYOUTS.to_string();
        let row = |l, ch, layouts: &str, br, warn| (l, ch, layouts.to_string(), br, warn);
        assert_eq!(
            table,
            vec![
                row("mono", 1, &std, 64, false),
                row("stereo", 2, &std, 128, false),
                row("3.0", 3, "3.0", 160, true),
                row("2.1", 6, "5.1", 256, true),
                row("unknown", 6, "5.1", 256, true),
                row("quad", 4, "quad", 192, true),
                row("4.0", 6, "5.1", 256, true),
                row("5.0(side)", 6, "5.1", 256, true),
                row("5.1(side)", 6, &std, 256, false),
                row("6.1", 8, "7.1", 384, true),
                row("7.1", 8, &std, 384, false),
            ]
        );
        let (.., warn) = layout_for(5, Some("5.0(side)"), &s);
        assert_eq!(warn.unwrap(), "5-channel audio (5.0(side)) encoded as 5.1 at 256k (Opus keeps it no other way)");
    }

    #[test]
    fn too_many_channels_is_a_loud_downmix() {
        let (ch, _, br, warn) = layout_for(10, None, &AudioSettings::default());
        assert_eq!((ch, br), (8, 384));
        assert!(warn.unwrap().contains("DOWNMIXED"));
    }

    #[test]
    fn configured_bitrates_are_used() {
        let s = AudioSettings { bitrate_stereo: 96, ..AudioSettings::default() };
        assert_eq!(layout_for(2, Some("stereo"), &s).2, 96);
    }
}
