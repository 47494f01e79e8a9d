-- PostgreSQL twin of migrations/sqlite/0014_pbx.sql.
CREATE TABLE pbx_settings (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id),
    settings TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
