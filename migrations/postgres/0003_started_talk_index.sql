-- PostgreSQL twin of migrations/sqlite/0003_started_talk_index.sql: the same tables, columns and indexes (BIGINT for
-- SQLite's INTEGER, BYTEA for BLOB, identity ids); schema_test compares the two.
-- 0003: the time index carries the talk duration, so a talk range over a period is counted and
-- paged from the index alone instead of reading every call of the period (measured at 10M calls:
-- the exact total of 30 days with talk >= 60 s took 860 ms of row look-ups).
DROP INDEX calls_started_idx;
CREATE INDEX calls_started_idx ON calls (account_id, started_at, talk_seconds);
ANALYZE calls;
