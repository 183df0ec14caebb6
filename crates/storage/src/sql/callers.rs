//! Who an API key or a session token belongs to, as read a moment ago, on PostgreSQL: every
//! API request authenticates, and there each read of it is a round trip that cost about a
//! tenth of a queue page's. An answer is trusted for [`FRESH`]; a change to users, keys or
//! sessions made through this store forgets every answer once it has committed, and tells
//! every other process sharing the database to forget theirs ([`NOTIFY`], which PostgreSQL
//! delivers when the change commits, to each process's [`listen`]er): it applies to the next
//! request everywhere. A process whose listening connection is lost forgets everything once it
//! is back (what was told meanwhile is lost); until then [`FRESH`] bounds how long an answer
//! is trusted. SQLite's read is local and cheap: there nothing is remembered, and a change
//! made by another process (the CLI beside `serve`) applies to the next request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use crate::User;

/// How long an answer is trusted.
pub(crate) const FRESH: Duration = Duration::from_secs(1);
/// The PostgreSQL channel changes to callers are told on.
const CHANNEL: &str = "watchfloor_callers";
/// Tells every process listening that callers changed: run in the change's transaction, it is
/// delivered when that commits, and not if it rolls back.
pub(crate) const NOTIFY: &str = "NOTIFY watchfloor_callers";
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
    /// Whether the listener hears other processes' changes now.
    listening: AtomicBool,
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
            listening: AtomicBool::new(false),
            inner: Mutex::default(),
        }
    }

    /// Whether other processes' changes are heard now (see [`listen`]).
    #[cfg(test)]
    pub(crate) fn listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
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

/// Listens on a connection of `pool`'s for changes told by any process ([`NOTIFY`]) and
/// forgets `callers`' answers on each; and once on every (re)connection, as changes told while
/// it was not listening are lost. Ends when the pool closes or the store is gone.
pub(crate) fn listen(pool: sqlx::PgPool, callers: Weak<Callers>) {
    tokio::spawn(async move {
        let forget = |heard: bool| match callers.upgrade() {
            Some(c) => {
                c.forget();
                c.listening.store(heard, Ordering::SeqCst);
                true
            }
            None => false,
        };
        let mut listener = loop {
            let connected = async {
                let mut l = sqlx::postgres::PgListener::connect_with(&pool).await?;
                l.listen(CHANNEL).await?;
                Ok::<_, sqlx::Error>(l)
            };
            match connected.await {
                Ok(l) => break l,
                Err(_) if pool.is_closed() => return,
                Err(e) => {
                    tracing::warn!(
                        "cannot listen for changes to users and keys made by other processes: {e};                          they apply here within {}s, retrying",
                        FRESH.as_secs()
                    );
                    tokio::time::sleep(FRESH).await;
                }
            }
        };
        if !forget(true) {
            return;
        }
        loop {
            let heard = match listener.try_recv().await {
                Ok(Some(_)) => true,
                // The connection was lost and made again: what was told meanwhile is lost.
                Ok(None) => true,
                Err(sqlx::Error::PoolClosed) => return,
                Err(_) if pool.is_closed() => return,
                Err(e) => {
                    tracing::warn!(
                        "lost the connection that hears other processes' changes to users and keys: {e}; retrying"
                    );
                    tokio::time::sleep(FRESH).await;
                    false
                }
            };
            if !forget(heard) {
                return;
            }
        }
    });
}
