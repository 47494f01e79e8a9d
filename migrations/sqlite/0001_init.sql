-- 0001: accounts, the directory, tokens and the call store.
--
-- Instants are Unix epoch milliseconds (INTEGER), enums are their text codes, money is an
-- integer of ten-thousandths. Every row belongs to an account.

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    currency TEXT NOT NULL DEFAULT 'RUB',
    call_history_access INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

-- Secrets the instance needs across restarts (and, later, across instances): the cursor key.
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- Users are people who log in, and operators named by the telephony (password_hash NULL).
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    login TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT,
    blocked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    UNIQUE (account_id, login)
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    -- SHA-256 of the token; the token itself is shown once and never stored.
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    call_history_access INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, key)
);

CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX group_members_user_idx ON group_members (user_id, group_id);

CREATE TABLE group_supervisors (
    group_id INTEGER NOT NULL REFERENCES groups (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX group_supervisors_user_idx ON group_supervisors (user_id, group_id);

-- Directory entities that calls refer to. `key` is the sender's id (or the name when the
-- sender has no id); `name` is what people see.
CREATE TABLE queues (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (account_id, key)
);

CREATE TABLE scenarios (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT,
    url TEXT,
    UNIQUE (account_id, key)
);

CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (account_id, key)
);

CREATE TABLE completion_codes (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (account_id, key)
);

CREATE TABLE tags (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (account_id, key)
);

-- Topics nest: `key` is the whole path (`billing/refund`), `parent_id` the topic above.
CREATE TABLE topics (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    parent_id INTEGER REFERENCES topics (id),
    UNIQUE (account_id, key)
);

CREATE TABLE calls (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    external_id TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    from_number TEXT NOT NULL DEFAULT '',
    to_number TEXT NOT NULL DEFAULT '',
    operator_id INTEGER,
    group_id INTEGER,
    queue_id INTEGER,
    scenario_id INTEGER,
    campaign_id INTEGER,
    completion_code_id INTEGER,
    callback_at INTEGER,
    ring_seconds INTEGER,
    talk_seconds INTEGER NOT NULL,
    price_e4 INTEGER,
    currency TEXT,
    result TEXT,
    attempts INTEGER,
    -- What the sender said, kept so later partial updates can recompute durations.
    explicit_started_at INTEGER,
    dial_started_at INTEGER,
    answered_at INTEGER,
    scenario_started_at INTEGER,
    amd_detected_at INTEGER,
    ended_at INTEGER,
    sent_ring_seconds INTEGER,
    sent_talk_seconds INTEGER,
    recording_url TEXT,
    flow TEXT,
    updated_at INTEGER NOT NULL,
    UNIQUE (account_id, external_id)
);
-- Newest-first lists (rowid = id is the implicit tie-break). Every index leads with the account
-- so that the account condition never needs the row itself.
CREATE INDEX calls_started_idx ON calls (account_id, started_at);
CREATE INDEX calls_operator_idx ON calls (account_id, operator_id, started_at);
-- Covering for result filters, their talk ranges and their counts.
CREATE INDEX calls_result_idx ON calls (account_id, result, started_at, talk_seconds);
CREATE INDEX calls_campaign_idx ON calls (account_id, campaign_id, started_at);
CREATE INDEX calls_from_idx ON calls (account_id, from_number, started_at);
CREATE INDEX calls_to_idx ON calls (account_id, to_number, started_at);

-- Call counts per UTC day and per UTC hour, by kind, result and operator (0: none; result '':
-- none), kept up to date by every write. Exact totals over long ranges sum these instead of
-- counting millions of index entries; only the partial hours at a range's edges are counted
-- from the calls themselves.
CREATE TABLE call_counts_day (
    account_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    kind TEXT NOT NULL,
    result TEXT NOT NULL,
    operator_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (account_id, bucket, kind, result, operator_id)
) WITHOUT ROWID;

CREATE TABLE call_counts_hour (
    account_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    kind TEXT NOT NULL,
    result TEXT NOT NULL,
    operator_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (account_id, bucket, kind, result, operator_id)
) WITHOUT ROWID;

CREATE TABLE call_tags (
    call_id INTEGER NOT NULL,
    tag_id INTEGER NOT NULL,
    PRIMARY KEY (call_id, tag_id)
) WITHOUT ROWID;
CREATE INDEX call_tags_tag_idx ON call_tags (tag_id, call_id);

CREATE TABLE call_topics (
    call_id INTEGER NOT NULL,
    topic_id INTEGER NOT NULL,
    PRIMARY KEY (call_id, topic_id)
) WITHOUT ROWID;
CREATE INDEX call_topics_topic_idx ON call_topics (topic_id, call_id);

CREATE TABLE call_notes (
    id INTEGER PRIMARY KEY,
    call_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    author TEXT,
    at INTEGER NOT NULL,
    text TEXT NOT NULL,
    UNIQUE (call_id, key)
);

-- Updates that arrived before their call, applied in arrival order when the call arrives.
CREATE TABLE pending_updates (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    external_id TEXT NOT NULL,
    patch TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX pending_updates_call_idx ON pending_updates (account_id, external_id, id);

-- Number search: every distinct number once, with a trigram index over the dictionary; calls
-- are then found through calls_from_idx / calls_to_idx. Far smaller and faster than a
-- trigram index per call (storage-baseline.md §5).
CREATE TABLE numbers (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL UNIQUE
);
CREATE VIRTUAL TABLE numbers_fts USING fts5 (number, content = 'numbers', content_rowid = 'id', tokenize = 'trigram', detail = 'full');
