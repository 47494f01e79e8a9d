-- 0004: browser sessions and the audit log.

-- A signed-in browser. The cookie carries a random token; only its SHA-256 is stored, so a copy
-- of the database cannot be used to sign in. Ending a session deletes its row.
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users (id),
    -- Sent back in the X-CSRF-Token header of every cookie-authenticated write.
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    -- Absolute end; an idle session ends earlier (last_seen_at + the idle limit).
    expires_at INTEGER NOT NULL,
    address TEXT
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- Who did what, when and from where. account_id is NULL for a failed login whose account is
-- unknown. Login throttling counts the failures here, so it holds across restarts.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    account_id INTEGER,
    at INTEGER NOT NULL,
    actor_id INTEGER,
    actor_login TEXT,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT,
    address TEXT
);
CREATE INDEX audit_log_account_idx ON audit_log (account_id, id);
CREATE INDEX audit_log_login_idx ON audit_log (action, actor_login, at);
CREATE INDEX audit_log_address_idx ON audit_log (action, address, at);
