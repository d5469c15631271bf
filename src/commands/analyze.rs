//! `drapto analyze <file|folder> [--json]`: what drapto sees and would do.

use super::{Session, inputs_of};
use crate::analysis;
use crate::cli::AnalyzeArgs;
use crate::error::Result;
use crate::plan;
use crate::report::{format_bytes, format_duration};
use crate::tools::Tools;

/// Analyses every input; returns the exit code (1 when any input failed).
pub fn run(args: &AnalyzeArgs, session: &Session) -> Result<i32> {
    let settings = &session.loaded.settings;
    let inputs = inputs_of(&args.input)?;
    let tools = Tools::discover(settings, &session.loaded.origins, &session.cancel);
    let ffprobe = tools.require_ffprobe()?;
    let caps = tools
        .ffmpeg
        .as_ref()
        .map(|(_, c)| c.clone())
        .unwrap_or_default();
    let mut failed = false;
    for input in &inputs {
        match analysis::analyze(input, ffprobe, settings, &session.cancel) {
            Ok(a) => {
                let p = plan::plan(&a, settings, &caps);
                if session.json {
                    let line = serde_json::json!({ "input": input, "analysis": a, "plan": p });
                    println!("{line}");
                } else {
                    println!("{}", input.display());
                    println!("  size:        {}", format_bytes(a.size_bytes));
                    println!("  duration:    {}", format_duration(a.duration));
                    println!(
                        "  video:       {} {}x{}{} {}",
                        a.video.codec,
                        a.video.width,
                        a.video.height,
                        a.video
                            .frame_rate
                            .map(|f| format!(" @ {f:.3} fps"))
                            .unwrap_or_default(),
                        a.video.pix_fmt.as_deref().unwrap_or("")
                    );
                    println!(
                        "  class:       {} → CRF {}",
                        a.resolution.name(),
                        p.video.crf
                    );
                    println!("  dynamic range: {}", a.hdr.kind.name());
                    if let Some(md) = &a.hdr.mastering_display {
                        println!("  mastering:   {}", md.svt_param());
                    }
                    if let Some(cl) = &a.hdr.content_light {
                        println!(
                            "  light level: MaxCLL {} MaxFALL {}",
                            cl.max_cll, cl.max_fall
                        );
                    }
                    for t in &a.audio {
                        println!(
                            "  audio {}:     {} {} ch{} → Opus {} ch {}k{}{}",
                            t.index + 1,
                            t.codec,
                            t.source_channels,
                            t.source_layout
                                .as_deref()
                                .map(|l| format!(" ({l})"))
                                .unwrap_or_default(),
                            t.channels,
                            t.bitrate_kbps,
                            t.language
                                .as_deref()
                                .map(|l| format!(" [{l}]"))
                                .unwrap_or_default(),
                            t.warning
                                .as_deref()
                                .map(|w| format!(" ⚠ {w}"))
                                .unwrap_or_default()
                        );
                    }
                    println!(
                        "  other:       {} subtitle(s), {} chapter(s), {} attachment(s)",
                        a.subtitles, a.chapters, a.attachments
                    );
                    println!("  svt params:  {}", p.video.svt_params);
                    for w in &a.warnings {
                        println!("  ⚠ {w}");
                    }
                }
            }
            Err(e) => {
                failed = true;
                if session.json {
                    println!(
                        "{}",
                        serde_json::json!({ "input": input, "error": e.to_string() })
                    );
                } else {
                    eprintln!("✗ {e}");
                }
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}
