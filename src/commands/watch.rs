//! `drapto watch -i LIBRARY -o OUT`: encodes what the library holds, then
//! each new or replaced rip once it is complete, until stopped. The queue
//! ([`crate::watch::Queue`]) survives restarts; file-system events wake the
//! loop, and it looks at the whole library every `watch.poll` seconds
//! anyway (network shares send no events).

use super::Session;
use super::encode::{Ready, folders, prune_history};
use crate::cli::WatchArgs;
use crate::discover::{Filters, Found, discover};
use crate::error::Result;
use crate::events::{Event, EventSink};
use crate::pipeline::{Ended, Pipeline};
use crate::summary::BatchSummary;
use crate::tools::Tools;
use crate::watch::{Queue, State, now};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs the service; returns the exit code.
pub fn run(args: &WatchArgs, session: &Session) -> Result<i32> {
    let settings = &session.loaded.settings;
    let (library, output) = folders(args.input.as_ref(), args.output.as_ref(), settings)?;
    let library = std::path::absolute(&library).map_err(crate::Error::io("resolve", &library))?;
    let filters = Filters::of_settings(settings)?;
    prune_history(session);
    let tools = Tools::discover(&session.tool_paths(), &session.cancel);
    // A stop while the tools were asked is a stop, not a missing tool.
    session.cancel.check()?;
    let toolbox = tools.toolbox()?;
    let ready = Ready::new(&tools, toolbox, &output, session)?;
    let pipeline = ready.pipeline(session);
    let events = pipeline.events;
    let settle = Duration::from_secs(settings.watch.settle.into());
    tracing::info!(
        "watching {} -> {} (settle {} s, look every {} s)",
        library.display(),
        output.display(),
        settings.watch.settle,
        settings.watch.poll
    );
    let fingerprint = crate::watch::settings_fingerprint(settings);
    let warn = |message| events.emit(&crate::events::Event::Warning { input: None, message });
    let mut queue = Queue::open(&settings.temp_dir(), &library, &output, settle, &fingerprint, warn);
    let (wake, woken) = mpsc::channel::<()>();
    let _watcher = watch_events(&library, wake, events);
    let mut service = Service { pipeline: &pipeline, settings: fingerprint, events, summary: BatchSummary::default() };
    sweep_work(settings, &service);
    let mut breaker = crate::breaker::Breaker::new(Duration::from_secs(settings.processing.breaker_reset.into()));
    let mut shown = (Vec::new(), Vec::new());
    let mut sight = Sight::default();
    while !session.cancel.is_cancelled() {
        let found = service.look(&mut sight, &library, &output, &filters);
        service.tell(&queue.observe(&found, now()));
        let waiting = queue.ready(now());
        service.save(&mut queue, &mut sight);
        service.show_queue(&queue, &waiting, &mut shown);
        // (A waiting rip may be out of sight: its folder unmounted.)
        if let Some(job) = waiting.iter().find_map(|p| found.iter().find(|f| &f.input == p)) {
            if !pipeline.breaker_allows(&mut breaker, waiting.len()) {
                // What was done and what is left go out before the watch
                // stops (the notification a user away from it sees).
                service.summary.not_started = waiting.clone();
                service.idle();
                return Ok(session.cancel.signal().map_or(1, |s| 128 + s));
            }
            let state = service.encode(job, &mut breaker, waiting.len());
            if session.cancel.is_cancelled() {
                break;
            }
            queue.finished(&job.input, state);
            service.save(&mut queue, &mut sight);
            // Weeks in charge: the history (a run log each day, failed
            // files' reports) is kept to its bounds as it grows, and the
            // work of rips deleted or replaced since it was left goes.
            prune_history(session);
            sweep_work(settings, &service);
            continue;
        }
        service.idle();
        let wait = queue.next_settled(now()).unwrap_or(u64::MAX).min(settings.watch.poll.into());
        sleep_until_woken(&woken, Duration::from_secs(wait), &session.cancel);
    }
    service.stopped(&queue);
    Ok(session.cancel.signal().map_or(0, |s| 128 + s))
}

