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
    /// The filter that maps the channels, where one is needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remap: Option<String>,
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

/// How a track's channels go into Opus.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Channels in the Opus output.
    pub channels: u32,
    /// `aformat` channel layouts the filter may pick from.
    pub layouts: String,
    pub bitrate_kbps: u32,
    /// The filter that puts each channel in its speaker, where
    /// ffmpeg's own conversion would not (see [`super::channels`]).
    pub remap: Option<String>,
    pub warning: Option<String>,
}

/// Channel count and layout (ffprobe's name, if any) → how it is encoded.
///
/// Opus carries mono, stereo, 5.1 and 7.1, and 3.0 and quad as they are.
/// It has no 2.1 or 4.0, and ffmpeg's libopus wrapper puts the channels of
/// 5.0 and 6.1 in the wrong speakers (a 5.0 track's centre came out in a
/// back speaker, measured channel by channel). So every other layout goes
/// to 5.1 or 7.1 through an explicit map: the channels it has stay where
/// they were, a missing LFE is silent, a back centre is played by both
/// back speakers, and what is folded (heights) or left out is said.
pub fn layout_for(channels: u32, layout: Option<&str>, s: &AudioSettings) -> Layout {
    let plain = |ch, kbps| Layout {
        channels: ch,
        layouts: STANDARD_LAYOUTS.into(),
        bitrate_kbps: kbps,
        remap: None,
        warning: None,
    };
    let named = layout.filter(|l| *l != "unknown");
    match (channels, named) {
        (0, _) => Layout {
            warning: Some("audio track reports no channel count; encoding it as stereo".into()),
            ..plain(2, s.bitrate_stereo)
        },
        (1, l) if l.is_none_or(|l| speakers_are(l, &["FC"])) => plain(1, s.bitrate_mono),
        (2, l)
            if l.is_none_or(|l| l == "downmix" || speakers_are(l, &["FL", "FR"]) || speakers_are(l, &["DL", "DR"])) =>
        {
            plain(2, s.bitrate_stereo)
        }
        (6, None | Some("5.1" | "5.1(side)")) => plain(6, s.bitrate_5_1),
        (8, None | Some("7.1")) => plain(8, s.bitrate_7_1),
        // Kept as they are, at a rate between the neighbouring table rows.
        (3, Some("3.0")) => kept("3.0", 3, 160),
        (4, Some("quad")) => kept("quad", 4, 192),
        _ => mapped(channels, named, s),
    }
}

/// Whether `layout`'s channels are `speakers`, whether it names them
/// ("stereo") or spells them out ("2 channels (FL+FR)").
fn speakers_are(layout: &str, speakers: &[&str]) -> bool {
    super::channels::names(layout, speakers.len() as u32).is_some_and(|n| n == speakers)
}

/// A layout Opus keeps as it is.
fn kept(layout: &str, channels: u32, kbps: u32) -> Layout {
    let why = format!("{channels}-channel audio kept as {layout} at {kbps}k (not a standard layout)");
    Layout { channels, layouts: layout.into(), bitrate_kbps: kbps, remap: None, warning: Some(why) }
}

