-- 0007: background exports. A job keeps the search as it was asked (its parameters as JSON,
-- evaluated at `created_at`, so "today" means the day it was asked), whom it runs for (their
-- scope is read when it runs), its progress, and its file until `expires_at`.
CREATE TABLE export_jobs (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    format TEXT NOT NULL,
    lang TEXT NOT NULL,
    tz TEXT NOT NULL,
    columns TEXT NOT NULL,
    delimiter TEXT NOT NULL,
    query TEXT NOT NULL,
    state TEXT NOT NULL,
    rows_done INTEGER NOT NULL DEFAULT 0,
    rows_total INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    file_name TEXT,
    file_bytes INTEGER,
    file_deleted INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    expires_at INTEGER
);
CREATE INDEX export_jobs_state_idx ON export_jobs (state, id);
CREATE INDEX export_jobs_user_idx ON export_jobs (user_id, id);
