//! Logging in with a password: a session token (kept as its hash), and failed attempts limited
//! per user and per address, so a password cannot be guessed at speed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins allowed per user, and per address, within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// How long a failed login counts.
pub const WINDOW: Duration = Duration::from_secs(300);

/// Recent failed logins, by user name and by address.
#[derive(Default)]
pub struct Limiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Limiter {
    fn recent(&self, key: &str, now: Instant) -> Vec<Instant> {
        let mut all = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let list = all.entry(key.to_string()).or_default();
        list.retain(|t| now.duration_since(*t) < WINDOW);
        list.clone()
    }

    /// How long to wait before `keys` may try again, if one of them failed too often.
    pub fn wait(&self, keys: &[String], now: Instant) -> Option<Duration> {
        keys.iter()
            .filter_map(|k| {
                let recent = self.recent(k, now);
                (recent.len() >= MAX_FAILURES)
                    .then(|| {
                        recent
                            .first()
                            .map(|t| WINDOW.saturating_sub(now.duration_since(*t)))
                    })
                    .flatten()
            })
            .max()
    }

    pub fn failed(&self, keys: &[String], now: Instant) {
        let mut all = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            all.entry(k.clone()).or_default().push(now);
        }
    }

    pub fn succeeded(&self, name_key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name_key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_wait_out_their_window() {
        let limiter = Limiter::default();
        let keys = ["user:dana".to_string(), "addr:10.0.0.1".to_string()];
        let t0 = Instant::now();
        for n in 0..MAX_FAILURES {
            assert_eq!(limiter.wait(&keys, t0), None, "attempt {n}");
            limiter.failed(&keys, t0);
        }
        let wait = limiter.wait(&keys, t0 + Duration::from_secs(60)).unwrap();
        assert_eq!(wait, WINDOW - Duration::from_secs(60));
        // Another user from the same address is held back too.
        let other = ["user:sam".to_string(), "addr:10.0.0.1".to_string()];
        assert!(limiter.wait(&other, t0 + Duration::from_secs(61)).is_some());
        assert_eq!(limiter.wait(&keys, t0 + WINDOW), None, "the window passed");
    }
}
