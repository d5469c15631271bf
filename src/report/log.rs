//! The log file subscriber: every event as a line through `tracing`, which
//! the binary routes to `logs/encode_<timestamp>.log` in the design's format
//! (`[2024-01-18T14:15:00Z] INFO: message`).

use crate::events::{Check, Event, EventSink};
use crate::report::{format_bytes, format_duration};
use std::path::Path;

/// Writes events to the log.
pub struct LogEvents;

impl EventSink for LogEvents {
    fn emit(&self, event: &Event) {
        match event {
            Event::BatchStarted { files, output_dir } => {
                tracing::info!("Batch of {} file(s) to {}", files.len(), output_dir.display())
            }
            Event::FileStarted { index, total, input, output } => {
                tracing::info!("Starting encode for {} ({index}/{total}) -> {}", input.display(), output.display())
            }
            Event::AnalysisComplete { input, analysis, plan } => tracing::info!(
                "Input analysis complete for {}: {} {}x{} {}, {} audio; mux: {}; plan: {}",
                input.display(),
                analysis.resolution.name(),
                analysis.video.width,
                analysis.video.height,
                analysis.hdr.kind.name(),
                analysis.audio.len(),
                analysis.mux.describe_rest(),
                serde_json::to_string(plan).unwrap_or_default()
            ),
            Event::StageStarted { input, stage, detail } => {
                tracing::info!("{}: starting {} {detail}", input.display(), stage.label())
            }
            Event::Progress { .. } => {}
            Event::StageComplete { input, stage, seconds, detail } => {
                tracing::info!(
                    "{}: {} complete in {} {detail}",
                    input.display(),
                    stage.label(),
                    format_duration(*seconds)
                )
            }
            Event::SegmentStep { input, segment, step } => {
                tracing::debug!("{}: segment {}: {}", input.display(), segment + 1, step.describe())
            }
            Event::SegmentProbe { input, segment, tier, crf, score } => {
                tracing::debug!(
                    "{}: segment {} tier {tier}: CRF {crf} scored VMAF {score:.2}",
                    input.display(),
                    segment + 1
                )
            }
            Event::SegmentComplete { .. } => log_segment(event),
            Event::ValidationComplete { input, passed, checks } => log_validation(input, *passed, checks),
            Event::FileComplete { summary: s } => tracing::info!(
                "Encode complete: {} -> {}: {} -> {} ({:.2}% reduction) in {}",
                s.input.display(),
                s.output.display(),
                format_bytes(s.input_bytes),
                format_bytes(s.output_bytes),
                s.reduction_percent,
                format_duration(s.encode_seconds)
            ),
            Event::FileSkipped { input, reason, .. } => {
                tracing::info!("Skipped {}: {reason}", input.display())
            }
            // The error names its rip.
            Event::FileFailed { error, .. } => tracing::error!("Failed: {error}"),
            Event::Warning { input, message } => match input {
                Some(i) => tracing::warn!("{}: {message}", i.display()),
                None => tracing::warn!("{message}"),
            },
            Event::Queue { waiting, settling } => {
                tracing::info!("Queue: {} waiting, {} settling", waiting.len(), settling.len())
            }
            Event::BatchComplete { summary } => tracing::info!(
                "Batch complete: {} encoded, {} skipped, {} failed, {} not started",
                summary.files.len(),
                summary.skipped.len(),
                summary.failed.len(),
                summary.not_started.len()
            ),
        }
    }
}

/// A finished segment, on one line.
fn log_segment(event: &Event) {
    let Event::SegmentComplete {
        input,
        segment,
        total,
        crf,
        tier,
        predicted_vmaf,
        prediction,
        measured_vmaf,
        bytes,
        seconds,
        probes,
        host,
        ..
    } = event
    else {
        return;
    };
    tracing::info!(
        "{}: segment {}/{total} done: CRF {crf} (tier {tier}, {probes} probes), VMAF predicted {predicted_vmaf:.2}{} measured {}, {} in {}{}",
        input.display(),
        segment + 1,
        prediction.suffix(),
        measured_vmaf.map_or("n/a".into(), |m| format!("{m:.2}")),
        format_bytes(*bytes),
        format_duration(*seconds),
        host.as_ref().map(|h| format!(" on {h}")).unwrap_or_default()
    );
}

/// Each check of the output's validation, then its verdict.
fn log_validation(input: &Path, passed: bool, checks: &[Check]) {
    for c in checks {
        tracing::info!(
            "{}: check {}: {} ({})",
            input.display(),
            c.name,
            if c.passed { "ok" } else { "FAILED" },
            c.detail
        );
    }
    tracing::info!("{}: validation {}", input.display(), if passed { "passed" } else { "failed" });
}
