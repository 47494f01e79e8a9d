//! Rows written together at the end of an ingest batch: a few multi-row INSERTs per table instead
//! of one statement per row. On PostgreSQL every statement is a round trip to the server, and a
//! new call wrote its log event, raw log lines, tags, topics and notes in five to eight of them.
//!
//! Only rows that nothing reads back before the batch ends are kept here; the writer flushes
//! before it loads a call the same batch already wrote.

use super::db::{params_from_iter, Connection, Params, Value};
use super::StoreError;

/// One table's INSERT: its columns and what follows the values (an upsert's conflict clause).
pub struct Insert {
    pub table: &'static str,
    pub columns: &'static [&'static str],
    pub tail: &'static str,
}

impl Insert {
    /// The statement for `rows` rows.
    fn sql(&self, rows: usize) -> String {
        let row = format!("({})", vec!["?"; self.columns.len()].join(", "));
        format!(
            "INSERT INTO {} ({}) VALUES {}{}",
            self.table,
            self.columns.join(", "),
            vec![row; rows].join(", "),
            self.tail
        )
    }

    /// Writes one row at once.
    pub fn execute(&self, conn: &Connection, values: impl Params) -> Result<(), StoreError> {
        conn.prepare_cached(&self.sql(1))?.execute(values)?;
        Ok(())
    }
}

/// The most rows one statement carries. Statements are kept for the powers of two up to it, so
/// that any number of rows takes a few cached statements (100 rows: 64 + 32 + 4).
const MOST_ROWS: usize = 64;

/// The number of values of each table at one moment.
pub struct Mark(Vec<usize>);

/// The rows waiting, per table in the order their first row came.
#[derive(Default)]
pub struct BatchRows {
    tables: Vec<(&'static Insert, Vec<Value>)>,
}

impl BatchRows {
    pub fn add(&mut self, insert: &'static Insert, values: impl Params) {
        let values = values.values();
        debug_assert_eq!(values.len(), insert.columns.len(), "{}", insert.table);
        match self.tables.iter_mut().find(|(i, _)| std::ptr::eq(*i, insert)) {
            Some((_, rows)) => rows.extend(values),
            None => self.tables.push((insert, values)),
        }
    }

    /// How many values each table holds now.
    pub fn mark(&self) -> Mark {
        Mark(self.tables.iter().map(|(_, values)| values.len()).collect())
    }

    /// Drops the rows added after `mark`.
    pub fn truncate(&mut self, mark: Mark) {
        self.tables.truncate(mark.0.len());
        for ((_, values), len) in self.tables.iter_mut().zip(mark.0) {
            values.truncate(len);
        }
    }

    /// Writes every waiting row.
    pub fn flush(&mut self, conn: &Connection) -> Result<(), StoreError> {
        for (insert, values) in self.tables.drain(..) {
            let width = insert.columns.len();
            let mut rest = values.as_slice();
            while !rest.is_empty() {
                let rows = chunk_rows(rest.len() / width);
                let (now, later) = rest.split_at(rows * width);
                conn.prepare_cached(&insert.sql(rows))?
                    .execute(params_from_iter(now.iter().cloned()))?;
                rest = later;
            }
        }
        Ok(())
    }
}

/// How many of `waiting` rows the next statement takes: the largest power of two up to
/// `MOST_ROWS` that fits.
fn chunk_rows(waiting: usize) -> usize {
    let fit = waiting.min(MOST_ROWS);
    1 << fit.ilog2()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_in_cached_power_of_two_statements() {
        let mut sizes = vec![];
        let mut waiting = 203;
        while waiting > 0 {
            let n = chunk_rows(waiting);
            sizes.push(n);
            waiting -= n;
        }
        assert_eq!(sizes, [64, 64, 64, 8, 2, 1]);
        assert_eq!(chunk_rows(1), 1);
        assert_eq!(chunk_rows(63), 32);
    }

    #[test]
    fn every_row_is_written_once_in_order() {
        static PAIRS: Insert = Insert {
            table: "pairs",
            columns: &["a", "b"],
            tail: " ON CONFLICT (a) DO UPDATE SET b = excluded.b",
        };
        static ONES: Insert = Insert {
            table: "ones",
            columns: &["x"],
            tail: "",
        };
        let conn = Connection::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        conn.execute_batch("CREATE TABLE pairs (a INTEGER PRIMARY KEY, b TEXT); CREATE TABLE ones (x INTEGER)")
            .unwrap();
        let mut rows = BatchRows::default();
        for i in 0..203i64 {
            rows.add(
                &PAIRS,
                params_from_iter([Value::Integer(i), Value::Text(format!("v{i}"))]),
            );
            if i % 2 == 0 {
                rows.add(&ONES, [i]);
            }
        }
        rows.flush(&conn).unwrap();
        rows.flush(&conn).unwrap();
        let pairs: Vec<(i64, String)> = conn
            .prepare("SELECT a, b FROM pairs ORDER BY a")
            .unwrap()
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(pairs, (0..203).map(|i| (i, format!("v{i}"))).collect::<Vec<_>>());
        let ones: i64 = conn.query_row("SELECT sum(x) FROM ones", (), |r| r.get(0)).unwrap();
        assert_eq!(ones, (0..203).filter(|i| i % 2 == 0).sum::<i64>());
        // The upsert's clause is kept: a later row for the same key replaces the value.
        rows.add(&PAIRS, params_from_iter([Value::Integer(5), Value::Text("new".into())]));
        rows.flush(&conn).unwrap();
        let b: String = conn
            .query_row("SELECT b FROM pairs WHERE a = 5", (), |r| r.get(0))
            .unwrap();
        assert_eq!(b, "new");
    }
}
