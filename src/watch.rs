//! The watched library's queue: every rip seen, whether it is still
//! settling (its size and time changed less than `watch.settle` ago, or a
//! writer holds it open), waiting its turn, encoded, or failed. Kept in a
//! file of its own under the temporary folder and written at every change,
//! so that a restart (after a crash, a SIGKILL, a reboot) continues where
//! the queue was: nothing finished is encoded again, and a failed rip is
//! tried again only once it changes.

use crate::discover::Found;
use crate::error::Result;
use crate::job::state::{self, STATE_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many starts of a watch in a row try again a rip whose failure
/// pointed at the setup.
pub const SETUP_RETRIES: u32 = 3;

/// Where a rip stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Seen changing recently, or still open for writing.
    Settling,
    /// Complete; waiting its turn.
    Waiting,
    Encoded,
    /// Not encoded, with no output of its own (drapto's own encode in the
    /// library): looked at again once the file changes. (Filed as encoded,
    /// its output was missed at once, and the watch took it again in a
    /// loop.)
    Skipped,
    /// Failed; tried again once the file changes, or, when the failure
    /// pointed at the setup (`setup`: a tool crashing, a disk full; see
    /// [`crate::error::Error::is_environmental`]), when the watch starts
    /// again (the setup fixed).
    Failed {
        error: String,
        /// Whether it pointed at the setup; unknown (`None`) in a queue
        /// written before drapto told.
        #[serde(default)]
        setup: Option<bool>,
        /// The output's name was taken (a file drapto did not make, another
        /// rip's encode): tried again once that file is gone.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        blocked: bool,
        /// The fingerprint of the settings it failed under
        /// ([`settings_fingerprint`]): tried again when a watch starts
        /// with others (`--allow-truncated`, `--on-loss warn`, a larger
        /// `max_output_ratio`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        settings: Option<String>,
    },
}

/// A fingerprint of every setting, which decides how a rip fails as well
/// as what its output is.
pub fn settings_fingerprint(settings: &crate::config::Settings) -> String {
    crate::hash::fingerprint(&serde_json::to_value(settings).unwrap_or_default())
}

/// One rip of the library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub size: u64,
    pub mtime_ns: u128,
    /// When this size and time were first seen (seconds since the epoch).
    pub since: u64,
    /// Its failures in a row that pointed at the setup (see
    /// [`Queue::open`]).
    #[serde(default)]
    pub setup_failures: u32,
    /// Since when its folder is out of sight (seconds since the epoch):
    /// a share not mounted keeps its rips, a folder renamed for good lets
    /// them go after [`OUT_OF_SIGHT_GRACE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_sight: Option<u64>,
    #[serde(flatten)]
    pub state: State,
}

/// How long a rip whose folder is out of sight stays in the queue.
pub const OUT_OF_SIGHT_GRACE: u64 = 24 * 3600;

/// The queue file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueFile {
    pub version: u32,
    /// Which library into which output folder (the state's fingerprint).
    pub fingerprint: String,
    pub library: PathBuf,
    pub output: PathBuf,
    pub updated_at: String,
    pub files: BTreeMap<PathBuf, Entry>,
}

/// The queue of one library, and its file.
#[derive(Debug)]
pub struct Queue {
    path: PathBuf,
    settle: Duration,
    pub file: QueueFile,
    /// The rips as last written down (the file is written again only when
    /// they change: a library's queue is hundreds of kilobytes, and the
    /// watch looks every minute for weeks).
    saved: Option<BTreeMap<PathBuf, Entry>>,
    /// Whether this watch has looked at the library yet (see
    /// [`Queue::observe`]).
    looked: bool,
}

/// What a look at the library changed, for the log.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Rips gone from a folder that is there: dropped from the queue.
    pub gone: Vec<PathBuf>,
    /// Encoded rips whose output is gone: encoded again.
    pub output_gone: Vec<PathBuf>,
    /// Rips blocked by a file under their output's name, which is gone.
    pub unblocked: Vec<PathBuf>,
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The queue files live here.
pub fn folder(temp_dir: &Path) -> PathBuf {
    temp_dir.join("watch")
}

