//! Who works on which segment: the queue of segments still to do, the
//! thread budget they share, and the local pool of workers that takes them
//! one by one (the survey's and the encodes' alike; [`super::remote`] takes
//! them from the same queue for other hosts).

use super::Report;
use super::layout::Segment;
use crate::cancel::Cancel;
use crate::error::ProcessFailure;
use crate::events::{Event, SegmentStep};
use crate::step::Ctx;
use std::cell::Cell;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Segments still to do, in order; stopped when one failed.
#[derive(Debug, Default)]
pub struct Queue {
    items: Mutex<VecDeque<Segment>>,
    stopped: AtomicBool,
}

impl Queue {
    pub fn new(todo: impl IntoIterator<Item = Segment>) -> Queue {
        Queue { items: Mutex::new(todo.into_iter().collect()), stopped: AtomicBool::new(false) }
    }

    /// The next segment, unless the queue is stopped, the run cancelled, or
    /// nothing is left.
    pub fn pop(&self, cancel: &Cancel) -> Option<Segment> {
        if self.is_stopped() || cancel.is_cancelled() {
            return None;
        }
        self.items.lock().expect("queue").pop_front()
    }

    pub fn is_empty(&self) -> bool {
        self.items.lock().expect("queue").is_empty()
    }

    /// The segment that starts next.
    pub fn front(&self) -> Option<usize> {
        self.items.lock().expect("queue").front().map(|s| s.index)
    }

    /// No segment starts after this.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Everything left, taken out.
    pub fn drain(&self) -> Vec<Segment> {
        self.items.lock().expect("queue").drain(..).collect()
    }
}

/// Threads for a step that starts now, out of `budget`: the worker's own
/// `per_worker` while segments wait in the queue; once none waits, the
/// budget split among the `active` segments, not counting the
/// `others_finishing` ones in their last step (measuring, short): the
/// threads those free soon go to the work that remains, so no core sits idle
/// through the last, longest steps.
pub(crate) fn thread_share(budget: u32, per_worker: u32, queued: bool, active: usize, others_finishing: usize) -> u32 {
    if queued {
        return per_worker;
    }
    let sharing = active.saturating_sub(others_finishing).max(1);
    (budget / sharing as u32).max(1)
}

/// The threads of the running segments: how many run, how many are in
/// their last step.
#[derive(Debug)]
pub struct Load {
    budget: u32,
    per_worker: u32,
    active: AtomicUsize,
    finishing: AtomicUsize,
}

impl Load {
    /// `workers` running at once, `per_worker` threads each while others wait.
    pub fn new(workers: usize, per_worker: u32) -> Load {
        Load {
            budget: per_worker * workers as u32,
            per_worker,
            active: AtomicUsize::new(0),
            finishing: AtomicUsize::new(0),
        }
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }
}

/// One running segment's place in the [`Load`]: its thread share now, and
/// whether it is in its last step (measuring). Leaving it gives its place
/// back.
pub struct Slot<'a> {
    load: &'a Load,
    queue: &'a Queue,
    measuring: Cell<bool>,
}

impl<'a> Slot<'a> {
    fn take(load: &'a Load, queue: &'a Queue) -> Slot<'a> {
        load.active.fetch_add(1, Ordering::SeqCst);
        Slot { load, queue, measuring: Cell::new(false) }
    }

    /// Threads for a step that starts now.
    pub fn threads(&self) -> u32 {
        let others = self.load.finishing.load(Ordering::SeqCst) - usize::from(self.measuring.get());
        thread_share(self.load.budget, self.load.per_worker, !self.queue.is_empty(), self.load.active(), others)
    }

    /// Follows the segment's steps: measuring is usually its last, and a
    /// prediction the measurement does not bear out sends it back to
    /// probing.
    pub fn saw(&self, report: &Report) {
        if let Report::Step { step, .. } = report {
            let now = matches!(step, SegmentStep::Measuring);
            if now != self.measuring.get() {
                self.measuring.set(now);
                if now {
                    self.load.finishing.fetch_add(1, Ordering::SeqCst);
                } else {
                    self.load.finishing.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if self.measuring.get() {
            self.load.finishing.fetch_sub(1, Ordering::SeqCst);
        }
        self.load.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `workers` threads that take segments from `queue` until it is
/// empty, stopped or the run cancelled; each segment is `work`ed in a
/// [`Slot`], its result handed to `done` (false: this worker stops). With
/// `memory_per_encoder`, a worker does not start a segment while another
/// runs and free memory is below it.
pub fn run_local<R>(
    workers: usize,
    queue: &Queue,
    load: &Load,
    memory_per_encoder: Option<u64>,
    cancel: &Cancel,
    work: &(dyn Fn(Segment, &Slot) -> R + Sync),
    done: &(dyn Fn(Segment, R) -> bool + Sync),
) {
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    if memory_per_encoder.is_some_and(|need| memory_short(load, need)) && !cancel.is_cancelled() {
                        std::thread::sleep(std::time::Duration::from_secs(1));
                        continue;
                    }
                    let Some(seg) = queue.pop(cancel) else { break };
                    let result = {
                        let slot = Slot::take(load, queue);
                        work(seg, &slot)
                    };
                    if !done(seg, result) {
                        break;
                    }
                }
            });
        }
    });
}

