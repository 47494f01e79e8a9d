-- Handing calls to the quality-management system (T-Bank QM).

-- One integration per account. The API key is sealed with the server's secret key (never
-- stored in clear, never returned); its last characters are kept apart to show it masked.
CREATE TABLE qm_integrations (
    account_id INTEGER PRIMARY KEY REFERENCES accounts (id),
    base_url TEXT NOT NULL,
    api_key_sealed TEXT,
    api_key_hint TEXT,
    language_code TEXT NOT NULL DEFAULT 'ru',
    operator_channel TEXT NOT NULL DEFAULT 'left',
    -- When the QM system last accepted the credentials; cleared when they change.
    connected_at INTEGER,
    active INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);

-- Operators as last imported into the QM system: imported again when the name changes.
CREATE TABLE qm_operators (
    account_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    qm_id TEXT NOT NULL,
    name TEXT NOT NULL,
    imported_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, user_id)
);

-- Export jobs. `query` holds the search (as `[key, value]` pairs) for a filtered export; the
-- calls of a job are listed in qm_export_calls once `prepared`.
CREATE TABLE qm_exports (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    user_id INTEGER NOT NULL,
    query TEXT,
    rerun_of INTEGER,
    prepared INTEGER NOT NULL DEFAULT 0,
    -- How far a filtered job's calls are listed: (started_at, id) of the last one listed.
    list_started_at INTEGER,
    list_id INTEGER,
    state TEXT NOT NULL,
    error TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
);
CREATE INDEX qm_exports_account_idx ON qm_exports (account_id, id);
CREATE INDEX qm_exports_state_idx ON qm_exports (state, id);

-- Each call of a job and where it stands: pending, sending (a request is out), sent,
-- already_sent (by an earlier job), skipped (no recording, deleted) or failed.
CREATE TABLE qm_export_calls (
    export_id INTEGER NOT NULL,
    call_id INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    -- Requests made for the call, and how many of them the QM system throttled (429: not
    -- counted against the call's attempts).
    attempts INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL DEFAULT 0,
    status INTEGER,
    correlation_id TEXT,
    error TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (export_id, call_id)
);
CREATE INDEX qm_export_calls_due_idx ON qm_export_calls (export_id, outcome, next_at);
-- Retention deletes a call's rows by call.
CREATE INDEX qm_export_calls_call_idx ON qm_export_calls (call_id);

-- Every failed attempt, with the QM system's x-correlation-id, for its support.
CREATE TABLE qm_export_failures (
    id INTEGER PRIMARY KEY,
    export_id INTEGER NOT NULL,
    call_id INTEGER NOT NULL,
    at INTEGER NOT NULL,
    status INTEGER,
    correlation_id TEXT,
    error TEXT NOT NULL
);
CREATE INDEX qm_export_failures_call_idx ON qm_export_failures (call_id, export_id);

-- The delivery record: a call the QM system took, once per account whatever the job, so that
-- no call is sent twice across retries, re-runs and restarts.
CREATE TABLE qm_deliveries (
    account_id INTEGER NOT NULL,
    call_id INTEGER NOT NULL,
    qm_id TEXT NOT NULL,
    export_id INTEGER NOT NULL,
    sent_at INTEGER NOT NULL,
    -- 0: in doubt — a request was out when its server died; only an explicit re-run sends it.
    confirmed INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (account_id, call_id)
);
