-- PostgreSQL twin of migrations/sqlite/0008_started_id_index.sql: the same tables, columns and indexes (BIGINT for
-- SQLite's INTEGER, BYTEA for BLOB, identity ids); schema_test compares the two.
-- 0008: the time index names the id right after the instant (and keeps the talk duration of
-- 0003 after it). The rowid was in the index already, but SQLite orders only by columns an index
-- names: `ORDER BY started_at DESC, id DESC` (every list and export) sorted each run of equal
-- instants in a temporary B-tree. Measured on a 1M-call walk: 1.30 s with that sort, 0.78 s
-- without. Talk ranges are still counted from the index alone.
DROP INDEX calls_started_idx;
CREATE INDEX calls_started_idx ON calls (account_id, started_at, id, talk_seconds);
ANALYZE calls;
