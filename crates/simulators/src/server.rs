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
    /// Runs a background task (a data generator, say) until dropped.
    pub fn spawn_task(&mut self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.0.push(tokio::spawn(task));
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}
