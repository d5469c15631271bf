//! `drapto segment-worker JOB` (hidden): encodes one segment job of a
//! distributed run on the host GNU Parallel chose, in the folder it prepared.
//! Probe records go to stdout as JSON lines; the encoded segment and its
//! [`SegmentResult`](crate::encode::chunked::SegmentResult) are written where
//! the job says, for GNU Parallel to bring back.
//!
//! `drapto segment-worker --info` prints this host's versions and
//! capabilities (used by `doctor --hosts` and before a distributed run).

use super::Session;
use crate::cli::WorkerArgs;
use crate::encode::chunked::remote::{self, JOB_VERSION, RemoteJob, WorkerInfo};
use crate::encode::chunked::run_segment;
use crate::error::{Error, ProcessFailure, Result, ToolError};
use crate::tools::{Tools, ffmpeg_fix};
use std::io::Write;

/// Runs the job; exit code 0 when the segment and its result are written.
pub fn run(args: &WorkerArgs, session: &Session) -> Result<i32> {
    let tools = Tools::discover(&session.tool_paths(), &session.cancel);
    // A stop while the tools were asked is a stop, not a missing tool.
    session.cancel.check()?;
    let info = WorkerInfo::of(&tools);
    if args.info {
        println!("{}", serde_json::to_string(&info).expect("info serializes"));
        return Ok(0);
    }
    // The job dies with whatever started it (a lost ssh connection, a
    // stopped GNU Parallel): no encoder keeps running for nobody.
    crate::guard::stop_with_parent(&session.cancel);
    let Some(path) = args.job.as_deref() else { return Err(Error::Usage("segment-worker needs a JOB file".into())) };
    let text = std::fs::read_to_string(path).map_err(Error::io("read job", path))?;
    let job: RemoteJob = serde_json::from_str(&text)
        .map_err(|e| Error::Input { path: path.to_path_buf(), problem: format!("not a drapto segment job: {e}") })?;
    if job.version != JOB_VERSION {
        return Err(Error::Input {
            path: path.to_path_buf(),
            problem: format!(
                "job layout {} (this drapto reads {JOB_VERSION}); install the same drapto everywhere",
                job.version
            ),
        });
    }
    if let Some(problem) = &info.problem {
        return Err(ToolError { tool: "ffmpeg".into(), problem: problem.clone(), fix: ffmpeg_fix() }.into());
    }
    let ffmpeg = info.ffmpeg.clone().expect("no problem means ffmpeg was found");
    let j = &job.job;
    std::fs::create_dir_all(&j.scratch).map_err(Error::io("create folder", &j.scratch))?;
    if let Some(parent) = j.output.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("create folder", parent))?;
    }
    let report = |r: crate::encode::chunked::Report| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", remote::report_line(&r));
        let _ = out.flush();
    };
    let threads = || j.params.threads_per_worker;
    let result = run_segment(&ffmpeg, j, &job.timeline, &session.cancel, &threads, &report);
    if let Err(ProcessFailure::Failed(f)) = &result
        && f.is_damaged_source()
    {
        println!("{}", remote::damaged_line(j.segment.index, &f.status.to_string()));
    }
    let _ = std::fs::remove_dir_all(&j.scratch);
    let host = std::env::var("PARALLEL_SSHLOGIN").ok();
    if result.is_err() && host.as_deref() != Some(":") {
        // On another host a failed job's folder is nobody's: GNU Parallel
        // cleans up after success only. (Here, on the coordinating machine,
        // the job's files are the coordinator's, kept for a retry elsewhere.)
        for f in [j.source.as_path(), path, j.output.as_path()] {
            if f.is_relative() {
                let _ = std::fs::remove_file(f);
            }
        }
        if let Some(dir) = path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    let mut result = result.map_err(Error::process(&j.source))?;
    result.host = host;
    crate::job::state::write_atomic(&job.result, &result)?;
    Ok(0)
}
