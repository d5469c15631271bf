//! `drapto encode -i <file|folder> -o <folder>`.

use super::{Session, inputs_of};
use crate::cli::EncodeArgs;
use crate::encode::chunked::remote::{Cluster, WorkerInfo};
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::tools::Tools;
use std::path::PathBuf;

/// Runs the batch; returns the exit code.
pub fn run(args: &EncodeArgs, session: &Session) -> Result<i32> {
    let settings = &session.loaded.settings;
    let input = args.input.clone().or_else(|| settings.paths.input_dir.clone()).ok_or_else(|| Error::Input {
        path: PathBuf::from("-i"),
        problem: "no input given: pass -i <file|folder> or set paths.input_dir".into(),
    })?;
    let output_dir = args.output.clone().or_else(|| settings.paths.output_dir.clone()).ok_or_else(|| Error::Input {
        path: PathBuf::from("-o"),
        problem: "no output folder given: pass -o <folder> or set paths.output_dir".into(),
    })?;
    let inputs = inputs_of(&input)?;

    // A bounded history: old run logs and tracking entries go.
    let pruned = crate::report::retention::prune(
        &settings.log_dir(),
        &settings.temp_dir().join("encode_data"),
        crate::report::retention::Retention::of(settings),
        std::time::SystemTime::now(),
    );
    if pruned.removed_files + pruned.dropped_entries > 0 {
        tracing::info!(
            "history: removed {} old log(s), {} freed; dropped {} old tracking entries",
            pruned.removed_files,
            crate::units::format_bytes(pruned.freed_bytes),
            pruned.dropped_entries
        );
    }
    let tools = Tools::discover(settings, &session.loaded.origins, &session.cancel);
    let toolbox = tools.toolbox()?;
    let caps = &toolbox.caps;

    std::fs::create_dir_all(&output_dir).map_err(Error::io("create output folder", &output_dir))?;
    check_writable(&output_dir)?;

    let events = session.events();
    for note in &session.loaded.migration_notes {
        tracing::warn!("configuration file migrated: {note}");
    }
    if settings.processing.enable_chunked_encoding != crate::config::ChunkedMode::Off {
        match crate::plan::chunked_available(caps) {
            Ok(()) => {}
            Err(e) if settings.processing.enable_chunked_encoding == crate::config::ChunkedMode::On => {
                return Err(e.into());
            }
            Err(e) => events.emit(&crate::events::Event::Warning {
                input: None,
                message: format!("chunked encoding unavailable, using the standard path: {e}"),
            }),
        }
    }
    let cluster = match &settings.distributed.hosts {
        None => None,
        Some(file) if settings.processing.enable_chunked_encoding == crate::config::ChunkedMode::Off => {
            events.emit(&crate::events::Event::Warning {
                input: None,
                message: format!(
                    "hosts file {} not used: chunked encoding is turned off, and only segments are shared",
                    file.display()
                ),
            });
            None
        }
        Some(_) => {
            let mut c = Cluster::from_settings(&settings.distributed)?;
            let mut warn = |message: String| events.emit(&crate::events::Event::Warning { input: None, message });
            c.keep_usable(&WorkerInfo::of(&tools), &settings.temp_dir(), &session.cancel, &mut warn)?;
            Some(c)
        }
    };
    if tools.mediainfo_path().is_none() {
        tracing::warn!("mediainfo not found: Dolby Vision is detected from ffprobe side data only");
    }
    let pipeline = Pipeline {
        settings,
        tools: &toolbox,
        cluster: cluster.as_ref(),
        events: events.as_ref(),
        cancel: &session.cancel,
    };
    let summary = pipeline.run_batch(&inputs, &output_dir);
    if let Some(signal) = session.cancel.signal() {
        return Ok(128 + signal);
    }
    Ok(if summary.succeeded() { 0 } else { 1 })
}

fn check_writable(dir: &std::path::Path) -> Result<()> {
    let probe = dir.join(format!(".drapto-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(Error::io("write to output folder", dir))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