/// The watch loop's view of the pipeline.
struct Service<'a> {
    pipeline: &'a Pipeline<'a>,
    /// The settings' fingerprint, recorded with each failure.
    settings: String,
    events: &'a dyn EventSink,
    /// What was done since the queue last ran empty.
    summary: BatchSummary,
}

/// What the watch has said of the library's files it cannot read or name
/// (a broken link, a folder without permission, a name its records cannot
/// hold), and whether the library could not be read last time: each said once.
#[derive(Default)]
struct Sight {
    said: std::collections::HashSet<std::path::PathBuf>,
    unreadable: bool,
    /// The queue could not be saved last time (a full disk).
    unsaved: bool,
}

impl Service<'_> {
    fn warn(&self, message: String) {
        self.events.emit(&Event::Warning { input: None, message });
    }

    /// Saves the queue. A failure (its disk full) is said once until a
    /// save works again, and the watch goes on: the queue stays in memory,
    /// and what it records the outputs' records and the work folders hold
    /// too (a watch that stopped on a full disk left the other rips alone).
    fn save(&self, queue: &mut Queue, sight: &mut Sight) {
        match queue.save() {
            Ok(()) => sight.unsaved = false,
            Err(e) if !std::mem::replace(&mut sight.unsaved, true) => {
                self.warn(format!("the watch's queue could not be saved ({e}); it is kept in memory"));
            }
            Err(_) => {}
        }
    }

    /// The rips the library holds now; none while it cannot be read (the
    /// queue stays as it is until the library is back).
    fn look(&self, sight: &mut Sight, library: &Path, output: &Path, filters: &Filters) -> Vec<Found> {
        match discover(library, output, filters) {
            Ok(d) => {
                for (path, why) in d.skipped.into_iter().filter(|(_, w)| w.is_unusable()) {
                    if sight.said.insert(path.clone()) {
                        self.warn(format!("{}: not encoded: {why}", path.display()));
                    }
                }
                sight.unreadable = false;
                d.found
            }
            Err(e) => {
                if !std::mem::replace(&mut sight.unreadable, true) {
                    self.warn(format!("the library cannot be read ({e}); looking again later"));
                }
                Vec::new()
            }
        }
    }

    /// Says what a look at the library changed in the queue.
    fn tell(&self, changes: &crate::watch::Changes) {
        for p in &changes.gone {
            self.warn(format!("{}: deleted or renamed; dropped from the queue", p.display()));
        }
        for p in &changes.output_gone {
            self.warn(format!("{}: its output is gone; encoding it again", p.display()));
        }
        for p in &changes.unblocked {
            self.warn(format!("{}: the file under its output's name is gone; encoding it", p.display()));
        }
    }

    /// Encodes `job`, the first of `waiting`; returns how it ended.
    fn encode(&mut self, job: &Found, breaker: &mut crate::breaker::Breaker, waiting: usize) -> State {
        let failed = self.summary.failed.len();
        let index = self.summary.files.len() + self.summary.skipped.len() + failed + 1;
        match self.pipeline.run_one(job, index, index + waiting - 1, breaker, &mut self.summary) {
            Ended::Failed { error, setup, blocked } => {
                State::Failed { error, setup: Some(setup), blocked, settings: Some(self.settings.clone()) }
            }
            Ended::Encoded => State::Encoded,
            Ended::Skipped if job.output.exists() => State::Encoded,
            Ended::Skipped => State::Skipped,
            // Another drapto has it: looked at again once it settles anew.
            Ended::Busy => State::Settling,
            // Stopped with the watch: its turn comes again when it restarts.
            Ended::Interrupted => State::Waiting,
        }
    }

    /// The queue ran empty, or the watch stops: when anything was done
    /// since the summary last went out, it goes out (and the "all done"
    /// notification with it; an interrupted file counts).
    fn idle(&mut self) {
        let s = &mut self.summary;
        let nothing = [s.files.is_empty(), s.failed.is_empty(), s.skipped.is_empty(), s.interrupted.is_empty()];
        if nothing.iter().all(|n| *n) && s.not_started.is_empty() {
            // Rips another drapto had, looked at again later: no news.
            s.not_encoded.clear();
            return;
        }
        self.send_summary();
    }

    /// The watch stops: the summary goes out, idle or not, with the rips
    /// its queue still held as not started (a watch stopped while idle said
    /// nothing, and one stopped mid-encode did not say what it left).
    fn stopped(&mut self, queue: &Queue) {
        let left = queue.file.files.iter().filter(|(_, e)| matches!(e.state, State::Waiting | State::Settling));
        let interrupted = self.summary.interrupted.clone();
        let left: Vec<_> = left.map(|(p, _)| p.clone()).filter(|p| !interrupted.contains(p)).collect();
        self.summary.not_started.extend(left);
        self.summary.stopped = true;
        self.send_summary();
    }

    /// Sends what was done since the last summary, and starts a new one: a
    /// rip looked at more than once while another drapto had it is listed
    /// once; the time is the encodes' (never -0.0).
    fn send_summary(&mut self) {
        let mut done = std::mem::take(&mut self.summary);
        let mut seen = std::collections::HashSet::new();
        done.not_encoded.retain(|(path, _)| seen.insert(path.clone()));
        done.finish(done.files.iter().map(|f| f.encode_seconds).sum::<f64>() + 0.0);
        self.events.emit(&Event::BatchComplete { summary: done });
    }

    /// Tells the user about the queue when it changed.
    fn show_queue(
        &self,
        queue: &Queue,
        waiting: &[std::path::PathBuf],
        shown: &mut (Vec<std::path::PathBuf>, Vec<std::path::PathBuf>),
    ) {
        let settling: Vec<_> =
            queue.file.files.iter().filter(|(_, e)| e.state == State::Settling).map(|(p, _)| p.clone()).collect();
        if (waiting, &settling[..]) != (&shown.0[..], &shown.1[..]) {
            *shown = (waiting.to_vec(), settling.clone());
            self.events.emit(&Event::Queue { waiting: waiting.to_vec(), settling });
        }
    }
}

