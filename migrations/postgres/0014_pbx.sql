-- PostgreSQL twin of migrations/sqlite/0014_pbx.sql.
CREATE TABLE pbx_settings (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id),
    settings TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE voximplant_kit_integrations (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id),
    domain TEXT NOT NULL,
    salt_sealed TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
