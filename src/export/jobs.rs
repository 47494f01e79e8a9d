//! Background exports: a job is asked for (`POST /api/v1/exports`), kept in the database, and
//! run by one worker per server, one at a time, into a file in `DATA/exports/` that is kept for
//! `--export-keep-hours`. A job that was running when the server stopped starts again from its
//! first row when the server comes back (three times at most, then it fails saying so). A cancel
//! is seen between two stretches of rows.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use tokio::sync::Notify;

use super::file::{write_file, FileSpec};
use super::files::ExportFiles;
use super::walk::Walk;
use super::{Format, Layout};
use crate::config::Config;
use crate::domain::{Column, Lang};
use crate::store::auth::now_ms;
use crate::store::exports::{self, Job, Outcome};
use crate::store::{access, Store};

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

text_enum!(JobState {
    Queued => "queued",
    Running => "running",
    Done => "done",
    Failed => "failed",
    Cancelled => "cancelled",
});

/// A job interrupted this many times by a stopping server fails instead of starting again.
pub const MAX_ATTEMPTS: i64 = 3;

/// Wakes the worker when a job is queued.
#[derive(Clone, Default)]
pub struct JobQueue {
    wake: Arc<Notify>,
}

impl JobQueue {
    pub fn queued(&self) {
        self.wake.notify_one();
    }

    /// The worker's wake-up call, for other instances to ring.
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

/// How long a running job's lease lasts; it is renewed with every stretch of rows written, so
/// only a job whose instance stopped or died runs out (and is then started again elsewhere).
pub const LEASE_MS: i64 = 120_000;

/// The worker: runs queued jobs one by one, and deletes files past their time. Runs until the
/// server stops. With several instances, each job is claimed by exactly one of them.
pub async fn run_worker(store: Store, config: Arc<Config>, queue: JobQueue, files: ExportFiles, me: Arc<str>) {
    loop {
        let owner = me.clone();
        match store
            .write(move |conn, _| exports::requeue_interrupted(conn, MAX_ATTEMPTS, now_ms(), &owner))
            .await
        {
            Ok((0, 0)) => {}
            Ok((requeued, failed)) => tracing::info!(requeued, failed, "exports interrupted by a stopped server"),
            Err(e) => tracing::warn!(error = %e, "could not look at interrupted exports"),
        }
        delete_expired(&store, &files).await;
        loop {
            let owner = me.clone();
            let claimed = store
                .write(move |conn, _| exports::claim_next(conn, now_ms(), &owner, LEASE_MS))
                .await;
            let job = match claimed {
                Ok(Some(job)) => job,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "could not take the next export");
                    break;
                }
            };
            let id = job.id;
            let outcome = run(&store, &config, &files, &me, job).await;
            let owner = me.clone();
            let finished = store
                .write(move |conn, _| {
                    let o = match &outcome {
                        Ok(Some((name, bytes, rows, expires))) => Outcome::Done {
                            file_name: name,
                            bytes: *bytes,
                            rows: *rows,
                            expires_at: *expires,
                        },
                        // Cancelled while running: the state already says so.
                        Ok(None) => return Ok(()),
                        Err(reason) => Outcome::Failed(reason),
                    };
                    exports::finish(conn, id, o, now_ms())?;
                    crate::store::leases::release(conn, &exports::lease_name(id), &owner)
                })
                .await;
            if let Err(e) = finished {
                tracing::warn!(job = id, error = %e, "could not record the end of an export");
            }
        }
        tokio::select! {
            _ = queue.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

async fn delete_expired(store: &Store, files: &ExportFiles) {
    let jobs = match store.read(|conn| exports::expired_files(conn, now_ms())).await {
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::warn!(error = %e, "could not list expired exports");
            return;
        }
    };
    for job in jobs {
        if let Err(e) = files.delete(&job).await {
            tracing::warn!(job = job.id, error = %e, "could not delete an expired export");
            continue;
        }
        let id = job.id;
        let _ = store.write(move |conn, _| exports::file_deleted(conn, id)).await;
    }
}

type Finished = Option<(String, i64, i64, i64)>;

/// One run of a job: `Ok(Some(file name, bytes, rows, expires at))`, `Ok(None)` if cancelled,
/// `Err(reason)` if it failed.
async fn run(
    store: &Store,
    config: &Arc<Config>,
    files: &ExportFiles,
    me: &Arc<str>,
    job: Job,
) -> Result<Finished, String> {
    let id = job.id;
    let spec = job.clone();
    let prepared = store
        .read(move |conn| access::job_search(conn, spec.account, spec.user, spec.id, &spec.query, spec.created_at))
        .await;
    let (scope, req, role) = prepared.map_err(|e| format!("the export cannot start: {e}"))?;
    let tz: Tz = job.tz.parse().unwrap_or(Tz::UTC);
    let layout = Layout {
        // The role as it is now: a user who lost a column since asking does not get it.
        // Stored from parsed columns; a code a later version dropped is skipped.
        columns: Column::kept_for(job.columns.split(',').filter_map(Column::parse), role),
        lang: Lang::parse(&job.lang).unwrap_or_default(),
        tz,
        base_url: config.public_url.clone(),
    };
    let format = Format::parse(&job.format).ok_or_else(|| format!("unknown format {}", job.format))?;
    let (name, about) = layout.describe(&req.filter, &req.fingerprint, format, Utc::now());
    let mut walk = Walk::start(store, scope, req.filter.clone(), &layout, config.export_stretch)
        .await
        .map_err(|e| format!("the export cannot start: {e}"))?;
    let total = walk.total;
    let _ = store.write(move |conn, _| exports::progress(conn, id, 0, total)).await;
    let spec = FileSpec {
        format,
        delimiter: job.delimiter.bytes().next().unwrap_or(b';'),
        sheet_rows: config.xlsx_sheet_rows,
        about,
        layout,
    };
    let path = files.write_path(&job);
    let dir = path.parent().map(PathBuf::from).unwrap_or_default();
    let (store2, handle, owner) = (store.clone(), tokio::runtime::Handle::current(), me.clone());
    let written = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        write_file(&handle, &mut walk, &spec, &path, |rows| {
            let rows = rows as i64;
            // Progress, and the one place a cancel is seen.
            let owner = owner.clone();
            let state = handle.block_on(store2.write(move |conn, _| {
                exports::progress(conn, id, rows, total)?;
                // A lease that ran out (this instance stalled) may have been taken over: the
                // job is then another instance's, and this run stops.
                if !crate::store::leases::claim(conn, &exports::lease_name(id), &owner, now_ms(), LEASE_MS)? {
                    return Ok(JobState::Queued);
                }
                exports::state(conn, id)
            }));
            // Cancelled, taken over, or gone: stop. A database hiccup is not a reason to.
            matches!(state, Ok(JobState::Running) | Err(_))
        })
        .map(|rows| rows.map(|r| (r, std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0))))
    })
    .await
    .map_err(|e| format!("the export stopped: {e}"))?
    .map_err(|e| format!("the export failed: {e}"))?;
    if written.is_some() {
        files
            .keep(&job)
            .await
            .map_err(|e| format!("the export file could not be stored: {e}"))?;
    }
    Ok(written.map(|(rows, bytes)| (name, bytes as i64, rows as i64, now_ms() + config.export_keep_ms)))
}
