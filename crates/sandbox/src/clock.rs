//! [`Clock`]: the execution clock of one `execute` call, which the host can
//! hold while the call waits for a human (an approval of a host call).
//!
//! The call's time budget ([`crate::Limits::timeout`]) counts wall time
//! except time during which the clock is held *and* the JavaScript is idle,
//! blocked waiting for host-call completions. JavaScript that runs while the
//! clock is held (jobs, microtasks, a busy loop) still spends the budget, and
//! is stopped at the deadline as always: a pause gives no free CPU time.
//!
//! Only the host holds the clock. Behind the process wall the worker learns
//! of the state through host messages and extends nothing by itself; the
//! host's kill deadline moves by the held time measured here.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// A pausable execution clock, shared by the host (who holds it while a
/// human decides) and the sandbox (which stops counting idle time while it
/// is held). Cheap to clone; every clone is the same clock.
#[derive(Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Whether the clock is held; changed only under `state`'s lock, so
    /// subscribers see the changes in order.
    held: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    /// Live [`Pause`] guards.
    holders: usize,
    /// When the current hold began (while `holders > 0`).
    since: Option<Instant>,
    /// Time held in holds that have ended.
    total: Duration,
}

impl State {
    fn paused_total(&self) -> Duration {
        self.total + self.since.map_or(Duration::ZERO, |s| s.elapsed())
    }
}

/// Holds its [`Clock`] while alive; see [`Clock::pause`]. Dropping the last
/// live guard of a clock releases it.
#[must_use = "the clock is released as soon as the guard is dropped"]
pub struct Pause {
    clock: Clock,
}

impl Clock {
    /// A clock that is not held and has never been.
    pub fn new() -> Clock {
        let (held, _) = watch::channel(false);
        Clock { inner: Arc::new(Inner { state: Mutex::new(State::default()), held }) }
    }

    /// Holds the clock until the returned guard is dropped. Guards may
    /// overlap and nest: the clock is held while at least one is alive.
    pub fn pause(&self) -> Pause {
        let mut state = self.state();
        state.holders += 1;
        if state.holders == 1 {
            state.since = Some(Instant::now());
            self.inner.held.send_replace(true);
        }
        Pause { clock: self.clone() }
    }

    /// Whether at least one [`Pause`] guard is alive.
    pub fn is_held(&self) -> bool {
        self.state().holders > 0
    }

    /// The total wall time this clock has been held so far, including the
    /// current hold (for logs and tests). This is an upper bound of the
    /// time the budget was extended by: held time during which JavaScript
    /// ran is not credited.
    pub fn paused_total(&self) -> Duration {
        self.state().paused_total()
    }

    /// Watches the held state (`true` while held).
    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.inner.held.subscribe()
    }

    /// Returns once `at`, moved later by the time held since `baseline`
    /// (a [`Clock::paused_total`] taken when the call began), has passed
    /// while the clock is not held. Never returns while the clock is held.
    pub(crate) async fn expired(&self, at: tokio::time::Instant, baseline: Duration) {
        let mut held = self.subscribe();
        loop {
            if *held.borrow_and_update() {
                // Held: no deadline runs. The sender lives as long as `self`.
                let _ = held.changed().await;
                continue;
            }
            let until = at + self.paused_total().saturating_sub(baseline);
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {
                    // A hold may have begun (and even ended) as the timer fired.
                    let now = tokio::time::Instant::now();
                    if !self.is_held() && now >= at + self.paused_total().saturating_sub(baseline) {
                        return;
                    }
                }
                _ = held.changed() => {}
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("Clock")
            .field("held", &(state.holders > 0))
            .field("paused_total", &state.paused_total())
            .finish()
    }
}

impl Drop for Pause {
    fn drop(&mut self) {
        let mut state = self.clock.state();
        state.holders = state.holders.saturating_sub(1);
        if state.holders == 0 {
            if let Some(since) = state.since.take() {
                state.total += since.elapsed();
            }
            self.clock.inner.held.send_replace(false);
        }
    }
}

impl std::fmt::Debug for Pause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pause").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_overlap_and_the_last_one_releases() {
        let clock = Clock::new();
        assert!(!clock.is_held());
        assert_eq!(clock.paused_total(), Duration::ZERO);
        let a = clock.pause();
        let b = clock.clone().pause();
        assert!(clock.is_held());
        drop(a);
        assert!(clock.is_held(), "one guard is still alive");
        std::thread::sleep(Duration::from_millis(30));
        drop(b);
        assert!(!clock.is_held());
        let total = clock.paused_total();
        assert!(total >= Duration::from_millis(30), "{total:?}");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.paused_total(), total, "released time is not counted");
        let _c = clock.pause();
        std::thread::sleep(Duration::from_millis(10));
        assert!(clock.paused_total() >= total + Duration::from_millis(10), "the current hold counts");
    }

    #[tokio::test]
    async fn subscribers_see_each_change() {
        let clock = Clock::new();
        let mut rx = clock.subscribe();
        let p = clock.pause();
        rx.changed().await.unwrap();
        assert!(*rx.borrow_and_update());
        drop(p);
        rx.changed().await.unwrap();
        assert!(!*rx.borrow_and_update());
    }

    #[tokio::test]
    async fn the_deadline_moves_by_the_held_time_and_never_fires_while_held() {
        let clock = Clock::new();
        let started = tokio::time::Instant::now();
        let at = started + Duration::from_millis(100);
        let holder = clock.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let p = holder.pause();
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(p);
        });
        clock.expired(at, Duration::ZERO).await;
        let took = started.elapsed();
        // 100 ms of budget plus ~200 ms held.
        assert!(took >= Duration::from_millis(290), "{took:?}");
        assert!(took < Duration::from_millis(600), "{took:?}");
        assert!(!clock.is_held());
    }

    #[tokio::test]
    async fn an_unheld_deadline_fires_on_time() {
        let clock = Clock::new();
        let started = tokio::time::Instant::now();
        clock.expired(started + Duration::from_millis(50), clock.paused_total()).await;
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(50) && took < Duration::from_millis(300), "{took:?}");
    }
}
