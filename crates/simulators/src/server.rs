//! Running simulator servers: spawned on the current runtime, stopped when dropped.

use axum::Router;
use axum::serve::Listener;
use tokio::task::JoinHandle;

/// The server tasks of one simulator. Dropping it stops them.
#[derive(Default)]
pub struct Servers(Vec<JoinHandle<()>>);

impl Servers {
    /// Serves `router` on `listener` until dropped.
    pub fn spawn<L>(&mut self, listener: L, router: Router)
    where
        L: Listener,
        L::Addr: std::fmt::Debug,
    {
        self.0.push(tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        }));
    }
}

impl Servers {
    /// Calls `tick` with 0, 1, 2, … once every `period`, the first after one period, until
    /// dropped: how simulators generate new alerts.
    pub fn every(
        &mut self,
        period: std::time::Duration,
        mut tick: impl FnMut(usize) + Send + 'static,
    ) {
        self.0.push(tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.tick().await;
            for n in 0usize.. {
                interval.tick().await;
                tick(n);
            }
        }));
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}
