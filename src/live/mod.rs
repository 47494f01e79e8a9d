//! Live fan-out of changed calls: after a write is durable, the ids it touched are broadcast;
//! each live subscriber re-reads those ids through its own scope and filter, so what a
//! subscriber is sent is decided by the same SQL as its searches. With several instances on
//! PostgreSQL, `relay.rs` carries each instance's changes to the others.

mod relay;

use std::sync::Arc;

use tokio::sync::{broadcast, watch, Notify};

use crate::domain::AccountId;

/// How many change batches a slow subscriber may fall behind before it is told to resync.
const BACKLOG: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallsChanged {
    pub account: AccountId,
    pub ids: Arc<Vec<i64>>,
}

/// What a subscriber hears.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    Changed(CallsChanged),
    /// Changes may have been missed (the link to the other instances broke): search again.
    Missed,
}

/// A background worker another instance can wake when it queues work (an instance's own are
/// woken directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    Exports,
    Qm,
    Recordings,
}

text_enum!(Wake {
    Exports => "exports",
    Qm => "qm",
    Recordings => "recordings",
});

/// The workers' wake-up calls, for the relay to ring when another instance asks.
#[derive(Clone)]
pub struct Wakes {
    pub exports: Arc<Notify>,
    pub qm: Arc<Notify>,
    pub recordings: Arc<Notify>,
}

impl Wakes {
    pub fn of(&self, what: Wake) -> &Notify {
        match what {
            Wake::Exports => &self.exports,
            Wake::Qm => &self.qm,
            Wake::Recordings => &self.recordings,
        }
    }
}

#[derive(Clone)]
pub struct LiveHub {
    tx: broadcast::Sender<LiveEvent>,
    /// Set when the server shuts down, so that open event streams end and let it.
    closing: watch::Sender<bool>,
    /// To the other instances, when there are others.
    relay: Option<relay::Outbox>,
}

impl Default for LiveHub {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(BACKLOG);
        let (closing, _) = watch::channel(false);
        LiveHub {
            tx,
            closing,
            relay: None,
        }
    }
}

impl LiveHub {
    /// A hub that also hears, and tells, every other instance on the PostgreSQL database at
    /// `url` (`LISTEN`/`NOTIFY`: no broker besides the database).
    pub fn relayed(url: &str, instance: Arc<str>, wakes: Wakes) -> LiveHub {
        let mut hub = LiveHub::default();
        hub.relay = Some(relay::start(
            url,
            instance,
            hub.tx.clone(),
            wakes,
            hub.closing.subscribe(),
        ));
        hub
    }

    /// Wakes the same worker on every other instance (work was queued that any may take).
    pub fn wake_others(&self, what: Wake) {
        if let Some(relay) = &self.relay {
            relay.wake(what);
        }
    }

    pub fn publish(&self, account: AccountId, ids: Vec<i64>) {
        if ids.is_empty() {
            return;
        }
        let ids = Arc::new(ids);
        if let Some(relay) = &self.relay {
            relay.send(account, ids.clone());
        }
        // No subscribers is not an error.
        let _ = self.tx.send(LiveEvent::Changed(CallsChanged { account, ids }));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
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