/// Removes the work folders nobody needs any more (their rip deleted or
/// replaced since; see `drapto clean`), saying what that freed.
fn sweep_work(settings: &crate::config::Settings, service: &Service) {
    match super::clean::sweep(&settings.temp_dir(), super::clean::Sweep::Automatic) {
        Ok(swept) => {
            for (dir, bytes) in swept.removed {
                tracing::info!("removed abandoned work {} ({})", dir.display(), crate::units::format_bytes(bytes));
            }
        }
        Err(e) => service.warn(format!("abandoned work not removed: {e}")),
    }
}

/// File-system events under `library` wake the loop; where the system
/// sends none (or the watch cannot start), only the regular look remains.
fn watch_events(library: &Path, wake: mpsc::Sender<()>, events: &dyn EventSink) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
        let _ = wake.send(());
    });
    match watcher.and_then(|mut w| w.watch(library, notify::RecursiveMode::Recursive).map(|()| w)) {
        Ok(w) => Some(w),
        Err(e) => {
            let message = format!(
                "no file-system events from {} ({e}): looking at it every watch.poll seconds",
                library.display()
            );
            events.emit(&Event::Warning { input: None, message });
            None
        }
    }
}

/// Sleeps `wait`, or until a file-system event (plus a second for the
/// burst it belongs to), or until the run is stopped.
fn sleep_until_woken(woken: &mpsc::Receiver<()>, wait: Duration, cancel: &crate::cancel::Cancel) {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline && !cancel.is_cancelled() {
        if woken.recv_timeout(Duration::from_millis(200)).is_ok() {
            std::thread::sleep(Duration::from_secs(1));
            while woken.try_recv().is_ok() {}
            return;
        }
    }
}