/// Any other layout, mapped channel by channel (see [`super::channels`]).
fn mapped(channels: u32, named: Option<&str>, s: &AudioSettings) -> Layout {
    use super::channels;
    let given = named.and_then(|l| channels::names(l, channels));
    let assumed = channels::assumed(channels.min(8)).unwrap_or("7.1");
    let names = given.clone().unwrap_or_else(|| {
        let mut n = channels::names(assumed, channels.min(8)).unwrap_or_default();
        n.extend((n.len() as u32..channels).map(|i| format!("U{i}")));
        n
    });
    let keep = match (&given, assumed) {
        (None, "3.0" | "quad") => Some(assumed),
        _ => None,
    };
    let map = channels::map(&names, keep);
    let kbps = match map.layout {
        "3.0" => 160,
        "quad" => 192,
        "5.1" => s.bitrate_5_1,
        _ => s.bitrate_7_1,
    };
    let what = match (named, &given) {
        (Some(l), Some(_)) => l.to_string(),
        (Some(l), None) => format!("{l}, which does not name {channels} channels: taken as {assumed}"),
        (None, _) if channels > 8 => "no named layout: the first 8 taken as 7.1".to_string(),
        (None, _) => format!("no named layout: taken as {assumed}"),
    };
    let mut why = if keep.is_some() {
        format!("{channels}-channel audio ({what}) kept as {} at {kbps}k", map.layout)
    } else {
        format!("{channels}-channel audio ({what}) encoded as {} at {kbps}k (Opus keeps it no other way)", map.layout)
    };
    if !map.notes.is_empty() {
        why.push_str(&format!("; {}", map.notes.join(", ")));
    }
    Layout {
        channels: map.channels,
        layouts: map.layout.into(),
        bitrate_kbps: kbps,
        remap: Some(map.filter),
        warning: Some(why),
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
            let Layout { channels, layouts, bitrate_kbps, remap, warning } =
                layout_for(source_channels, st.channel_layout.as_deref(), s);
            AudioPlan {
                index,
                codec: st.codec_name.clone(),
                source_channels,
                source_layout: st.channel_layout.clone(),
                channels,
                layouts,
                remap,
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
        let table: Vec<(&str, u32, String, u32, bool, bool)> = [
            (1, "mono"),
            (2, "stereo"),
            (2, "2 channels (FC+LFE)"),
            (2, "2 channels (FL+FR)"),
            (3, "3.0"),
            (3, "2.1"),
            (3, "unknown"),
            (4, "quad"),
            (4, "4.0"),
            (5, "5.0(side)"),
            (6, "5.1(side)"),
            (6, "6.0"),
            (7, "6.1"),
            (8, "7.1"),
            (8, "7.1(wide)"),
        ]
        .into_iter()
        .map(|(c, l)| {
            let p = layout_for(c, Some(l), &s);
            (l, p.channels, p.layouts, p.bitrate_kbps, p.remap.is_some(), p.warning.is_some())
        })
        .collect();
        let std = STANDARD_LAYOUTS.to_string();
        let row = |l, ch, layouts: &str, br, remap, warn| (l, ch, layouts.to_string(), br, remap, warn);
        assert_eq!(
            table,
            vec![
                row("mono", 1, &std, 64, false, false),
                row("stereo", 2, &std, 128, false, false),
                // A centre and an LFE (AC-3 1/0+LFE): each in its speaker.
                row("2 channels (FC+LFE)", 6, "5.1", 256, true, true),
                row("2 channels (FL+FR)", 2, &std, 128, false, false),
                row("3.0", 3, "3.0", 160, false, true),
                row("2.1", 6, "5.1", 256, true, true),
                // No layout: 3.0 as WAV orders it, kept (its centre is not an LFE).
                row("unknown", 3, "3.0", 160, true, true),
                row("quad", 4, "quad", 192, false, true),
                row("4.0", 6, "5.1", 256, true, true),
                row("5.0(side)", 6, "5.1", 256, true, true),
                row("5.1(side)", 6, &std, 256, false, false),
                // Its sides and back centre each keep a speaker of their own.
                row("6.0", 8, "7.1", 384, true, true),
                row("6.1", 8, "7.1", 384, true, true),
                row("7.1", 8, &std, 384, false, false),
                // Not ffmpeg's 7.1: mapped, and said.
                row("7.1(wide)", 8, "7.1", 384, true, true),
            ]
        );
        let w = layout_for(5, Some("5.0(side)"), &s).warning.unwrap();
        assert_eq!(
            w,
            "5-channel audio (5.0(side)) encoded as 5.1 at 256k (Opus keeps it no other way); SL into BL, SR into BR"
        );
        let w = layout_for(7, None, &s).warning.unwrap();
        assert_eq!(
            w,
            "7-channel audio (no named layout: taken as 7.0) encoded as 7.1 at 384k (Opus keeps it no other way)"
        );
    }

    #[test]
    fn too_many_channels_keep_what_has_a_place_and_say_what_has_none() {
        let p = layout_for(10, None, &AudioSettings::default());
        assert_eq!((p.channels, p.bitrate_kbps), (8, 384));
        let w = p.warning.unwrap();
        assert!(w.contains("the first 8 taken as 7.1") && w.contains("U8 left out"), "{w}");
        // Named, its heights fold into the speakers below them.
        let p = layout_for(12, Some("7.1.4"), &AudioSettings::default());
        assert_eq!(p.channels, 8);
        assert!(p.warning.unwrap().contains("TBL into BL"));
    }

    #[test]
    fn configured_bitrates_are_used() {
        let s = AudioSettings { bitrate_stereo: 96, ..AudioSettings::default() };
        assert_eq!(layout_for(2, Some("stereo"), &s).bitrate_kbps, 96);
    }
}
