//! Resource metrics for the report: drapto's CPU time (its own and its
//! finished children's, `getrusage`) and the peak memory of drapto plus its
//! running children (`sysinfo`), sampled while a file is encoded. The same
//! code on Linux and macOS.

use crate::cancel::Cancel;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use crate::summary::ResourceStats;

/// How often memory is sampled.
const EVERY: Duration = Duration::from_millis(500);

/// Samples memory in the background until [`Sampler::finish`], or until
/// it is dropped (a rip skipped, failed or stopped: each left a thread
/// sampling for ever, a file handle more with every process drapto started
/// after it; a rerun over 200 encoded rips ended with 202 threads and
/// 10,000 open files).
pub struct Sampler {
    /// Dropped to stop the thread.
    stop: Option<mpsc::Sender<()>>,
    peak: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
    started: Instant,
    cpu_start: f64,
}

impl Sampler {
    /// Starts sampling drapto and the children registered in `cancel`.
    pub fn start(cancel: &Cancel) -> Sampler {
        let (stop, stopped) = mpsc::channel::<()>();
        let peak = Arc::new(AtomicU64::new(0));
        let (p, c) = (Arc::clone(&peak), cancel.clone());
        let thread = std::thread::spawn(move || {
            loop {
                // (A new one each time: one kept holds a file of every
                // child it ever looked at, ended or not.)
                let mut sys = sysinfo::System::new();
                let mut pids = vec![sysinfo::Pid::from_u32(std::process::id())];
                pids.extend(c.groups().iter().map(|g| sysinfo::Pid::from_u32(*g as u32)));
                sys.refresh_processes_specifics(
                    sysinfo::ProcessesToUpdate::Some(&pids),
                    true,
                    sysinfo::ProcessRefreshKind::nothing().with_memory(),
                );
                let total: u64 = pids.iter().filter_map(|pid| sys.process(*pid)).map(|p| p.memory()).sum();
                p.fetch_max(total, Ordering::SeqCst);
                if stopped.recv_timeout(EVERY) != Err(mpsc::RecvTimeoutError::Timeout) {
                    break;
                }
            }
        });
        let stop = Some(stop);
        Sampler { stop, peak, thread: Some(thread), started: Instant::now(), cpu_start: cpu_seconds().unwrap_or(0.0) }
    }

    /// Stops the sampling thread (at once: it waits on the channel).
    fn stop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stops sampling and returns the figures.
    pub fn finish(mut self) -> ResourceStats {
        self.stop();
        let wall = self.started.elapsed().as_secs_f64();
        let cpu = cpu_seconds().unwrap_or(0.0) - self.cpu_start;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        ResourceStats {
            cpu_seconds: cpu,
            average_cpu_percent: if wall > 0.0 { cpu / wall / cores * 100.0 } else { 0.0 },
            peak_memory_bytes: self.peak.load(Ordering::SeqCst),
            wall_seconds: wall,
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// CPU seconds (user and system) of drapto and of every child it waited for.
fn cpu_seconds() -> Option<f64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let seconds = |who| {
        getrusage(who).ok().map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
    };
    Some(seconds(UsageWho::RUSAGE_SELF)? + seconds(UsageWho::RUSAGE_CHILDREN)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sampler_dropped_unfinished_stops_its_thread() {
        let s = Sampler::start(&Cancel::new());
        let peak = Arc::clone(&s.peak);
        std::thread::sleep(Duration::from_millis(50));
        drop(s);
        assert_eq!(Arc::strong_count(&peak), 1, "the sampling thread still runs");
    }

    #[test]
    fn samples_this_process() {
        let c = Cancel::new();
        let s = Sampler::start(&c);
        // Work until the kernel has counted some CPU time (a tick is 10 ms;
        // an optimized loop can finish within one).
        let before = cpu_seconds().unwrap();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while cpu_seconds().unwrap() <= before && started.elapsed() < Duration::from_secs(5) {
            for i in 0..1_000_000u64 {
                x = x.wrapping_add(std::hint::black_box(i * i));
            }
        }
        std::hint::black_box(x);
        std::thread::sleep(Duration::from_millis(600));
        let r = s.finish();
        assert!(r.peak_memory_bytes > 1 << 20, "{r:?}");
        assert!(r.cpu_seconds > 0.0 && r.wall_seconds > 0.5, "{r:?}");
    }
}
