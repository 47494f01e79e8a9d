//! Live fan-out of changed calls: after a write is durable, the ids it touched are broadcast;
//! each live subscriber re-reads those ids through its own scope and filter, so what a
//! subscriber is sent is decided by the same SQL as its searches.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use crate::domain::AccountId;

/// How many change batches a slow subscriber may fall behind before it is told to resync.
const BACKLOG: usize = 1024;

#[derive(Debug, Clone)]
pub struct CallsChanged {
    pub account: AccountId,
    pub ids: Arc<Vec<i64>>,
}

#[derive(Clone)]
pub struct LiveHub {
    tx: broadcast::Sender<CallsChanged>,
    /// Set when the server shuts down, so that open event streams end and let it.
    closing: watch::Sender<bool>,
}

impl Default for LiveHub {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(BACKLOG);
        let (closing, _) = watch::channel(false);
        LiveHub { tx, closing }
    }
}

impl LiveHub {
    pub fn publish(&self, account: AccountId, ids: Vec<i64>) {
        if !ids.is_empty() {
            // No subscribers is not an error.
            let _ = self.tx.send(CallsChanged {
                account,
                ids: Arc::new(ids),
            });
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<CallsChanged> {
        self.tx.subscribe()
    }

    /// Ends every open event stream.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once `close` was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            // An error means the hub is gone, which is closed too.
            let _ = rx.wait_for(|closing| *closing).await;
        }
    }
}
