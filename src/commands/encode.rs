//! `drapto encode -i <file|folder> -o <folder>`.

use super::{Session, find_work};
use crate::cli::EncodeArgs;
use crate::discover::{Discovery, Skip};
use crate::encode::chunked::remote::{Cluster, WorkerInfo};
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::summary::FIX_THEN_RUN;
use crate::tools::Tools;
use std::path::PathBuf;

/// Runs the batch; returns the exit code.
pub fn run(args: &EncodeArgs, session: &Session) -> Result<i32> {
    let settings = &session.loaded.settings;
    let (input, output_dir) = folders(args.input.as_ref(), args.output.as_ref(), settings)?;
    let work = find_work(&input, &output_dir, settings, args.dry_run)?;
    let tools = Tools::discover(&session.tool_paths(), &session.cancel);
    // A stop while the tools were asked is a stop, not a missing tool.
    session.cancel.check()?;
    let toolbox = tools.toolbox()?;
    if args.dry_run {
        temp_usable(&settings.temp_dir()).map_err(|why| unusable_temp(session, &why))?;
        for line in super::ignored_env(session) {
            eprintln!("drapto: warning: {line}");
        }
        // As the run would: 1 when a rip would fail or is not encoded now.
        return Ok(if super::dry_run::run(&work, &toolbox, session) { 0 } else { 1 });
    }
    // (Not in a dry run: it removed old logs and failed files' reports, and
    // trimmed the tracking, without a word.)
    prune_history(session);
    let ready = Ready::new(&tools, toolbox, &output_dir, session)?;
    let pipeline = ready.pipeline(session);
    let not_encoded = say_skipped(&work, &input, pipeline.events);
    let summary = pipeline.run_batch(&work.found, &output_dir, not_encoded);
    if let Some(signal) = session.cancel.signal() {
        return Ok(128 + signal);
    }
    Ok(if summary.succeeded() { 0 } else { 1 })
}

/// Says what discovery left out of `work` (under `input`) that a user
/// should hear of: a rip still being written, an unusable one, two rips
/// for one output. Returns the rips not encoded, each with why and what
/// to do, for the batch's summary.
fn say_skipped(
    work: &Discovery,
    input: &std::path::Path,
    events: &dyn crate::events::EventSink,
) -> Vec<(PathBuf, String)> {
    for (path, why) in &work.skipped {
        match why {
            Skip::BeingWritten(_) => events.emit(&crate::events::Event::Warning {
                input: Some(path.clone()),
                message: format!("{}: not encoded now: {why}; run again once it is finished", path.display()),
            }),
            // (Said as it happens, as the others: a JSON reader saw it in
            // the batch's summary alone.)
            why if why.is_unusable() || matches!(why, Skip::SameOutput { .. }) => {
                events.emit(&crate::events::Event::Warning {
                    input: Some(path.clone()),
                    message: format!("{}: not encoded: {why}", path.display()),
                })
            }
            _ => tracing::debug!("{}: skipped: {why}", path.display()),
        }
    }
    if !work.skipped.is_empty() {
        let n = work.skipped.len();
        tracing::info!("{n} file(s) under {} are not rips (drapto encode --dry-run says why)", input.display());
    }
    (work.skipped.iter())
        .filter(|(_, why)| why.is_rip_not_encoded())
        .map(|(path, why)| {
            let then = if matches!(why, Skip::BeingWritten(_)) { "run again once it is written" } else { FIX_THEN_RUN };
            (path.clone(), format!("{why}; {then}"))
        })
        .collect()
}

/// The input and the output folder: the flags, else the configured ones.
/// An output folder that is the input's (every output would overwrite its
/// rip) is refused once, here, not rip by rip.
pub(super) fn folders(
    input: Option<&PathBuf>,
    output: Option<&PathBuf>,
    settings: &crate::config::Settings,
) -> Result<(PathBuf, PathBuf)> {
    let input = input
        .cloned()
        .or_else(|| settings.paths.input_dir.clone())
        .ok_or_else(|| Error::Usage("-i: no input given: pass -i <file|folder> or set paths.input_dir".into()))?;
    let output = output
        .cloned()
        .or_else(|| settings.paths.output_dir.clone())
        .ok_or_else(|| Error::Usage("-o: no output folder given: pass -o <folder> or set paths.output_dir".into()))?;
    output_folder_usable(&output)?;
    let folder_of_input = if input.is_dir() {
        Some(input.as_path())
    } else {
        input.parent().map(|p| if p.as_os_str().is_empty() { std::path::Path::new(".") } else { p })
    };
    let same = |a: &std::path::Path, b: &std::path::Path| matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y);
    if folder_of_input.is_some_and(|f| same(f, &output)) {
        return Err(Error::Usage(format!(
            "-o {}: the output folder is the input's folder, where every output would overwrite its rip; choose another",
            output.display()
        )));
    }
    // Absolute: status, reports, tracking files, events and notifications
    // name outputs that mean the same from anywhere.
    let output = std::path::absolute(&output).map_err(Error::io("resolve", &output))?;
    Ok((input, output))
}