fn identity(path: &Path) -> Option<(u64, u128)> {
    let m = std::fs::metadata(path).ok()?;
    let mtime = m.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
    Some((m.len(), mtime))
}

impl Queue {
    /// The queue of `library` into `output`, as a run before left it (a
    /// missing file: empty; an unreadable one too, said through `warn`),
    /// with `settings` (see [`settings_fingerprint`]).
    pub fn open(
        temp_dir: &Path,
        library: &Path,
        output: &Path,
        settle: Duration,
        settings: &str,
        warn: impl Fn(String),
    ) -> Queue {
        let key = serde_json::json!({"library": library, "output": output});
        let fingerprint = crate::hash::fingerprint(&key);
        let path = folder(temp_dir).join(format!("{fingerprint}.json"));
        let file = state::load::<QueueFile>(&path, &fingerprint).unwrap_or_else(|why| {
            if !matches!(why, state::LoadError::Missing) {
                warn(format!("the watch's queue was not used ({why}); it starts afresh"));
            }
            QueueFile {
                version: STATE_VERSION,
                fingerprint,
                library: library.to_path_buf(),
                output: output.to_path_buf(),
                updated_at: state::now(),
                files: BTreeMap::new(),
            }
        });
        let mut queue = Queue { path, settle, file, saved: None, looked: false };
        queue.retry_failures(settings);
        queue
    }

    /// Rips that failed for a reason that pointed at the setup wait their
    /// turn again: the setup may be fixed now (a watch stops when its
    /// breaker trips, and the README says to fix the setup and start it
    /// again), up to [`SETUP_RETRIES`] starts in a row (a service manager
    /// restarting a watch whose setup stays broken would try them for
    /// ever). A queue written before drapto told the two apart gives its
    /// failures one more try. A rip's own failure waits for the rip to
    /// change, or for other settings (`settings`) to decide it.
    fn retry_failures(&mut self, settings: &str) {
        for e in self.file.files.values_mut() {
            let retry = match &e.state {
                State::Failed { setup: Some(true), .. } => e.setup_failures <= SETUP_RETRIES,
                State::Failed { setup: None, .. } => true,
                State::Failed { settings: Some(was), .. } => was != settings,
                _ => false,
            };
            if retry {
                e.state = State::Waiting;
            }
        }
    }

    /// Writes the queue down, unless it is as it was last written.
    pub fn save(&mut self) -> Result<()> {
        if self.saved.as_ref() == Some(&self.file.files) {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(crate::Error::io("create folder", dir))?;
        }
        self.file.updated_at = state::now();
        state::write_atomic(&self.path, &self.file)?;
        self.saved = Some(self.file.files.clone());
        Ok(())
    }