/// While another encoder runs, free memory below what one more needs.
fn memory_short(load: &Load, need: u64) -> bool {
    load.active() > 0 && crate::plan::available_memory().is_some_and(|m| m < need)
}

/// Runs `step` of segment `index`, and once more (saying so) when it fails
/// for any reason but cancellation or a full disk: one transient failure
/// does not fail the film, and the other segments are unaffected either way.
pub(crate) fn once_more<T>(
    ctx: &Ctx,
    input: &Path,
    index: usize,
    mut step: impl FnMut() -> std::result::Result<T, ProcessFailure>,
) -> std::result::Result<T, ProcessFailure> {
    // A full disk stays full: trying again only writes it full again.
    let hopeless = |e: &ProcessFailure| match e {
        ProcessFailure::Cancelled(_) => true,
        // (As is a damaged source: it decodes the same again.)
        ProcessFailure::Failed(f) => f.is_disk_full() || f.is_damaged_source(),
        ProcessFailure::Spawn { .. } => false,
    };
    match step() {
        Err(e) if !hopeless(&e) => {
            ctx.events.emit(&Event::Warning {
                input: Some(input.to_path_buf()),
                message: format!("segment {} failed ({e}); trying it once more", index + 1),
            });
            step()
        }
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(index: usize) -> Segment {
        Segment { index, start: index * 10, end: index * 10 + 10 }
    }

    #[test]
    fn a_queue_stops_and_drains() {
        let q = Queue::new([seg(0), seg(1), seg(2)]);
        let cancel = Cancel::new();
        assert_eq!(q.pop(&cancel).map(|s| s.index), Some(0));
        assert_eq!(q.front(), Some(1));
        q.stop();
        assert_eq!(q.pop(&cancel), None, "stopped");
        assert_eq!(q.drain().len(), 2);
        assert!(q.is_empty());
    }

    #[test]
    fn every_segment_is_worked_once_and_slots_are_given_back() {
        let q = Queue::new((0..20).map(seg));
        let load = Load::new(3, 2);
        let seen = Mutex::new(Vec::new());
        let cancel = Cancel::new();
        run_local(
            3,
            &q,
            &load,
            None,
            &cancel,
            &|s, slot| {
                assert!(slot.load.active() >= 1);
                slot.saw(&Report::Step { segment: s.index, step: SegmentStep::Measuring });
                s.index
            },
            &|_, i| {
                seen.lock().unwrap().push(i);
                true
            },
        );
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        assert_eq!((load.active(), load.finishing.load(Ordering::SeqCst)), (0, 0));
    }

    #[test]
    fn idle_and_finishing_workers_lend_their_threads() {
        // Segments still queued: each worker keeps its own share.
        assert_eq!(thread_share(4, 2, true, 2, 1), 2);
        // Nothing queued: the running segments split the budget...
        assert_eq!(thread_share(4, 2, false, 2, 0), 2);
        assert_eq!(thread_share(4, 2, false, 1, 0), 4);
        // ...and one that is only measuring leaves its share to the others.
        assert_eq!(thread_share(4, 2, false, 2, 1), 4);
        assert_eq!(thread_share(6, 2, false, 3, 1), 3);
        assert_eq!(thread_share(2, 1, false, 1, 5), 2);
        assert_eq!(thread_share(1, 1, false, 3, 0), 1);
    }
}