/// Whether `output` can be the output folder, as far as can be told
/// before anything is made: not a file (`-o film.mkv`), nor under a file or
/// a dangling link.
fn output_folder_usable(output: &std::path::Path) -> Result<()> {
    // `-o film.mkv` means a file to whoever wrote it: drapto would make a
    // folder of that name and put `film.mkv` in it.
    let mkv_named = output.extension().is_some_and(|e| e.eq_ignore_ascii_case("mkv"));
    if mkv_named && !output.is_dir() {
        return Err(Error::Usage(format!(
            "-o {}: -o names the output folder (each output is named for its rip); give a folder",
            output.display()
        )));
    }
    // What the run would find only when it makes the folder ("File
    // exists"), the dry run after promising to encode: the output folder,
    // or the nearest folder above it that is there (`~/NAS/Encodes` with
    // `~/NAS` a link to a share not mounted), a file or a dangling link.
    let there = output.ancestors().find(|a| !a.as_os_str().is_empty() && std::fs::symlink_metadata(a).is_ok());
    if let Some(at) = there {
        let shown = output.display();
        let which = if at == output { String::new() } else { format!("{} ", at.display()) };
        if std::fs::symlink_metadata(at).is_ok_and(|m| m.is_symlink()) && !at.exists() {
            let to = std::fs::read_link(at).map(|t| t.display().to_string()).unwrap_or_default();
            return Err(Error::Usage(format!(
                "-o {shown}: {which}is a link to {to}, which is not there (a share not mounted?)"
            )));
        }
        if !at.is_dir() {
            return Err(Error::Usage(format!("-o {shown}: {which}is a file, not a folder; give a folder")));
        }
    }
    Ok(())
}

/// A bounded history: old run logs and tracking entries go.
pub(super) fn prune_history(session: &Session) {
    let own = session.run_log.as_ref().map(|l| crate::report::log::lock(l).path().to_path_buf());
    let pruned = crate::report::retention::prune_configured(&session.loaded.settings, own.as_deref());
    if pruned.removed_files + pruned.dropped_entries > 0 {
        tracing::info!(
            "history: removed {} old log(s), {} freed; dropped {} old tracking entries",
            pruned.removed_files,
            crate::units::format_bytes(pruned.freed_bytes),
            pruned.dropped_entries
        );
    }
}

/// What a command that encodes holds once its tools are found and its
/// setup is checked ([`prepare`]): the programs, the hosts, and where its
/// events go.
pub(super) struct Ready {
    toolbox: crate::tools::Toolbox,
    cluster: Option<Cluster>,
    events: Box<dyn crate::events::EventSink>,
}

impl Ready {
    /// Checks the setup for writing to `output_dir` ([`prepare`]).
    pub(super) fn new(
        tools: &Tools,
        toolbox: crate::tools::Toolbox,
        output_dir: &std::path::Path,
        session: &Session,
    ) -> Result<Ready> {
        let events = session.events();
        let cluster = prepare(tools, &toolbox, output_dir, events.as_ref(), session)?;
        Ok(Ready { toolbox, cluster, events })
    }

    /// The pipeline that encodes with them.
    pub(super) fn pipeline<'a>(&'a self, session: &'a Session) -> Pipeline<'a> {
        Pipeline {
            settings: &session.loaded.settings,
            tools: &self.toolbox,
            cluster: self.cluster.as_ref(),
            events: self.events.as_ref(),
            cancel: &session.cancel,
        }
    }
}