    /// Takes in what a look at the library `found` at `now`: a new rip, or
    /// one whose size or time changed (a replaced rip, a failed one that
    /// was fixed), settles anew; an encoded one whose output is gone, or a
    /// blocked one whose output's name is free again, waits its turn; one
    /// that is gone from a folder that is there leaves the queue. A look
    /// that found nothing at all (a share not mounted) changes nothing.
    pub fn observe(&mut self, found: &[Found], now: u64) -> Changes {
        let mut changes = Changes::default();
        if found.is_empty() {
            return changes;
        }
        let seen: BTreeMap<&Path, &Found> = found.iter().map(|f| (f.input.as_path(), f)).collect();
        for (p, e) in self.file.files.iter_mut() {
            let in_sight = seen.contains_key(p.as_path()) || p.parent().is_some_and(Path::is_dir);
            e.out_of_sight = if in_sight { None } else { Some(e.out_of_sight.unwrap_or(now)) };
        }
        let gone = |p: &Path, e: &Entry| match e.out_of_sight {
            Some(t) => now.saturating_sub(t) >= OUT_OF_SIGHT_GRACE,
            None => !seen.contains_key(p),
        };
        changes.gone = self.file.files.iter().filter(|(p, e)| gone(p, e)).map(|(p, _)| p.clone()).collect();
        for p in &changes.gone {
            self.file.files.remove(p);
        }
        let first_look = !std::mem::replace(&mut self.looked, true);
        for f in found {
            let Some((size, mtime_ns)) = identity(&f.input) else { continue };
            match self.file.files.get_mut(&f.input) {
                Some(e) if e.size == size && e.mtime_ns == mtime_ns => {
                    let free = || !f.output.exists();
                    match e.state {
                        State::Encoded if free() => changes.output_gone.push(f.input.clone()),
                        State::Failed { blocked: true, .. } if free() => changes.unblocked.push(f.input.clone()),
                        _ => continue,
                    }
                    e.state = State::Waiting;
                }
                _ => {
                    // A rip there, unchanged since its modification time,
                    // when the watch starts is ready at once; a change seen
                    // later settles from when it was seen (a copy may keep
                    // an old time while its data still arrives).
                    let since = if first_look { now.min(mtime_ns.div_ceil(1_000_000_000) as u64) } else { now };
                    let e =
                        Entry { size, mtime_ns, since, setup_failures: 0, out_of_sight: None, state: State::Settling };
                    self.file.files.insert(f.input.clone(), e);
                }
            }
        }
        changes
    }

    /// Rips that settled by `now` (unchanged for the settle time, and no
    /// writer holding them open where the system tells) join the waiting
    /// ones; returns every waiting rip, oldest change first.
    pub fn ready(&mut self, now: u64) -> Vec<PathBuf> {
        let settle = self.settle.as_secs();
        // Whole seconds: strictly more, so never early.
        let quiet: Vec<PathBuf> = (self.file.files.iter())
            .filter(|(_, e)| e.state == State::Settling && now.saturating_sub(e.since) > settle)
            .map(|(p, _)| p.clone())
            .collect();
        let written = crate::platform::writers_of_all(&quiet.iter().map(PathBuf::as_path).collect::<Vec<_>>())
            .unwrap_or_default();
        for path in quiet.iter().filter(|p| !written.contains_key(*p)) {
            if let Some(e) = self.file.files.get_mut(path) {
                e.state = State::Waiting;
            }
        }
        let mut waiting: Vec<(&PathBuf, &Entry)> =
            self.file.files.iter().filter(|(_, e)| e.state == State::Waiting).collect();
        waiting.sort_by_key(|(p, e)| (e.since, (*p).clone()));
        waiting.into_iter().map(|(p, _)| p.clone()).collect()
    }

    /// Seconds until the next settling rip may be ready (`None`: none settles).
    pub fn next_settled(&self, now: u64) -> Option<u64> {
        let settle = self.settle.as_secs();
        self.file
            .files
            .values()
            .filter(|e| e.state == State::Settling)
            .map(|e| (e.since + settle + 1).saturating_sub(now).max(1))
            .min()
    }

    /// Records how `path` ended (unless it changed meanwhile: then it
    /// settles anew). Ended as settling (another drapto had it), it settles
    /// from now: looked at again after the settle time, not at once.
    pub fn finished(&mut self, path: &Path, state: State) {
        let current = identity(path);
        if let Some(e) = self.file.files.get_mut(path) {
            if state == State::Settling {
                e.since = now();
            }
            if current == Some((e.size, e.mtime_ns)) {
                let setup = matches!(state, State::Failed { setup: Some(true), .. });
                e.setup_failures = if setup { e.setup_failures + 1 } else { 0 };
                e.state = state;
            } else {
                e.state = State::Settling;
            }
        }
    }

