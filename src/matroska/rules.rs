//! What the mux carries from a source track to the track that replaces it,
//! and every difference between source and output that drapto makes on
//! purpose, in one place. The mux ([`crate::mux::args`]) and the comparison
//! ([`crate::validate::container`]) both read them.

/// A track's identity, carried from the source track to its re-encoded
/// replacement: the `mkvmerge -J` property and the mkvmerge option that
/// sets it (languages are carried by [`language`]).
pub const IDENTITY: &[(&str, &str)] = &[
    ("track_name", "--track-name"),
    ("default_track", "--default-track-flag"),
    ("forced_track", "--forced-display-flag"),
    ("enabled_track", "--track-enabled-flag"),
    ("flag_original", "--original-flag"),
    ("flag_commentary", "--commentary-flag"),
    ("flag_hearing_impaired", "--hearing-impaired-flag"),
    ("flag_visual_impaired", "--visual-impaired-flag"),
    ("flag_text_descriptions", "--text-descriptions-flag"),
];

/// The language properties, compared on every track.
pub const LANGUAGE: &[&str] = &["language", "language_ietf"];

/// The language a re-encoded track is given: the source's IETF tag when it
/// has one (`es-419`), else its ISO 639-2 code (`spa`).
pub fn language(props: &std::collections::BTreeMap<String, serde_json::Value>) -> Option<&str> {
    props.get("language_ietf").or_else(|| props.get("language")).and_then(|v| v.as_str())
}

/// Whether a track property is one a header editor changes in place (a
/// name, a language, a flag).
pub fn is_editable(property: &str) -> bool {
    LANGUAGE.contains(&property) || IDENTITY.iter().any(|(p, _)| *p == property)
}

/// The mkvmerge `--compression` method that keeps a carried track's
/// content compression as the source has it (`mkvmerge -J`'s
/// `content_encoding_algorithms`: none, or `0`, zlib). Without it mkvmerge
/// applies its own default for the codec (zlib for VobSub, none for text)
/// whatever the source had. `None` for anything else (header removal),
/// which is left to mkvmerge.
pub fn compression(props: &std::collections::BTreeMap<String, serde_json::Value>) -> Option<&'static str> {
    match props.get("content_encoding_algorithms").and_then(|v| v.as_str()) {
        None => Some("none"),
        Some("0") => Some("zlib"),
        Some(_) => None,
    }
}

/// Track properties that every mux writes anew (identifiers, mkvmerge's
/// own bookkeeping) or that mirror tags, which are compared as tags.
pub fn is_new_in_every_mux(property: &str) -> bool {
    matches!(property, "uid" | "number" | "num_index_entries" | "packetizer") || property.starts_with("tag_")
}

/// Container properties carried as they are: the title, the segment UID
/// (ordered chapters in other files name a segment by it) and the links to
/// other files (a film split over files). The others (dates, muxing and
/// writing application) are new in every mux; the duration is checked on
/// its own (the film's real length).
pub const CONTAINER_CARRIED: &[&str] = &["title", "segment_uid", "previous_segment_uid", "next_segment_uid"];

/// mkvmerge's statistics tags, written fresh for every track of every mux
/// (ffmpeg's `DURATION` and `ENCODER` are alike).
pub fn is_statistics_tag(name: &str) -> bool {
    matches!(name, "BPS" | "DURATION" | "NUMBER_OF_FRAMES" | "NUMBER_OF_BYTES") || name.starts_with("_STATISTICS_")
}

/// Tags that describe a track's old encoding: wrong once it is re-encoded
/// (`FPS`, like `BPS`, is technical: after inverse telecine a 29.970 tag
/// described a 23.976 track).
pub fn is_encoding_tag(name: &str) -> bool {
    matches!(name, "ENCODER" | "ENCODER_SETTINGS" | "ENCODER_OPTIONS" | "ENCODED_BY" | "ENCODED_LIBRARY_NAME" | "FPS")
}

/// Global tags that describe the old file's making: its muxer (ffmpeg's
/// `ENCODER`, "Lavf…", wrong once mkvmerge writes the file) and an earlier
/// drapto's record of its source (a drapto output encoded again: the
/// output's only record is of its own source). Not carried. (A global
/// `ENCODED_BY`, a ripper's credit, is the user's, and is.)
pub fn is_old_making_tag(name: &str) -> bool {
    name == "ENCODER" || name == SOURCE_RECORD_TAG
}

/// The global tag in which drapto's output records the rip it was made
/// from (written and read by [`crate::job::record`]).
pub const SOURCE_RECORD_TAG: &str = "DRAPTO_SOURCE";

/// Subtitle codecs (mkvmerge's codec IDs) ffmpeg copies into Matroska as
/// they are, so the mux can clamp them to the film's end. ffmpeg reads
/// WebVTT in Matroska as no codec and writes DVB subtitles without the
/// header mkvmerge wants: such a track clamped failed the mux of a whole
/// encode, on every run.
pub const CLAMPABLE_SUBTITLES: &[&str] =
    &["S_TEXT/UTF8", "S_TEXT/ASCII", "S_TEXT/ASS", "S_TEXT/SSA", "S_HDMV/PGS", "S_VOBSUB"];

/// Elements mkvmerge adds to chapters and tags where the source has none:
/// a UID for an edition or a chapter without one (a chapter's is
/// mandatory; a writer that left it out cannot have named it), and the IETF
/// form of a language given only in ISO 639-2. Ignored in the output when
/// the source lacks them.
pub const ADDED_BY_MKVMERGE: &[&str] = &["EditionUID", "ChapterUID", "ChapLanguageIETF", "TagLanguageIETF"];

