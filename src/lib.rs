//! calltrail: call history for contact centers.
//!
//! Read in this order: `domain` (what a call is), `ingest` and `store::ingest` (how calls get
//! in), `store::search` (how they are found), `http` (how they leave), `demo`.

pub mod cli;
pub mod config;
pub mod demo;
#[macro_use]
pub mod domain;
pub mod error;
pub mod export;
pub mod http;
pub mod ingest;
pub mod instance;
pub mod json;
pub mod live;
pub mod qm;
pub mod recording;
pub mod retention;
pub mod secrets;
pub mod store;

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::AppState;
use crate::live::LiveHub;
use crate::store::Store;

/// A running server's handles, for the command line and tests.
pub struct Server {
    pub state: AppState,
    pub listener: TcpListener,
    pub instance: crate::instance::Instance,
}

impl Server {
    /// Opens the store and binds the listener.
    pub async fn bind(config: Config) -> Result<Server, Box<dyn std::error::Error + Send + Sync>> {
        let database = config.database.clone();
        let store = tokio::task::spawn_blocking(move || Store::connect(&database)).await??;
        Self::bind_with(config, store).await
    }

    pub async fn bind_with(
        mut config: Config,
        store: Store,
    ) -> Result<Server, Box<dyn std::error::Error + Send + Sync>> {
        let instance = crate::instance::Instance::claim(&config.data, &config.recordings.storage)?;
        instance.join(&store).await?;
        let listener = TcpListener::bind(config.listen).await?;
        // The default public address is the listen address; with port 0 that is only known now,
        // and links handed out (log links, recordings in exports) must work.
        if config.public_url == format!("http://{}", config.listen) {
            config.public_url = format!("http://{}", listener.local_addr()?);
        }
        let storage = crate::recording::storage::Storage::open(&config.recordings.storage)?;
        let recordings = crate::recording::Recordings::new(storage, config.recordings.max_bytes);
        let sealing = match &config.secret_key {
            Some(key) => key.clone(),
            None => crate::secrets::SealingKey::load_or_create(&config.data.join("secret.key"))?,
        };
        let exports = crate::export::files::ExportFiles::new(&config.data, &recordings.storage);
        let qm = crate::qm::Qm::new(sealing);
        let jobs = crate::export::jobs::JobQueue::default();
        let live = match store.postgres_url() {
            Some(url) => {
                let wakes = crate::live::Wakes {
                    exports: jobs.wake(),
                    qm: qm.wake.clone(),
                    recordings: recordings.wake.clone(),
                };
                LiveHub::relayed(url, instance.id.clone(), wakes)
            }
            None => LiveHub::default(),
        };
        let state = AppState {
            qm,
            store,
            live,
            config: Arc::new(config),
            jobs,
            exports,
            recordings,
        };
        Ok(Server {
            state,
            listener,
            instance,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then lets the writer finish.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let store = self.state.store.clone();
        let live = self.state.live.clone();
        // Statistics drift as calls arrive; refresh them now and then so plans stay good. Ended
        // sessions are deleted on the same round.
        let maintenance = tokio::spawn({
            let store = store.clone();
            let auth_rules = self.state.config.auth.clone();
            async move {
                let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
                every.tick().await;
                loop {
                    every.tick().await;
                    if let Err(e) = store.analyze(false).await {
                        tracing::warn!(error = %e, "refreshing planner statistics failed");
                    }
                    let idle = auth_rules.session_idle_ms;
                    let purged = store
                        .write(move |conn, _| {
                            crate::store::auth::purge_sessions(conn, crate::store::auth::now_ms(), idle)
                        })
                        .await;
                    if let Err(e) = purged {
                        tracing::warn!(error = %e, "deleting ended sessions failed");
                    }
                }
            }
        });
        let me = self.instance.id.clone();
        let heartbeat = tokio::spawn(self.instance.heartbeat(store.clone()));
        let worker = tokio::spawn(crate::export::jobs::run_worker(
            store.clone(),
            self.state.config.clone(),
            self.state.jobs.clone(),
            self.state.exports.clone(),
            me.clone(),
        ));
        let fetcher = tokio::spawn(crate::recording::fetch::run(
            store.clone(),
            self.state.recordings.clone(),
            Arc::new(self.state.config.recordings.clone()),
            live.clone(),
        ));
        let retention = tokio::spawn(crate::retention::run(
            store.clone(),
            self.state.recordings.clone(),
            self.state.config.retention_every_ms,
            me.clone(),
        ));
        let stop_qm = tokio_util::sync::CancellationToken::new();
        let qm = tokio::spawn(crate::qm::worker::run(
            store.clone(),
            self.state.config.clone(),
            self.state.qm.clone(),
            stop_qm.clone(),
            me.clone(),
        ));
        // A request out to the QM system is let finish and recorded before the server stops
        // answering (the QM system may be downloading the recording it names), so that no call
        // is left in doubt or sent twice.
        let qm_grace = std::time::Duration::from_millis(self.state.config.qm.timeout_ms + 5_000);
        let app = http::router(self.state);
        // Open event streams would hold the graceful shutdown forever: end them first.
        let shutdown = async move {
            shutdown.await;
            stop_qm.cancel();
            let qm_abort = qm.abort_handle();
            if tokio::time::timeout(qm_grace, qm).await.is_err() {
                qm_abort.abort();
            }
            live.close();
        };
        let result = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        maintenance.abort();
        worker.abort();
        fetcher.abort();
        retention.abort();
        heartbeat.abort();
        self.instance.leave(&store).await;
        store.shutdown();
        result
    }
}
