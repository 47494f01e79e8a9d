-- 0009: recordings, the call log, shareable log links and retention settings.

-- One recording per call, keyed like the call (account, external id) so that a recording may
-- arrive before its call. `state`: pending (to fetch from source_url), stored (object_key holds
-- the file), failed (gave up; error says why).
CREATE TABLE recordings (
    account_id INTEGER NOT NULL,
    external_id TEXT NOT NULL,
    state TEXT NOT NULL,
    source_url TEXT,
    object_key TEXT,
    content_type TEXT,
    bytes INTEGER,
    sha256 TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    error TEXT,
    stored_at INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, external_id)
) WITHOUT ROWID;
CREATE INDEX recordings_due_idx ON recordings (state, next_attempt_at);
CREATE INDEX recordings_key_idx ON recordings (object_key);

-- Whether a stored recording exists, kept on the call so lists and exports need no join.
ALTER TABLE calls ADD COLUMN has_recording INTEGER NOT NULL DEFAULT 0;

-- Recordings named by URL before this version are fetched now.
INSERT INTO recordings (account_id, external_id, state, source_url, next_attempt_at, updated_at)
SELECT account_id, external_id, 'pending', recording_url, 0, 0 FROM calls WHERE recording_url IS NOT NULL;

-- Objects to delete once the transaction that stopped referring to them has committed: a crash
-- between the commit and the deletion leaves the key here, not an orphan file.
CREATE TABLE object_deletions (
    object_key TEXT PRIMARY KEY,
    queued_at INTEGER NOT NULL
) WITHOUT ROWID;

-- What happened to a call's record, in order: created, updated (which fields), by which source;
-- recording stored or failed; log links made or revoked.
CREATE TABLE call_events (
    id INTEGER PRIMARY KEY,
    call_id INTEGER NOT NULL,
    at INTEGER NOT NULL,
    event TEXT NOT NULL,
    source TEXT,
    detail TEXT
);
CREATE INDEX call_events_call_idx ON call_events (call_id, id);

-- Raw log lines the telephony sent with the call (a JSON array of strings), replaced whole.
CREATE TABLE call_log_lines (
    call_id INTEGER PRIMARY KEY,
    lines TEXT NOT NULL
);

-- Read-only links to one call's log. Only the SHA-256 of the token is kept.
CREATE TABLE log_links (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    call_id INTEGER NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_by INTEGER,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX log_links_call_idx ON log_links (call_id);

-- Retention (days; NULL keeps forever) and what restricted roles may do with recordings.
ALTER TABLE accounts ADD COLUMN keep_calls_days INTEGER;
ALTER TABLE accounts ADD COLUMN keep_recordings_days INTEGER;
ALTER TABLE accounts ADD COLUMN restricted_recordings TEXT NOT NULL DEFAULT 'play';

-- Retention finds the recordings of old calls without walking every old call.
CREATE INDEX calls_recording_idx ON calls (account_id, started_at) WHERE has_recording = 1;