/// Everything before the first file: the output folder writable, the
/// chunked path's tools checked, the hosts (if any) checked.
fn prepare(
    tools: &Tools,
    toolbox: &crate::tools::Toolbox,
    output_dir: &std::path::Path,
    events: &dyn crate::events::EventSink,
    session: &Session,
) -> Result<Option<Cluster>> {
    let settings = &session.loaded.settings;
    // Once, before any rip is analysed (each would fail on it in turn), and
    // before the output folder is made (a run refused for its settings
    // leaves nothing behind).
    // A temporary folder this user cannot make or write (a service's user
    // without a home) is a setting to change, said so (exit 3): it was a
    // rip's failure (exit 1), restarted by a service manager in a loop.
    let temp = settings.temp_dir();
    let made = std::fs::create_dir_all(&temp).map_err(Error::io("create temporary folder", &temp));
    if let Err(e) = made.and_then(|()| check_writable(&temp, "write to temporary folder")) {
        return Err(unusable_temp(session, &e.to_string()));
    }
    std::fs::create_dir_all(output_dir).map_err(Error::io("create output folder", output_dir))?;
    check_writable(output_dir, "write to output folder")?;
    if crate::platform::windows_names_only(output_dir) == Some("FAT") {
        events.emit(&crate::events::Event::Warning {
            input: None,
            message: format!(
                "{} is on a FAT drive, which holds no file over 4 GiB: a film whose encode is larger fails at the mux",
                output_dir.display()
            ),
        });
    }
    for note in &session.loaded.migration_notes {
        tracing::warn!("configuration file migrated: {note}");
    }
    tracing::info!("decoding: {}", crate::plan::decoding_said(settings, &toolbox.caps));
    let warn = |message: String| events.emit(&crate::events::Event::Warning { input: None, message });
    for line in super::ignored_env(session) {
        warn(line);
    }
    let chunked = settings.processing.enable_chunked_encoding;
    if chunked != crate::config::ChunkedMode::Off {
        match crate::plan::chunked_available(&toolbox.caps) {
            Ok(()) => {
                crf_unused(session, &warn);
                jobs_capped(session, &warn);
            }
            Err(e) if chunked == crate::config::ChunkedMode::On => return Err(e.into()),
            Err(e) => warn(format!("chunked encoding unavailable, using the standard path: {e}")),
        }
    }
    if tools.mediainfo_path().is_none() {
        tracing::warn!("mediainfo not found: Dolby Vision is detected from ffprobe side data only");
    }
    match &settings.distributed.hosts {
        None => Ok(None),
        Some(file) if chunked == crate::config::ChunkedMode::Off => {
            let f = file.display();
            warn(format!("hosts file {f} not used: chunked encoding is turned off, and only segments are shared"));
            Ok(None)
        }
        Some(_) => {
            let ffmpeg = tools.ffmpeg.as_ref().ok().map(|(l, _)| l.path.as_path());
            let mut c = Cluster::from_settings(&settings.distributed, ffmpeg)?;
            let mut warn = warn;
            c.keep_usable(&WorkerInfo::of(tools), &settings.temp_dir(), &session.cancel, &mut warn)?;
            Ok(Some(c))
        }
    }
}

/// Warns of the CRFs the user gave (flag, variable or file) where the
/// chunked path encodes: it chooses each segment's CRF for the VMAF target,
/// and `--crf 10` gave CRF 17.75 without a word.
fn crf_unused(session: &Session, warn: &dyn Fn(String)) {
    let origins = &session.loaded.origins;
    let given: Vec<String> = ["encoding.crf.sd", "encoding.crf.hd", "encoding.crf.uhd"]
        .into_iter()
        .filter_map(|key| match origins.of(key) {
            crate::origin::Origin::Default => None,
            origin => Some(format!("{key} ({origin})")),
        })
        .collect();
    if !given.is_empty() {
        let target = session.loaded.settings.encoding.vmaf_target;
        warn(format!(
            "the CRFs given ({}) are the standard path's; the chunked path chooses each segment's CRF for \
             VMAF {target} (add --no-chunked to encode at the CRF given)",
            given.join(", ")
        ));
    }
}

/// Warns when the workers asked for (`processing.parallel_jobs`) are more
/// than the CPU share holds: the chunked path runs as many as it holds, and
/// said nothing of it.
fn jobs_capped(session: &Session, warn: &dyn Fn(String)) {
    let settings = &session.loaded.settings;
    let crate::config::Auto::Value(asked) = settings.processing.parallel_jobs else { return };
    let share = crate::plan::cpu_share(settings);
    if asked as usize > share {
        let origin = session.loaded.origins.of("processing.parallel_jobs");
        let cores = crate::plan::cores();
        warn(format!(
            "processing.parallel_jobs is {asked} ({origin}) but the CPU share is {share} (resources.max_cpu {}% of {cores} cores): the chunked path runs {share} workers at a time",
            settings.resources.max_cpu
        ));
    }
}

/// The configuration error of a temporary folder this user cannot make
/// or write (`why`).
fn unusable_temp(session: &Session, why: &str) -> Error {
    let message =
        format!("processing.temp_dir: {why}; set DRAPTO_TEMP_DIR (or --temp-dir) to a folder this user can write");
    let origin = session.loaded.origins.of("processing.temp_dir");
    Error::Config(crate::error::ConfigError { origin, message })
}

/// For `--dry-run`, which makes nothing: whether the temporary folder, or
/// the nearest folder above it that is there, is a folder this user may
/// write to (the run would stop on it, exit 3, after the dry run said all
/// was well).
fn temp_usable(temp: &std::path::Path) -> std::result::Result<(), String> {
    use nix::unistd::{AccessFlags, access};
    let Some(there) = temp.ancestors().find(|a| std::fs::symlink_metadata(a).is_ok()) else { return Ok(()) };
    if !there.is_dir() {
        return Err(format!("{}: cannot create temporary folder: {} is not a folder", temp.display(), there.display()));
    }
    access(there, AccessFlags::W_OK | AccessFlags::X_OK)
        .map_err(|e| format!("{}: cannot write to temporary folder: {}", there.display(), e.desc()))
}

fn check_writable(dir: &std::path::Path, action: &'static str) -> Result<()> {
    let probe = dir.join(format!(".drapto-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(Error::io(action, dir))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