/// Elements with a default that mkvmerge writes out where the source left
/// them out (as the specification lets a writer): ignored in the output
/// when they hold the default and the source lacks them.
pub const DEFAULTS_WRITTEN_BY_MKVMERGE: &[(&str, &str)] = &[("ChapterLanguage", "eng")];

/// How far a re-encoded audio track's start may move (seconds): Opus
/// frames are 20 ms, and the encoder's pre-skip shifts the first one.
pub const AUDIO_DELAY_TOLERANCE: f64 = 0.04;

/// The mkvmerge options that give track 0 the colour description of
/// `props` (a `mkvmerge -J` video track's).
pub fn colour_options(props: &std::collections::BTreeMap<String, serde_json::Value>) -> Vec<String> {
    options_of(props, COLOUR)
}

/// The Colour element: each `mkvmerge -J` property and the option that sets it.
const COLOUR: &[(&str, &str)] = &[
    ("color_matrix_coefficients", "--colour-matrix-coefficients"),
    ("color_range", "--colour-range"),
    ("color_transfer_characteristics", "--colour-transfer-characteristics"),
    ("color_primaries", "--colour-primaries"),
    ("max_content_light", "--max-content-light"),
    ("max_frame_light", "--max-frame-light"),
    ("chromaticity_coordinates", "--chromaticity-coordinates"),
    ("white_color_coordinates", "--white-colour-coordinates"),
    ("max_luminance", "--max-luminance"),
    ("min_luminance", "--min-luminance"),
    ("chroma_siting", "--chroma-siting"),
];

/// The `options` of `props` that it has, for track 0.
fn options_of(props: &std::collections::BTreeMap<String, serde_json::Value>, options: &[(&str, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    for (property, option) in options {
        let value = match props.get(*property) {
            Some(serde_json::Value::String(s)) => s.split(',').map(for_mkvmerge).collect::<Vec<_>>().join(","),
            Some(serde_json::Value::Number(n)) => for_mkvmerge(&n.to_string()),
            _ => continue,
        };
        out.extend([option.to_string(), format!("0:{value}")]);
    }
    out
}

/// A number as mkvmerge reads it right: ten significant digits at most,
/// never in exponent form. A float stored in 32 bits reads back from
/// `mkvmerge -J` as `0.0010000000474974513`, which mkvmerge's parser
/// overflows on (it wrote -0.001184); `9.99e-5` it refuses.
pub fn for_mkvmerge(text: &str) -> String {
    let Ok(v) = text.trim().parse::<f64>() else { return text.to_string() };
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let decimals = (9 - v.abs().log10().floor() as i32).clamp(0, 15) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_go_to_mkvmerge_in_a_form_it_reads_right() {
        assert_eq!(for_mkvmerge("0.0010000000474974513"), "0.001000000047");
        assert_eq!(for_mkvmerge("9.999999747378752e-5"), "0.00009999999747");
        assert_eq!(for_mkvmerge("0.0001"), "0.0001");
        assert_eq!(for_mkvmerge("1000.0"), "1000");
        assert_eq!(for_mkvmerge("400"), "400");
        assert_eq!(for_mkvmerge("0.3127"), "0.3127");
        assert_eq!(for_mkvmerge("bt2020"), "bt2020");
        let props = serde_json::json!({
            "min_luminance": 0.0010000000474974513,
            "chromaticity_coordinates": "0.680000007152557,0.319999992847443",
            "max_content_light": 1000,
        });
        let props = props.as_object().unwrap().clone().into_iter().collect();
        assert_eq!(
            colour_options(&props),
            [
                "--max-content-light",
                "0:1000",
                "--chromaticity-coordinates",
                "0:0.6800000072,0.3199999928",
                "--min-luminance",
                "0:0.001000000047"
            ]
        );
    }

    #[test]
    fn statistics_and_encoding_tags_are_told_apart_from_curated_ones() {
        for t in ["BPS", "DURATION", "NUMBER_OF_FRAMES", "NUMBER_OF_BYTES", "_STATISTICS_TAGS"] {
            assert!(is_statistics_tag(t), "{t}");
        }
        for t in ["TITLE", "MIXED_BY", "COMMENT", "ENCODER"] {
            assert!(!is_statistics_tag(t), "{t}");
        }
        assert!(is_encoding_tag("ENCODER") && is_encoding_tag("FPS") && !is_encoding_tag("TITLE"));
        assert!(is_new_in_every_mux("tag_bps") && is_new_in_every_mux("uid") && !is_new_in_every_mux("language"));
    }

    #[test]
    fn compression_is_kept_as_the_source_has_it() {
        let props = |j: &str| serde_json::from_str(j).unwrap();
        assert_eq!(compression(&props("{}")), Some("none"));
        assert_eq!(compression(&props(r#"{"content_encoding_algorithms": "0"}"#)), Some("zlib"));
        assert_eq!(compression(&props(r#"{"content_encoding_algorithms": "3"}"#)), None);
    }

    #[test]
    fn the_ietf_language_wins() {
        let props = |j: &str| serde_json::from_str(j).unwrap();
        assert_eq!(language(&props(r#"{"language": "spa", "language_ietf": "es-419"}"#)), Some("es-419"));
        assert_eq!(language(&props(r#"{"language": "ger"}"#)), Some("ger"));
        assert_eq!(language(&props("{}")), None);
    }
}
