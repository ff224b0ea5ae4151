//! `setTimeout`/`setInterval` of model code: timers that fire through the
//! call's own event loop (`engine::run`), never past its deadline.
//!
//! The queue lives here, in Rust; the callbacks stay in JavaScript
//! (`js/timers.js`), keyed by the ids handed out here. The event loop asks
//! [`Timers::pop_due`] for a timer to fire once the job queue is empty, and
//! waits no longer than [`Timers::next_due`]. When nothing but timers is
//! left and the earliest one lies past the deadline, the loop ends the call
//! at once with [`past_deadline`] instead of sleeping into a timeout.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use crate::{ErrorKind, ScriptError};

/// Timers (`setTimeout` + `setInterval`) one call may create.
pub(crate) const MAX_TIMERS: u32 = 1000;

/// The longest delay browsers honour (2³¹−1 ms); longer ones fire at once
/// there, here they are clamped to it (and so lie past any deadline).
const MAX_DELAY_MS: f64 = 2_147_483_647.0;

/// Which function armed a timer (for error messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerKind {
    Timeout,
    Interval,
}

impl TimerKind {
    fn function(self) -> &'static str {
        match self {
            TimerKind::Timeout => "setTimeout",
            TimerKind::Interval => "setInterval",
        }
    }
}

/// The earliest armed timer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Due {
    pub at: Instant,
    pub delay: Duration,
    pub kind: TimerKind,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    at: Instant,
    /// Arming order: timers due at the same instant fire in that order.
    seq: u64,
    id: u32,
}

/// The timers of one call.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    /// Armed ids and the `seq` of their live entry; an entry whose `seq`
    /// differs (cleared, or re-armed) is skipped when it comes up.
    armed: HashMap<u32, (u64, Duration, TimerKind)>,
    created: u32,
    seq: u64,
}

/// The delay a timer waits: `ms` clamped to `0..=2³¹−1` (NaN is 0), as
/// browsers do.
fn delay(ms: f64) -> Duration {
    let ms = if ms.is_nan() { 0.0 } else { ms.clamp(0.0, MAX_DELAY_MS) };
    Duration::from_micros((ms * 1000.0) as u64)
}

impl Timers {
    /// Creates a timer due `ms` from `now`; its id, or the error that says
    /// the call created too many.
    pub(crate) fn add(&mut self, now: Instant, ms: f64, kind: TimerKind) -> Result<u32, String> {
        if self.created >= MAX_TIMERS {
            return Err(format!(
                "{}: this call already created its limit of {MAX_TIMERS} timers; reuse one setInterval, or await the work itself (Promise.all) instead of scheduling it",
                kind.function()
            ));
        }
        self.created += 1;
        let id = self.created;
        self.arm(now, id, delay(ms), kind);
        Ok(id)
    }

    /// Arms interval `id` again, `ms` from `now`. Ids this call never
    /// created are ignored.
    pub(crate) fn again(&mut self, now: Instant, id: u32, ms: f64) {
        if id >= 1 && id <= self.created {
            self.arm(now, id, delay(ms), TimerKind::Interval);
        }
    }

    /// Disarms `id` (unknown ids are ignored, as `clearTimeout` does).
    pub(crate) fn clear(&mut self, id: u32) {
        self.armed.remove(&id);
    }

    fn arm(&mut self, now: Instant, id: u32, delay: Duration, kind: TimerKind) {
        self.seq += 1;
        self.armed.insert(id, (self.seq, delay, kind));
        self.heap.push(Reverse(Entry { at: now + delay, seq: self.seq, id }));
    }

    /// Drops entries that are no longer armed from the top of the queue.
    fn skip_stale(&mut self) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if self.armed.get(&top.id).is_some_and(|(seq, ..)| *seq == top.seq) {
                return;
            }
            self.heap.pop();
        }
    }

    /// The id of a timer due at `now`, disarmed (an interval is armed again
    /// by its callback's wrapper).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<u32> {
        self.skip_stale();
        let Reverse(top) = *self.heap.peek()?;
        if top.at > now {
            return None;
        }
        self.heap.pop();
        self.armed.remove(&top.id);
        Some(top.id)
    }

    /// The earliest armed timer.
    pub(crate) fn next_due(&mut self) -> Option<Due> {
        self.skip_stale();
        let Reverse(top) = *self.heap.peek()?;
        let (_, delay, kind) = self.armed[&top.id];
        Some(Due { at: top.at, delay, kind })
    }
}

/// The error for a call whose only remaining work is a timer due after its
/// deadline: it ends at once, naming the limit, instead of sleeping into it.
pub(crate) fn past_deadline(due: Due, limit: Duration) -> ScriptError {
    ScriptError::new(
        ErrorKind::Timeout,
        "TimeoutError",
        &format!(
            "{}(…, {} ms) would fire after this call's time limit of {} ([limits] timeout_secs), and nothing else is pending, so the call was ended now instead of waiting; use a shorter delay (timers only wait within the call), or split the work into several calls",
            due.kind.function(),
            due.delay.as_millis(),
            crate::engine::human_duration(limit),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_due_order_then_arming_order() {
        let now = Instant::now();
        let mut t = Timers::default();
        let late = t.add(now, 20.0, TimerKind::Timeout).unwrap();
        let a = t.add(now, 5.0, TimerKind::Timeout).unwrap();
        let b = t.add(now, 5.0, TimerKind::Timeout).unwrap();
        assert_eq!(t.pop_due(now), None, "nothing is due yet");
        let at = now + Duration::from_millis(5);
        assert_eq!(t.next_due().unwrap().at, at);
        assert_eq!((t.pop_due(at), t.pop_due(at), t.pop_due(at)), (Some(a), Some(b), None));
        assert_eq!(t.pop_due(now + Duration::from_millis(20)), Some(late));
        assert!(t.next_due().is_none());
    }

    #[test]
    fn cleared_and_rearmed_timers_fire_once_at_their_last_time() {
        let now = Instant::now();
        let mut t = Timers::default();
        let gone = t.add(now, 1.0, TimerKind::Timeout).unwrap();
        let tick = t.add(now, 1.0, TimerKind::Interval).unwrap();
        t.clear(gone);
        t.again(now, tick, 10.0);
        t.again(now, 999, 0.0); // never created: ignored
        let later = now + Duration::from_millis(10);
        assert_eq!(t.pop_due(later), Some(tick));
        assert_eq!(t.pop_due(later), None);
    }

    #[test]
    fn delays_are_clamped_like_browsers_and_creation_is_capped() {
        assert_eq!(delay(f64::NAN), Duration::ZERO);
        assert_eq!(delay(-5.0), Duration::ZERO);
        assert_eq!(delay(f64::INFINITY), Duration::from_millis(2_147_483_647));
        let now = Instant::now();
        let mut t = Timers::default();
        for _ in 0..MAX_TIMERS {
            t.add(now, 0.0, TimerKind::Timeout).unwrap();
        }
        let e = t.add(now, 0.0, TimerKind::Interval).unwrap_err();
        assert!(e.contains("limit of 1000 timers"), "{e}");
    }

    #[test]
    fn the_past_deadline_error_names_the_setting() {
        let due = Due { at: Instant::now(), delay: Duration::from_secs(60), kind: TimerKind::Timeout };
        let e = past_deadline(due, Duration::from_secs(30));
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(
            e.message.starts_with("setTimeout(…, 60000 ms)") && e.message.contains("[limits] timeout_secs"),
            "{}",
            e.message
        );
        assert!(e.message.contains("30 s"), "{}", e.message);
    }
}
