-- PostgreSQL twin of migrations/sqlite/0006_user_preferences.sql: the same tables, columns and indexes (BIGINT for
-- SQLite's INTEGER, BYTEA for BLOB, identity ids); schema_test compares the two.
-- 0006: what each user chose for their own view. NULL in a column means "never chose": the page
-- and exports then use the defaults (every column the role may see, the browser's language, the
-- account's time zone).
CREATE TABLE user_preferences (
    user_id BIGINT PRIMARY KEY REFERENCES users (id),
    columns TEXT,
    lang TEXT,
    timezone TEXT
);