    /// How many rips settle and wait.
    pub fn counts(&self) -> (usize, usize) {
        let of = |s: &State| self.file.files.values().filter(|e| &e.state == s).count();
        (of(&State::Settling), of(&State::Waiting))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(p: &Path) -> Found {
        Found {
            input: p.to_path_buf(),
            output: PathBuf::from("/o").join(p.file_name().unwrap()),
            root: PathBuf::from("/o"),
            sidecars: vec![],
            alone: false,
        }
    }

    /// A queue of one rip, `a.mkv` in a new folder, that settles for
    /// `settle` seconds.
    fn one_rip(settle: u64) -> (tempfile::TempDir, PathBuf, Queue) {
        let t = tempfile::tempdir().unwrap();
        let rip = t.path().join("a.mkv");
        std::fs::write(&rip, b"12345").unwrap();
        let q = Queue::open(t.path(), t.path(), Path::new("/o"), Duration::from_secs(settle), "s", |_| {});
        (t, rip, q)
    }

    #[test]
    fn a_failure_that_pointed_at_the_setup_waits_again_when_the_watch_restarts() {
        let t = tempfile::tempdir().unwrap();
        let (setup, own) = (t.path().join("a.mkv"), t.path().join("b.mkv"));
        for rip in [&setup, &own] {
            std::fs::write(rip, b"12345").unwrap();
        }
        let mut q = Queue::open(t.path(), t.path(), Path::new("/o"), Duration::from_secs(0), "s", |_| {});
        let at = now();
        q.observe(&[found(&setup), found(&own)], at);
        assert_eq!(q.ready(at + 1).len(), 2);
        q.finished(
            &own,
            State::Failed {
                error: "not a readable media file".into(),
                setup: Some(false),
                blocked: false,
                settings: Some("s".into()),
            },
        );
        let crash = || State::Failed {
            error: "ffmpeg killed by signal 11".into(),
            setup: Some(true),
            blocked: false,
            settings: None,
        };
        // The watch starts again (the setup fixed, or not): the crash is
        // retried, a few starts in a row; the rip's own failure waits for
        // the rip to change.
        for start in 0..=SETUP_RETRIES {
            q.finished(&setup, crash());
            q.save().unwrap();
            q = Queue::open(t.path(), t.path(), Path::new("/o"), Duration::from_secs(0), "s", |_| {});
            q.observe(&[found(&setup), found(&own)], at + 2);
            let expected = if start < SETUP_RETRIES { vec![setup.clone()] } else { vec![] };
            assert_eq!(q.ready(at + 3), expected, "start {start}");
        }
        // A queue written before drapto told the two apart: one more try.
        let old = r#"{"state": "failed", "error": "ffmpeg killed by signal 11"}"#;
        let e: State = serde_json::from_str(old).unwrap();
        assert_eq!(
            e,
            State::Failed { error: "ffmpeg killed by signal 11".into(), setup: None, blocked: false, settings: None }
        );
    }

    #[test]
    fn a_rip_another_drapto_has_waits_its_settle_time_again() {
        let (_t, rip, mut q) = one_rip(60);
        let at = now();
        q.observe(&[found(&rip)], at);
        assert_eq!(q.ready(at + 61), vec![rip.clone()]);
        q.finished(&rip, State::Settling);
        let again = now();
        assert!(q.ready(again + 30).is_empty(), "not taken again at once");
        assert_eq!(q.ready(again + 61), vec![rip.clone()], "nor left for done");
    }

    #[test]
    fn the_queue_is_written_again_only_when_it_changed() {
        let (_t, rip, mut q) = one_rip(0);
        let at = now();
        q.observe(&[found(&rip)], at);
        q.save().unwrap();
        std::fs::remove_file(&q.path).unwrap();
        // Looks that change nothing write nothing.
        q.observe(&[found(&rip)], at + 5);
        q.save().unwrap();
        assert!(!q.path.exists());
        assert_eq!(q.ready(at + 6), vec![rip.clone()]);
        q.save().unwrap();
        let written: QueueFile = serde_json::from_slice(&std::fs::read(&q.path).unwrap()).unwrap();
        assert_eq!(written.files[&rip].state, State::Waiting);
    }

    #[test]
    fn a_rip_waits_once_it_settled_and_a_failure_waits_for_a_change() {
        let (t, rip, mut q) = one_rip(60);
        let at = now();
        q.observe(&[found(&rip)], at);
        let ready_at = |d| at + d;
        assert!(q.ready(ready_at(30)).is_empty(), "still settling");
        assert_eq!(q.next_settled(ready_at(30)), Some(31));
        assert_eq!(q.ready(ready_at(61)), vec![rip.clone()]);
        q.finished(
            &rip,
            State::Failed { error: "bad".into(), setup: Some(false), blocked: false, settings: Some("s".into()) },
        );
        q.save().unwrap();

        // A restart continues the queue: the failure is not retried...
        let said = std::cell::RefCell::new(Vec::new());
        let warn = |m: String| said.borrow_mut().push(m);
        let mut q = Queue::open(t.path(), t.path(), Path::new("/o"), Duration::from_secs(60), "s", warn);
        assert!(said.borrow().is_empty(), "{said:?}");
        q.observe(&[found(&rip)], ready_at(100));
        assert!(q.ready(ready_at(1000)).is_empty());
        // ...until the file changes.
        std::fs::write(&rip, b"123456").unwrap();
        let changed = now();
        q.observe(&[found(&rip)], changed);
        assert_eq!(q.counts(), (1, 0));
        assert_eq!(q.ready(changed + 100), vec![rip.clone()]);
        // A rip that was there, unchanged, long before is ready at once.
        let mut q2 =
            Queue::open(&t.path().join("other"), t.path(), Path::new("/o"), Duration::from_secs(60), "s", |_| {});
        q2.observe(&[found(&rip)], changed + 1000);
        assert_eq!(q2.ready(changed + 1000), vec![rip.clone()]);
        // A rip that is gone from its folder leaves the queue.
        let other = t.path().join("b.mkv");
        std::fs::write(&other, b"1").unwrap();
        std::fs::remove_file(&rip).unwrap();
        assert_eq!(q.observe(&[found(&other)], changed + 200).gone, vec![rip]);
        assert_eq!(q.file.files.len(), 1);
        // A queue cut short (a full disk) starts afresh, said.
        q.save().unwrap();
        let text = std::fs::read(&q.path).unwrap();
        std::fs::write(&q.path, &text[..text.len() / 2]).unwrap();
        Queue::open(t.path(), t.path(), Path::new("/o"), Duration::from_secs(60), "s", warn);
        let said = said.borrow();
        assert!(said.len() == 1 && said[0].contains("queue was not used (unreadable: "), "{said:?}");
    }

    #[test]
    fn a_library_out_of_sight_keeps_its_queue() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("A/a.mkv"), t.path().join("b.mkv"));
        std::fs::create_dir_all(t.path().join("A")).unwrap();
        for rip in [&a, &b] {
            std::fs::write(rip, b"12345").unwrap();
        }
        let mut q = Queue::open(t.path(), t.path(), Path::new("/o"), Duration::from_secs(0), "s", |_| {});
        let at = now();
        q.observe(&[found(&a), found(&b)], at);
        q.finished(&a, State::Encoded);
        q.finished(&b, State::Failed { error: "bad".into(), setup: Some(false), blocked: false, settings: None });
        let before = q.file.files.clone();
        // A share not mounted: an empty look changes nothing.
        assert_eq!(q.observe(&[], at + 1), Changes::default());
        // A folder out of sight (its rips not found, the folder gone) keeps
        // its rips and their verdicts.
        std::fs::rename(t.path().join("A"), t.path().join("A.off")).unwrap();
        assert_eq!(q.observe(&[found(&b)], at + 2), Changes::default());
        assert_eq!(q.file.files.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
        assert_eq!(q.file.files[&a].state, before[&a].state);
        // Back in sight: in sight again.
        std::fs::rename(t.path().join("A.off"), t.path().join("A")).unwrap();
        q.observe(&[found(&a), found(&b)], at + 3);
        assert!(q.file.files.values().all(|e| e.out_of_sight.is_none()));
        // A folder renamed for good: its rip leaves the queue after a day.
        std::fs::rename(t.path().join("A"), t.path().join("A (1995)")).unwrap();
        assert!(q.observe(&[found(&b)], at + 4).gone.is_empty());
        assert_eq!(q.observe(&[found(&b)], at + 4 + OUT_OF_SIGHT_GRACE).gone, [a]);
    }

