//! Interlacing: ffmpeg's `idet` on sampled frames, read together with the
//! stream's field order. Interlaced content is deinterlaced with bwdif (one
//! frame out per frame in); a progressive source is never filtered.

use crate::cancel::Cancel;
use crate::tools::ffmpeg::FfmpegArgs;
use serde::Serialize;
use std::path::Path;

/// Frames `idet` looks at per sample point.
pub const FRAMES_PER_SAMPLE: u32 = 60;
/// Share of interlaced frames (among judged ones) that makes the verdict
/// when the stream says it is interlaced, says nothing, or says progressive.
/// A stream flagged progressive needs overwhelming evidence: idet mistakes
/// sharp synthetic motion for combing far more often than it misses real
/// interlacing, and filtering a progressive picture costs detail.
pub const SHARE_IF_FLAGGED_INTERLACED: f64 = 0.2;
pub const SHARE_IF_UNFLAGGED: f64 = 0.5;
pub const SHARE_IF_FLAGGED_PROGRESSIVE: f64 = 0.9;

/// idet's multi-frame counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IdetCounts {
    pub tff: u64,
    pub bff: u64,
    pub progressive: u64,
    pub undetermined: u64,
}

impl IdetCounts {
    fn add(&mut self, o: &IdetCounts) {
        self.tff += o.tff;
        self.bff += o.bff;
        self.progressive += o.progressive;
        self.undetermined += o.undetermined;
    }
}

/// The verdict and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InterlaceVerdict {
    pub interlaced: bool,
    /// "tff" or "bff" when interlaced.
    pub field_order: Option<String>,
    pub counts: IdetCounts,
    pub reason: String,
}

impl InterlaceVerdict {
    /// The bwdif filter to apply, when interlaced.
    pub fn filter(&self) -> Option<String> {
        self.interlaced.then(|| {
            let parity = match self.field_order.as_deref() {
                Some("bff") => "bff",
                Some("tff") => "tff",
                _ => "auto",
            };
            format!("bwdif=mode=send_frame:parity={parity}:deint=all")
        })
    }
}

/// Parses the last "Multi frame detection" line of an idet run.
pub fn parse_idet(stderr: &str) -> Option<IdetCounts> {
    let line = stderr.lines().rev().find(|l| l.contains("Multi frame detection"))?;
    let rest = line.split("Multi frame detection:").nth(1)?;
    let field = |name: &str| -> Option<u64> {
        let after = rest.split(name).nth(1)?;
        after.split_whitespace().next()?.parse().ok()
    };
    Some(IdetCounts {
        tff: field("TFF:")?,
        bff: field("BFF:")?,
        progressive: field("Progressive:")?,
        undetermined: field("Undetermined:").unwrap_or(0),
    })
}

/// Decides from idet's counts and the stream's declared field order.
pub fn decide(counts: IdetCounts, declared: Option<&str>) -> InterlaceVerdict {
    let interlaced_frames = counts.tff + counts.bff;
    let decided = interlaced_frames + counts.progressive;
    let declared_interlaced = matches!(declared, Some("tt" | "bb" | "tb" | "bt"));
    if decided == 0 {
        // idet saw nothing it could judge: fall back to the stream's flag.
        let field_order = match declared {
            Some("tt" | "tb") => Some("tff".to_string()),
            Some("bb" | "bt") => Some("bff".to_string()),
            _ => None,
        };
        return InterlaceVerdict {
            interlaced: declared_interlaced,
            field_order,
            counts,
            reason: format!("idet could not judge any frame; the stream says {}", declared.unwrap_or("nothing")),
        };
    }
    let share = interlaced_frames as f64 / decided as f64;
    let needed = match declared {
        _ if declared_interlaced => SHARE_IF_FLAGGED_INTERLACED,
        Some("progressive") => SHARE_IF_FLAGGED_PROGRESSIVE,
        _ => SHARE_IF_UNFLAGGED,
    };
    let interlaced = share >= needed;
    let field_order = interlaced.then(|| if counts.bff > counts.tff { "bff" } else { "tff" }.to_string());
    let reason = format!(
        "idet: {:.0}% of {decided} judged frames interlaced (TFF {}, BFF {}, progressive {}; {:.0}% needed); stream field order {}",
        share * 100.0,
        counts.tff,
        counts.bff,
        counts.progressive,
        needed * 100.0,
        declared.unwrap_or("unknown")
    );
    InterlaceVerdict { interlaced, field_order, counts, reason }
}

