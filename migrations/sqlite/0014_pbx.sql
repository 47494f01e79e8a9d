-- 0014: what an account's PBX records mean (`ingest/pbx.rs`: own numbers, extension length,
-- inbound contexts, internal calls, recording links, time zone), as one JSON document: read whole
-- for every import and changed whole by PUT /api/v1/integrations/pbx.
CREATE TABLE pbx_settings (
    account_id INTEGER PRIMARY KEY REFERENCES accounts (id),
    settings TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- The reference product's webhooks (`POST /api/v1/ingest/voximplant-kit`): its account name and
-- the subscription's salt, sealed with the server's secret key like the QM API key.
CREATE TABLE voximplant_kit_integrations (
    account_id INTEGER PRIMARY KEY REFERENCES accounts (id),
    domain TEXT NOT NULL,
    salt_sealed TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Ingestion health (`GET /api/v1/ingest/health`): per source (`api`, `freeswitch`,
-- `voximplant-kit`, `import:<format>`), what came in and when, counted in the transaction that
-- stored it.
CREATE TABLE ingest_sources (
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    source TEXT NOT NULL,
    accepted INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    pending INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    last_seen_at INTEGER NOT NULL,
    last_rejected_at INTEGER,
    PRIMARY KEY (account_id, source)
);

-- What was refused, with why and the payload as it came (its first 64 KiB), the last 100 per
-- source: to look at, and to send again once the cause is fixed.
CREATE TABLE ingest_rejections (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    source TEXT NOT NULL,
    at INTEGER NOT NULL,
    reason TEXT NOT NULL,
    field TEXT,
    content_type TEXT,
    payload BLOB,
    truncated INTEGER NOT NULL DEFAULT 0,
    replayed_at INTEGER,
    replay_outcome TEXT
);
CREATE INDEX ingest_rejections_source_idx ON ingest_rejections (account_id, source, id);

-- `calltrail import --follow FILE`: how far each followed log was read (and which file it was,
-- by inode, to notice rotation), so that a restarted follower goes on where it stopped.
CREATE TABLE import_positions (
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    path TEXT NOT NULL,
    format TEXT NOT NULL,
    inode INTEGER NOT NULL,
    position INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, path)
);
