//! What ingest leaves to be written with the rest of its commit: log events, log lines, tags,
//! topics, notes (`BatchRows`) and count changes. The writer commits every ingest request waiting
//! at that moment in one transaction (group commit); writing their rows together makes a few
//! multi-row statements of what was one statement per row — on PostgreSQL, one round trip each.
//!
//! The writer flushes before the commit and before any job that is not an ingest job; an ingest
//! job flushes before it loads a call written since the last flush. A job that fails takes its
//! rows and counts back out (`mark` / `undo`), as its savepoint rolls back its other writes.

use std::collections::HashSet;

use super::batch_rows::{BatchRows, Insert, Mark};
use super::counts::CountDeltas;
use super::db::{Connection, Params};
use super::StoreError;
use crate::domain::AccountId;

#[derive(Default)]
pub struct Deferred {
    rows: BatchRows,
    counts: Vec<(AccountId, CountDeltas)>,
    /// External ids of the calls written since the last flush. Not by account: the same id in
    /// another account costs at most a flush too many, and the look-up of every record of a
    /// batch needs no key of its own.
    written: HashSet<String>,
    /// Whether the job now running may leave its rows to the commit (an ingest job); other jobs
    /// write theirs before they end.
    spans_jobs: bool,
}

/// Where the deferred work stood before a job.
pub struct Undo {
    rows: Mark,
    counts: Vec<(AccountId, CountDeltas)>,
}

impl Deferred {
    pub fn add(&mut self, insert: &'static Insert, values: impl Params) {
        self.rows.add(insert, values);
    }

    /// The count changes of an account, to add to.
    pub fn counts(&mut self, account: AccountId) -> &mut CountDeltas {
        let at = match self.counts.iter().position(|(a, _)| *a == account) {
            Some(at) => at,
            None => {
                self.counts.push((account, CountDeltas::default()));
                self.counts.len() - 1
            }
        };
        &mut self.counts[at].1
    }

    /// Notes that a call was written.
    pub fn wrote(&mut self, external_id: &str) {
        self.written.insert(external_id.to_string());
    }

    /// Writes what waits if this call is among it: before the call is loaded again.
    pub fn before_load(&mut self, conn: &Connection, external_id: &str) -> Result<(), StoreError> {
        if self.written.contains(external_id) {
            self.flush(conn)?;
        }
        Ok(())
    }

    /// At the end of a job's own work: written now unless the job is an ingest job whose rows go
    /// with the commit.
    pub fn end_of_job(&mut self, conn: &Connection) -> Result<(), StoreError> {
        if self.spans_jobs {
            return Ok(());
        }
        self.flush(conn)
    }

    /// Writes everything waiting.
    pub fn flush(&mut self, conn: &Connection) -> Result<(), StoreError> {
        self.rows.flush(conn)?;
        for (account, counts) in std::mem::take(&mut self.counts) {
            counts.flush(conn, account)?;
        }
        self.written.clear();
        Ok(())
    }

    /// Before a job: where to come back to if it fails.
    pub fn begin_job(&mut self, spans_jobs: bool) -> Undo {
        self.spans_jobs = spans_jobs;
        Undo {
            rows: self.rows.mark(),
            counts: self.counts.clone(),
        }
    }

    /// After a job that failed: its rows and count changes are dropped.
    pub fn undo(&mut self, undo: Undo) {
        self.rows.truncate(undo.rows);
        self.counts = undo.counts;
    }

    /// After a commit that failed: nothing of it is written.
    pub fn clear(&mut self) {
        *self = Deferred::default();
    }
}
