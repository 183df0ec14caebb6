//! Who an API key or a session token belongs to, as read a moment ago, on PostgreSQL: every
//! API request authenticates, and there each read of it is a round trip that cost about a
//! tenth of a queue page's. An answer is trusted for [`FRESH`]; a change to users, keys or
//! sessions made through this store forgets every answer once it has committed, so it applies
//! here at once and in another process sharing the database within [`FRESH`]. SQLite's read
//! is local and cheap: there nothing is remembered, and a change made by another process (the
//! CLI beside `serve`) applies to the next request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::User;

/// How long an answer is trusted.
pub(crate) const FRESH: Duration = Duration::from_secs(1);
/// Answers kept at most; beyond it the oldest are not looked for, they are all forgotten.
const MOST: usize = 10_000;

/// Which kind of credential a hash is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential {
    Key = 0,
    Session = 1,
}

pub(crate) struct Callers {
    /// Whether answers are remembered at all (PostgreSQL).
    remember: bool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Bumped by every change: an answer read before one is not kept after it.
    generation: u64,
    /// By credential kind (`Credential as usize`), then hash: looked up by `&str`, with no
    /// key made for each request.
    known: [HashMap<String, (Instant, User)>; 2],
}

impl Callers {
    pub(crate) fn new(remember: bool) -> Callers {
        Callers {
            remember,
            inner: Mutex::default(),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The user a credential was found to belong to less than [`FRESH`] ago; otherwise the
    /// generation to [`Callers::keep`] a fresh answer under.
    pub(crate) fn known(&self, kind: Credential, hash: &str) -> Result<User, u64> {
        let inner = self.inner();
        if !self.remember {
            return Err(inner.generation);
        }
        match inner.known[kind as usize].get(hash) {
            Some((at, user)) if at.elapsed() < FRESH => Ok(user.clone()),
            _ => Err(inner.generation),
        }
    }

    /// Keeps an answer read at `generation`, unless a change has come since (it may be older
    /// than the change). Only users found are kept: a refused credential is read each time.
    pub(crate) fn keep(&self, kind: Credential, hash: &str, generation: u64, user: &User) {
        let mut inner = self.inner();
        if !self.remember || inner.generation != generation {
            return;
        }
        let known = &mut inner.known[kind as usize];
        if known.len() >= MOST {
            known.clear();
        }
        known.insert(hash.to_string(), (Instant::now(), user.clone()));
    }

    /// Forgets every answer: users, keys or sessions changed.
    pub(crate) fn forget(&self) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.known.iter_mut().for_each(HashMap::clear);
    }
}