    #[test]
    fn an_output_gone_or_freed_brings_its_rip_back() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a.mkv"), t.path().join("b.mkv"));
        for rip in [&a, &b] {
            std::fs::write(rip, b"12345").unwrap();
        }
        let out = |p: &Path| Found {
            input: p.to_path_buf(),
            output: p.with_extension("out"),
            root: PathBuf::new(),
            sidecars: vec![],
            alone: false,
        };
        std::fs::write(a.with_extension("out"), b"encoded").unwrap();
        std::fs::write(b.with_extension("out"), b"another tool's").unwrap();
        let mut q = Queue::open(t.path(), t.path(), Path::new("/o"), Duration::from_secs(0), "s", |_| {});
        let at = now();
        let look = [out(&a), out(&b)];
        q.observe(&look, at);
        q.finished(&a, State::Encoded);
        let blocked = State::Failed { error: "taken".into(), setup: Some(false), blocked: true, settings: None };
        q.finished(&b, blocked);
        assert_eq!(q.observe(&look, at + 1), Changes::default(), "nothing changed");
        std::fs::remove_file(a.with_extension("out")).unwrap();
        std::fs::remove_file(b.with_extension("out")).unwrap();
        let c = q.observe(&look, at + 2);
        assert_eq!((c.output_gone, c.unblocked), (vec![a.clone()], vec![b.clone()]));
        assert_eq!(q.ready(at + 3), vec![a, b]);
    }

    #[test]
    fn other_settings_try_a_failed_rip_again() {
        let (t, rip, mut q) = one_rip(0);
        let at = now();
        q.observe(&[found(&rip)], at);
        let failed =
            State::Failed { error: "truncated".into(), setup: Some(false), blocked: false, settings: Some("s".into()) };
        q.finished(&rip, failed);
        q.save().unwrap();
        let mut same = Queue::open(t.path(), t.path(), Path::new("/o"), Duration::from_secs(0), "s", |_| {});
        same.observe(&[found(&rip)], at + 1);
        assert!(same.ready(at + 2).is_empty());
        let mut other = Queue::open(t.path(), t.path(), Path::new("/o"), Duration::from_secs(0), "s2", |_| {});
        other.observe(&[found(&rip)], at + 1);
        assert_eq!(other.ready(at + 2), vec![rip]);
    }

    #[test]
    fn a_change_seen_by_a_running_watch_settles_whatever_its_time() {
        let (_t, rip, mut q) = one_rip(60);
        let at = now();
        q.observe(&[found(&rip)], at);
        // A copy that sets an old time while its data still arrives.
        std::fs::write(&rip, b"123456").unwrap();
        let old = std::fs::FileTimes::new().set_modified(UNIX_EPOCH + Duration::from_secs(315_532_800));
        std::fs::File::options().write(true).open(&rip).unwrap().set_times(old).unwrap();
        q.observe(&[found(&rip)], at + 5);
        assert!(q.ready(at + 30).is_empty(), "not taken before its settle time");
        assert_eq!(q.ready(at + 66), vec![rip]);
    }
}
