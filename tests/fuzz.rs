//! Property tests (fuzzing) of every parser of external programs' output
//! and of the state-file loader: arbitrary input never panics.

use drapto::analysis::{crop, interlace};
use drapto::encode::chunked::resume::EncodingFile;
use drapto::encode::chunked::vmaf;
use drapto::job::state;
use drapto::tools::ffmpeg::ProgressParser;
use drapto::tools::ffprobe::Probe;
use drapto::tools::mediainfo::MediaInfo;
use proptest::prelude::*;

const PROBE: &str = r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264","width":1920,"height":1080,
"r_frame_rate":"24000/1001","disposition":{"default":1},"tags":{"language":"eng"},
"side_data_list":[{"side_data_type":"DOVI configuration record","dv_profile":8}]}],
"chapters":[{"start_time":"0.0","end_time":"1.0"}],"format":{"format_name":"matroska,webm","duration":"10.0"}}"#;

/// Mutates a valid document: cut, flip a byte, insert junk.
fn mutate(doc: &str, cut: usize, flip: usize, junk: &str) -> String {
    let mut b = doc.as_bytes().to_vec();
    if !b.is_empty() {
        let i = flip % b.len();
        b[i] ^= 0x5a;
        let c = cut % (b.len() + 1);
        b.truncate(c.max(b.len() / 2));
        b.splice(c.min(b.len())..c.min(b.len()), junk.bytes());
    }
    String::from_utf8_lossy(&b).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn ffprobe_json_never_panics(s in ".*", cut in 0usize..2000, flip in 0usize..2000, junk in ".{0,20}") {
        let _ = Probe::from_json(&s);
        if let Ok(p) = Probe::from_json(&mutate(PROBE, cut, flip, &junk)) {
            let _ = p.duration();
            for st in &p.streams {
                let _ = (st.frame_rate(), st.bit_depth(), st.tag("language"), st.side_data("dovi"));
            }
        }
    }

    #[test]
    fn mediainfo_json_never_panics(s in ".*", cut in 0usize..500, flip in 0usize..500) {
        let doc = r#"{"media":{"track":[{"@type":"Video","HDR_Format":"Dolby Vision","HDR_Format_Profile":"dvhe.08.06"}]}}"#;
        let _ = MediaInfo::from_json(&s);
        if let Ok(m) = MediaInfo::from_json(&mutate(doc, cut, flip, "")) {
            let _ = m.tracks(drapto::tools::mediainfo::TrackKind::Video).count();
        }
    }

    #[test]
    fn progress_lines_never_panic(lines in proptest::collection::vec("[a-z_]{0,12}=?[-0-9.a-zA-Z/ ]{0,16}", 0..40)) {
        let mut p = ProgressParser::default();
        for l in &lines {
            let _ = p.feed(l);
        }
    }

    #[test]
    fn filter_logs_never_panic(s in ".*", w in -5000i64..5000, h in -5000i64..5000) {
        let _ = crop::parse_cropdetect(&s);
        let _ = crop::parse_ylow(&s);
        let line = format!("[Parsed_cropdetect_0 @ 0x1] crop={w}:{h}:{}:{}", w / 3, h / 5);
        let parsed = crop::parse_cropdetect(&line);
        let _ = crop::usable(parsed, 1920, 1080);
        let _ = interlace::parse_idet(&s);
        let _ = interlace::parse_idet(&format!("Multi frame detection: TFF: {w} BFF: {h} Progressive: x"));
        let lines: Vec<&str> = s.lines().collect();
        let _ = vmaf::pooled(&vmaf::frame_scores(&lines), drapto::config::VmafPool::HarmonicMean);
        let _ = vmaf::frame_scores(&["Frame,vmaf,".to_string(), s.clone()]);
    }

    #[test]
    fn crop_decision_is_always_inside_the_picture(
        rects in proptest::collection::vec((0u32..2000, 0u32..1200, 0u32..2000, 0u32..1200, any::<bool>()), 0..12),
        width in 2u32..4000, height in 2u32..2400,
    ) {
        let samples: Vec<Option<crop::Rect>> = rects
            .iter()
            .map(|&(w, h, x, y, dark)| {
                if dark { None } else { crop::usable(Some((i64::from(w), i64::from(h), i64::from(x), i64::from(y))), width, height) }
            })
            .collect();
        let (c, _, _, _) = crop::decide(&samples, width, height);
        if let Some(r) = c {
            prop_assert!(r.x + r.width <= width && r.y + r.height <= height);
            prop_assert!(r.width % 2 == 0 && r.height % 2 == 0 && r.x % 2 == 0 && r.y % 2 == 0);
            // Never smaller than any usable sample's picture.
            for s in samples.iter().flatten() {
                prop_assert!(r.x <= s.x && r.y <= s.y);
                prop_assert!(r.x + r.width >= (s.x + s.width).min(width & !1));
                prop_assert!(r.y + r.height >= (s.y + s.height).min(height & !1));
            }
        }
    }

    #[test]
    fn state_loader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), fp in "[a-f0-9]{0,16}") {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("encoding.json");
        std::fs::write(&p, &bytes).unwrap();
        let _ = state::load::<EncodingFile>(&p, &fp);
        let mutated = mutate(r#"{"version":1,"fingerprint":"ab","created_at":"","updated_at":"","total_attempts":0,"failed_segments":0,"max_attempts":3,"segments":{}}"#, bytes.len(), fp.len(), "");
        std::fs::write(&p, mutated).unwrap();
        let _ = state::load::<EncodingFile>(&p, "ab");
    }
}
