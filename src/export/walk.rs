//! Every call an export writes, read in stretches: the exact count first (for progress), one plan
//! for the whole walk, then stretch after stretch by keyset, each stretch one short read so that
//! searches and ingest are never held up by a long export.

use super::Layout;
use crate::domain::{CallFilter, CallScope, Column};
use std::sync::Arc;

use crate::store::export::{self, Names, Row, Sets};
use crate::store::search::{self, PagePlan, Position};
use crate::store::{Store, StoreError};

/// Calls per stretch: a few MB of rows in memory at most (two stretches: one read ahead).
pub const STRETCH: u32 = 5_000;

pub struct Walk {
    store: Store,
    scope: CallScope,
    filter: CallFilter,
    plan: PagePlan,
    sets: Sets,
    stretch: u32,
    after: Option<Position>,
    /// The read of the next stretch, started when the last one arrived.
    ahead: Option<tokio::task::JoinHandle<Result<Stretch, StoreError>>>,
    done: bool,
    /// The exact number of calls the walk will give (as counted when it started).
    pub total: i64,
    /// The directory's names, read once.
    pub names: Arc<Names>,
}

impl Walk {
    pub async fn start(
        store: &Store,
        scope: CallScope,
        filter: CallFilter,
        layout: &Layout,
        stretch: u32,
    ) -> Result<Walk, StoreError> {
        let stretch = stretch.max(1);
        let (s, f) = (scope.clone(), filter.clone());
        let (total, plan, names) = store
            .read_replica(move |conn| {
                let total = search::count(conn, &s, &f)?;
                // One plan for the whole walk, from the exact count.
                let plan = search::page_plan(conn, &s, &f, total, stretch)?;
                Ok((total, plan, export::names(conn, s.account)?))
            })
            .await?;
        let has = |c: Column| layout.columns.contains(&c);
        Ok(Walk {
            store: store.clone(),
            scope,
            filter,
            plan,
            sets: Sets {
                tags: has(Column::Tags),
                topics: has(Column::Topics),
                notes: has(Column::Notes),
            },
            stretch,
            after: None,
            ahead: None,
            done: total == 0,
            total,
            names: Arc::new(names),
        })
    }

    /// The next stretch, or `None` when every call has been given. The stretch after it is
    /// already being read while the caller writes this one.
    pub async fn next(&mut self) -> Result<Option<Vec<Row>>, StoreError> {
        let pending = match self.ahead.take() {
            Some(p) => p,
            None if self.done => return Ok(None),
            None => self.read(self.after),
        };
        let (calls, next) = pending.await.map_err(|_| StoreError::Closed)??;
        match next {
            Some(p) => {
                self.after = Some(p);
                self.ahead = Some(self.read(Some(p)));
            }
            None => self.done = true,
        }
        Ok(if calls.is_empty() { None } else { Some(calls) })
    }

    fn read(&self, after: Option<Position>) -> tokio::task::JoinHandle<Result<Stretch, StoreError>> {
        let (store, scope, filter, plan, sets, limit) = (
            self.store.clone(),
            self.scope.clone(),
            self.filter.clone(),
            self.plan,
            self.sets,
            self.stretch,
        );
        tokio::spawn(async move {
            store
                .read_replica(move |conn| export::stretch(conn, &scope, &filter, plan, after, limit, sets))
                .await
        })
    }
}

type Stretch = (Vec<Row>, Option<Position>);
