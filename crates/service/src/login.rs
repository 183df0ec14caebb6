//! Logging in with a password: a session token (kept as its hash), and failed attempts limited
//! per user and per address, so a password cannot be guessed at speed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins allowed per user, and per address, within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// How long a failed login counts.
pub const WINDOW: Duration = Duration::from_secs(300);

/// The most keys (user names and addresses) the limiter remembers; past it, the oldest
/// failures are forgotten first, so names made up by the thousand cannot grow the process.
pub const MAX_KEYS: usize = 10_000;

/// Recent failed logins, by user name and by address, and the addresses each user has logged
/// in from. A user's failures hold back only addresses it has never logged in from, so that
/// anyone can be throttled but no one can lock a user out of its own machine.
#[derive(Default)]
pub struct Limiter {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    failures: HashMap<String, Vec<Instant>>,
    /// Addresses each user logged in from, the newest last (a few per user).
    known: HashMap<String, Vec<String>>,
}

/// Addresses remembered per user.
const KNOWN_PER_USER: usize = 8;

impl Limiter {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long `user` may not try from `addr`, if it or the address failed too often.
    pub fn wait(&self, user: &str, addr: &str, now: Instant) -> Option<Duration> {
        let mut state = self.state();
        let known = state
            .known
            .get(user)
            .is_some_and(|a| a.iter().any(|k| k == addr));
        let mut keys = vec![format!("addr:{addr}")];
        if !known {
            keys.push(format!("user:{user}"));
        }
        keys.iter()
            .filter_map(|k| {
                let list = state.failures.get_mut(k)?;
                list.retain(|t| now.duration_since(*t) < WINDOW);
                (list.len() >= MAX_FAILURES)
                    .then(|| {
                        list.first()
                            .map(|t| WINDOW.saturating_sub(now.duration_since(*t)))
                    })
                    .flatten()
            })
            .max()
    }

    /// A failed login of `user` from `addr`.
    pub fn failed(&self, user: &str, addr: &str, now: Instant) {
        let mut state = self.state();
        for k in [format!("user:{user}"), format!("addr:{addr}")] {
            state.failures.entry(k).or_default().push(now);
        }
        if state.failures.len() > MAX_KEYS {
            // Forget what has expired, then, if still too many, the keys that failed longest
            // ago.
            state
                .failures
                .retain(|_, l| l.last().is_some_and(|t| now.duration_since(*t) < WINDOW));
            // Down to three quarters, so that the sort is paid once in many failures.
            let excess = state.failures.len().saturating_sub(MAX_KEYS * 3 / 4);
            if excess > 0 {
                let mut by_age: Vec<(Instant, String)> = state
                    .failures
                    .iter()
                    .map(|(k, l)| (l.last().copied().unwrap_or(now), k.clone()))
                    .collect();
                by_age.sort();
                for (_, k) in by_age.into_iter().take(excess) {
                    state.failures.remove(&k);
                }
            }
        }
    }

    /// A login of `user` from `addr` that succeeded: its failures are forgotten, and the
    /// address is one it is known at.
    pub fn succeeded(&self, user: &str, addr: &str) {
        let mut state = self.state();
        state.failures.remove(&format!("user:{user}"));
        let known = state.known.entry(user.to_string()).or_default();
        known.retain(|a| a != addr);
        known.push(addr.to_string());
        if known.len() > KNOWN_PER_USER {
            known.remove(0);
        }
        if state.known.len() > MAX_KEYS {
            state.known.clear();
        }
    }

    /// How many keys it remembers (for tests and metrics).
    pub fn len(&self) -> usize {
        self.state().failures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_wait_out_their_window() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        for n in 0..MAX_FAILURES {
            assert_eq!(limiter.wait("dana", "10.0.0.1", t0), None, "attempt {n}");
            limiter.failed("dana", "10.0.0.1", t0);
        }
        let wait = limiter
            .wait("dana", "10.0.0.1", t0 + Duration::from_secs(60))
            .unwrap();
        assert_eq!(wait, WINDOW - Duration::from_secs(60));
        // Another user from the same address is held back too.
        assert!(
            limiter
                .wait("sam", "10.0.0.1", t0 + Duration::from_secs(61))
                .is_some()
        );
        assert_eq!(
            limiter.wait("dana", "10.0.0.1", t0 + WINDOW),
            None,
            "the window passed"
        );
    }

    /// Regression (anyone could lock any user out with five bad passwords): the failures of a
    /// user hold back addresses it never logged in from, not its own.
    #[test]
    fn a_user_is_not_locked_out_of_an_address_it_logs_in_from() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        limiter.succeeded("dana", "10.0.0.7");
        for _ in 0..MAX_FAILURES {
            limiter.failed("dana", "203.0.113.9", t0);
        }
        assert!(
            limiter.wait("dana", "203.0.113.9", t0).is_some(),
            "the attacker waits"
        );
        assert!(
            limiter.wait("dana", "198.51.100.1", t0).is_some(),
            "a new address waits"
        );
        assert_eq!(
            limiter.wait("dana", "10.0.0.7", t0),
            None,
            "dana's own does not"
        );
    }

    /// Regression (150,000 failed logins with new names grew the process by 150 MB, for
    /// good): the limiter remembers at most MAX_KEYS keys.
    #[test]
    fn made_up_names_by_the_thousand_do_not_grow_it() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        for n in 0..(MAX_KEYS * 3) {
            limiter.failed(
                &format!("nobody{n}"),
                &format!("10.{}.{}.1", n / 256 % 256, n % 256),
                t0,
            );
        }
        assert!(limiter.len() <= MAX_KEYS + 2, "{} keys", limiter.len());
    }
}
