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
