-- PostgreSQL twin of migrations/sqlite/0005_operator_talk_index.sql: the same tables, columns and indexes (BIGINT for
-- SQLite's INTEGER, BYTEA for BLOB, identity ids); schema_test compares the two.
-- 0005: the operator index carries the talk duration. A supervisor's or operator's every query
-- is restricted to a set of operators, so a talk range over a period is then counted from the
-- index alone (measured at 1M calls: a supervisor's exact total of 30 days with talk >= 60 s
-- took 153 ms of row look-ups).
DROP INDEX calls_operator_idx;
CREATE INDEX calls_operator_idx ON calls (account_id, operator_id, started_at, talk_seconds);
ANALYZE calls;