/// Runs idet at a few points and decides.
pub fn detect(ffmpeg: &Path, input: &Path, duration: f64, declared: Option<&str>, cancel: &Cancel) -> InterlaceVerdict {
    let points: Vec<f64> =
        if duration > 60.0 { [0.2, 0.5, 0.8].iter().map(|f| duration * f).collect() } else { vec![0.0] };
    let mut total = IdetCounts::default();
    for at in points {
        if cancel.is_cancelled() {
            break;
        }
        let mut a = FfmpegArgs::default();
        a.extend(["-hide_banner", "-nostdin", "-loglevel", "info", "-ss"])
            .arg(format!("{at:.3}"))
            .input(input)
            .extend(["-map", "0:v:0", "-an", "-sn", "-dn", "-vf", "idet", "-frames:v"])
            .arg(FRAMES_PER_SAMPLE.to_string())
            .extend(["-f", "null", "-"]);
        // idet reports on stderr; run it like every other child (own
        // process group, ended on a stop request).
        let mut text = String::new();
        let _ = crate::tools::process::run_lines(&mut a.command(ffmpeg), "interlace detection", cancel, |line| {
            if let crate::tools::process::Line::Err(l) = line {
                text.push_str(l);
                text.push('\n');
            }
        });
        if let Some(c) = parse_idet(&text) {
            total.add(&c);
        }
    }
    decide(total, declared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_idet() {
        let log = "[Parsed_idet_0 @ 0x1] Repeated Fields: Neither:    59 Top:     0 Bottom:     0\n\
                   [Parsed_idet_0 @ 0x1] Single frame detection: TFF:    50 BFF:     0 Progressive:     2 Undetermined:     7\n\
                   [Parsed_idet_0 @ 0x1] Multi frame detection: TFF:    57 BFF:     0 Progressive:     1 Undetermined:     1\n";
        assert_eq!(parse_idet(log), Some(IdetCounts { tff: 57, bff: 0, progressive: 1, undetermined: 1 }));
        assert_eq!(parse_idet("no idet here"), None);
    }

    #[test]
    fn verdicts() {
        let c = |tff, bff, progressive| IdetCounts { tff, bff, progressive, undetermined: 0 };
        let v = decide(c(57, 0, 1), Some("progressive"));
        assert!(v.interlaced);
        assert_eq!(v.filter().unwrap(), "bwdif=mode=send_frame:parity=tff:deint=all");
        let v = decide(c(0, 40, 5), Some("bb"));
        assert_eq!(v.field_order.as_deref(), Some("bff"));
        // Film content flagged interlaced (common on DVDs): trust idet.
        let v = decide(c(2, 0, 150), Some("tt"));
        assert!(!v.interlaced);
        assert_eq!(v.filter(), None);
        // Hard telecine flagged interlaced: 2 of 5 frames combed.
        assert!(decide(c(24, 0, 36), Some("tt")).interlaced);
        // Flagged progressive: only overwhelming evidence counts.
        assert!(!decide(c(52, 0, 9), Some("progressive")).interlaced);
        assert!(decide(c(58, 0, 2), Some("progressive")).interlaced);
        assert!(!decide(c(20, 0, 40), None).interlaced);
        // Nothing judged: the stream flag decides.
        assert!(decide(c(0, 0, 0), Some("tt")).interlaced);
        assert!(!decide(c(0, 0, 0), Some("progressive")).interlaced);
    }
}
