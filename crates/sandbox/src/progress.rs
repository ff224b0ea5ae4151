//! `progress(message, fraction?)`: what an `execute` may report while it
//! runs, and the bounds on it.
//!
//! The same [`Gate`] stands on both sides of the process wall: in the
//! runner, so that an honest worker never sends what the host would drop,
//! and on the host, which treats every report a worker sends as hostile.
//! Whatever the code does, the client gets at most [`MAX_REPORTS`] reports
//! per call, at most one per [`MIN_INTERVAL`], each at most
//! [`MAX_MESSAGE_CHARS`] characters.

use std::time::{Duration, Instant};

/// Longest message passed on, in characters (longer ones are cut, with `…`).
pub const MAX_MESSAGE_CHARS: usize = 200;
/// Reports passed on per call; later ones are dropped.
pub const MAX_REPORTS: u32 = 100;
/// Shortest time between two reports passed on; one sooner is dropped.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// One report, as it reaches [`crate::Host::progress`].
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// What the code said, cut to [`MAX_MESSAGE_CHARS`], control characters
    /// replaced by spaces.
    pub message: String,
    /// How far along, from 0 to 1, when the code said so.
    pub fraction: Option<f64>,
}

/// Admits reports within the bounds; one per call.
#[derive(Debug)]
pub(crate) struct Gate {
    interval: Duration,
    last: Option<Instant>,
    admitted: u32,
    seen: u64,
}

impl Gate {
    /// A gate that admits one report per `interval` (the runner uses
    /// [`MIN_INTERVAL`]; the host a little less, for the pipe's jitter).
    pub(crate) fn new(interval: Duration) -> Gate {
        Gate { interval, last: None, admitted: 0, seen: 0 }
    }

    /// Reports offered so far, admitted or not.
    pub(crate) fn seen(&self) -> u64 {
        self.seen
    }

    /// The report to pass on, or `None` when it is dropped (too soon after
    /// the last one, or past the per-call cap). A fraction outside 0..=1 or
    /// not finite is dropped from the report.
    pub(crate) fn admit(&mut self, now: Instant, message: &str, fraction: Option<f64>) -> Option<Report> {
        self.seen += 1;
        if self.admitted >= MAX_REPORTS || self.last.is_some_and(|t| now.saturating_duration_since(t) < self.interval) {
            return None;
        }
        self.last = Some(now);
        self.admitted += 1;
        Some(Report {
            message: clean(message),
            fraction: fraction.filter(|f| f.is_finite() && (0.0..=1.0).contains(f)),
        })
    }
}

/// The message cut to [`MAX_MESSAGE_CHARS`], control characters as spaces.
fn clean(message: &str) -> String {
    let mut out: String =
        message.chars().take(MAX_MESSAGE_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if message.chars().nth(MAX_MESSAGE_CHARS).is_some() {
        out.pop();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_rate_limited_capped_and_cut() {
        let mut g = Gate::new(MIN_INTERVAL);
        let t = Instant::now();
        assert_eq!(g.admit(t, "a", Some(0.5)), Some(Report { message: "a".into(), fraction: Some(0.5) }));
        assert_eq!(g.admit(t + Duration::from_millis(10), "b", None), None, "too soon");
        let r = g.admit(t + MIN_INTERVAL, &"x".repeat(5000), Some(7.0)).unwrap();
        assert_eq!(r.message.chars().count(), MAX_MESSAGE_CHARS);
        assert!(r.message.ends_with('…'));
        assert_eq!(r.fraction, None, "out of range");
        let r = g.admit(t + MIN_INTERVAL * 2, "line\nbreak\u{1b}[2J", Some(f64::NAN)).unwrap();
        assert_eq!(r.message, "line break [2J");
        assert_eq!(r.fraction, None);
        let mut admitted = 3;
        for i in 3..1000u32 {
            admitted += g.admit(t + MIN_INTERVAL * i, "n", None).is_some() as u32;
        }
        assert_eq!(admitted, MAX_REPORTS);
        assert_eq!(g.seen(), 1001, "every call is counted, the too-soon one too");
    }
}
